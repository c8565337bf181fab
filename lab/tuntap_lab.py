# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tuntap.qemu namespace lab: a LAN and hypervisors as network namespaces, real guests.

    tuntap_lab.py demo [--keep]   up, converge, wait for the guests, print the matrix, down
    tuntap_lab.py up              create the namespaces and the inventory
    tuntap_lab.py converge        run the lab playbook against a lab that is up
    tuntap_lab.py matrix          print the connectivity matrix of a converged lab
    tuntap_lab.py down            stop the lab's guests (by their pidfiles) and remove everything

Layout (prefix default 'ttqlab-'):
    <prefix>lan    the LAN switch: bridge lan0, no address
    <prefix>peer   a LAN host, eth0 10.0.0.20/24
    <prefix>hv1    a hypervisor, eth0 10.0.0.11/24 (the uplink), routed topology: one tap and
                   one subnet per guest, guests vm1 (192.168.0.10) and vm2 (192.168.1.10)

The guests are the test guest of lab/guest (a Debian cloud kernel and a busybox initramfs)
started by tuntap.qemu.qemu_guest. Each pings its gateway, the other guests and the LAN peer
and prints one result line per target on its serial console; the matrix is read from there,
plus pings from the LAN peer to every guest.

Nothing here touches the root network namespace: every link is created inside a lab
namespace (veth pairs are created in the LAN namespace and one end moved), and the only
files written outside the lab's state folder are /etc/netns/<namespace>/ folders, which
`ip netns exec` bind-mounts over /etc inside that namespace only. Guests are ended by the
pids in their pidfiles, after checking that the pid is the QEMU of that guest.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

LAB_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(LAB_DIR)
sys.path.insert(0, os.path.join(LAB_DIR, 'guest'))

import build_guest  # noqa: E402  pylint: disable=wrong-import-position
import guest_boot  # noqa: E402  pylint: disable=wrong-import-position

PEER_ADDRESS = '10.0.0.20'
ENV = dict(os.environ, LC_ALL='C.UTF-8')
GUEST_TIMEOUT = 120

# The lab fleet: one routed hypervisor with two guests (issue 5 adds the other topologies).
HYPERVISORS = {
    'hv1': {
        'uplink_address': '10.0.0.11',
        'topology': 'routed',
        'guests': [
            {'name': 'vm1', 'tap': 'tap0', 'host_address': '192.168.0.1/24',
             'address': '192.168.0.10/24', 'gateway': '192.168.0.1'},
            {'name': 'vm2', 'tap': 'tap1', 'host_address': '192.168.1.1/24',
             'address': '192.168.1.10/24', 'gateway': '192.168.1.1'},
        ],
    },
}


def run(argv, check=True, capture=False, netns=None):
    if netns:
        argv = ['ip', 'netns', 'exec', netns] + argv
    return subprocess.run(argv, check=check, env=ENV, text=True,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.STDOUT if capture else None)


def collections_path(state_dir):
    """A folder ansible_collections/tuntap/qemu that points at this checkout."""
    root = os.path.join(state_dir, 'collections')
    link = os.path.join(root, 'ansible_collections', 'tuntap', 'qemu')
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if not os.path.lexists(link):
        os.symlink(REPO, link)
    return root


def guest_process(pidfile, name):
    """The pid in pidfile when it is alive and is the QEMU of guest `name`, else None."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(REPO))))
    try:
        with open(pidfile) as handle:
            pid = int(handle.read().strip())
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            args = handle.read().split(b'\0')
    except (OSError, ValueError):
        return None
    wanted = ('guest=%s,' % name).encode()
    if any(arg == b'-name' and value.startswith(wanted) for arg, value in zip(args, args[1:])):
        return pid
    return None


class Lab:
    def __init__(self, prefix, state_dir=None):
        if not re.match(r'^[a-z0-9-]{1,10}$', prefix):
            raise SystemExit('--prefix: %r must be 1-10 characters of a-z, 0-9 and -' % prefix)
        self.prefix = prefix
        self.state_dir = state_dir or os.path.join('/run/tuntap-lab', prefix.rstrip('-'))
        self.lan = prefix + 'lan'
        self.peer = prefix + 'peer'
        self.hypervisors = dict((name, dict(spec, namespace=prefix + name))
                                for name, spec in HYPERVISORS.items())
        self.guests_dir = os.path.join(self.state_dir, 'guests')

    @property
    def namespaces(self):
        return [self.lan, self.peer] + [hv['namespace'] for hv in self.hypervisors.values()]

    @property
    def inventory(self):
        return os.path.join(self.state_dir, 'inventory.yml')

    def guests(self):
        for hv_name, hv in sorted(self.hypervisors.items()):
            for guest in hv['guests']:
                yield hv_name, hv, guest

    def serial_log(self, guest):
        return os.path.join(self.guests_dir, guest['name'], 'serial.log')

    # ------------------------------------------------------------ up / down
    def up(self, python):
        self.down(quiet=True)
        os.makedirs(self.guests_dir, exist_ok=True)
        os.chmod(self.state_dir, 0o755)
        with open(os.path.join(self.state_dir, 'state.json'), 'w') as handle:
            json.dump({'namespaces': self.namespaces,
                       'guests': [guest['name'] for _hv, _spec, guest in self.guests()]}, handle)
        for ns in self.namespaces:
            run(['ip', 'netns', 'add', ns])
            os.makedirs('/etc/netns/%s/sysctl.d' % ns, exist_ok=True)
            os.makedirs('/etc/netns/%s/network/interfaces.d' % ns, exist_ok=True)
            run(['ip', 'link', 'set', 'lo', 'up'], netns=ns)
        run(['ip', 'link', 'add', 'lan0', 'type', 'bridge'], netns=self.lan)
        run(['ip', 'link', 'set', 'lan0', 'up'], netns=self.lan)
        hosts = [('peer', self.peer, PEER_ADDRESS)] + [
            (name, hv['namespace'], hv['uplink_address']) for name, hv in sorted(self.hypervisors.items())]
        for index, (name, ns, address) in enumerate(hosts):
            port = 'p-%s' % name
            # Both ends are born in the LAN namespace; one moves to the host as eth0.
            run(['ip', 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'e%d' % index], netns=self.lan)
            run(['ip', 'link', 'set', 'e%d' % index, 'netns', ns, 'name', 'eth0'], netns=self.lan)
            run(['ip', 'link', 'set', port, 'master', 'lan0', 'up'], netns=self.lan)
            run(['ip', 'addr', 'add', '%s/24' % address, 'dev', 'eth0'], netns=ns)
            run(['ip', 'link', 'set', 'eth0', 'up'], netns=ns)
        # The LAN peer routes the routed hypervisors' guest subnets back through them.
        for _name, hv in sorted(self.hypervisors.items()):
            if hv['topology'] == 'routed':
                for guest in hv['guests']:
                    network = guest_boot_network(guest['host_address'])
                    run(['ip', 'route', 'add', network, 'via', hv['uplink_address']], netns=self.peer)
        self.write_inventory(python)
        print('lab %s is up: namespaces %s' % (self.prefix, ', '.join(self.namespaces)))
        print('inventory: %s' % self.inventory)

    def write_inventory(self, python):
        hosts = {}
        for name, hv in sorted(self.hypervisors.items()):
            guests = []
            for guest in hv['guests']:
                others = [other['address'].split('/')[0] for other in hv['guests'] if other is not guest]
                guests.append(dict(guest, ping=[guest['gateway']] + others + [PEER_ADDRESS]))
            hosts[name] = {
                'ansible_host': hv['namespace'],
                'lab_topology': hv['topology'],
                'lab_taps': [{'name': guest['tap'], 'addresses': [guest['host_address']]}
                             for guest in hv['guests']],
                'lab_guests': guests,
            }
        inventory = {'all': {
            'vars': {
                'ansible_connection': 'tuntap.qemu.netns',
                'ansible_python_interpreter': python,
                'lab_peer_address': PEER_ADDRESS,
                'lab_guests_dir': self.guests_dir,
            },
            'children': {
                'lan': {'hosts': {'peer': {'ansible_host': self.peer}}},
                'hypervisors': {'hosts': hosts},
            },
        }}
        with open(self.inventory, 'w') as handle:
            json.dump(inventory, handle, indent=2)

    def stop_guests(self):
        """End the lab's QEMU processes by the pids in their pidfiles."""
        if not os.path.isdir(self.guests_dir):
            return
        for name in sorted(os.listdir(self.guests_dir)):
            pid = guest_process(os.path.join(self.guests_dir, name, 'qemu.pid'), name)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 5
                while os.path.exists('/proc/%d' % pid) and time.monotonic() < deadline:
                    time.sleep(0.05)

    def down(self, quiet=False):
        namespaces = set(self.namespaces)
        state = os.path.join(self.state_dir, 'state.json')
        if os.path.exists(state):
            with open(state) as handle:
                namespaces.update(json.load(handle)['namespaces'])
        self.stop_guests()
        for ns in sorted(namespaces):
            if os.path.exists('/run/netns/%s' % ns):
                run(['ip', 'netns', 'del', ns])
            shutil.rmtree('/etc/netns/%s' % ns, ignore_errors=True)
        shutil.rmtree(self.state_dir, ignore_errors=True)
        if not quiet:
            print('lab %s removed' % self.prefix)

    # ------------------------------------------------------------ converge
    def converge(self, playbook, extra_vars=None):
        """Run a playbook against the lab; returns (exit code, total 'changed' of the recap)."""
        ansible_playbook = shutil.which('ansible-playbook')
        if not ansible_playbook:
            raise SystemExit('ansible-playbook not found; run lab/run.sh, which installs it')
        env = dict(ENV, ANSIBLE_COLLECTIONS_PATH=collections_path(self.state_dir),
                   ANSIBLE_PIPELINING='True', ANSIBLE_NOCOLOR='1', ANSIBLE_RETRY_FILES_ENABLED='False')
        argv = [ansible_playbook, '-i', self.inventory, os.path.join(REPO, 'playbooks', playbook)]
        for key, value in sorted((extra_vars or {}).items()):
            argv += ['-e', '%s=%s' % (key, value)]
        process = subprocess.Popen(argv, env=env, text=True, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
        changed = 0
        for line in process.stdout:
            sys.stdout.write(line)
            match = re.search(r'\bok=\d+\s+changed=(\d+)', line)
            if match:
                changed += int(match.group(1))
        return process.wait(), changed

    # ------------------------------------------------------------ proof
    def ping(self, source_ns, target):
        result = run(['ping', '-n', '-c', '3', '-i', '0.2', '-W', '1', target],
                     check=False, capture=True, netns=source_ns)
        match = re.search(r'= [\d.]+/([\d.]+)/', result.stdout)
        return result.returncode == 0, (float(match.group(1)) if match else None)

    def guest_reports(self, timeout=GUEST_TIMEOUT):
        """{guest name: serial report}, waiting for every guest's TTQ-DONE."""
        reports = {}
        deadline = time.monotonic() + timeout
        for _hv, _spec, guest in self.guests():
            remaining = max(1.0, deadline - time.monotonic())
            reports[guest['name']], _waited = guest_boot.wait_for_done(self.serial_log(guest), remaining)
        return reports

    def matrix_rows(self, reports):
        rows = []
        names = dict((guest['address'].split('/')[0], guest['name']) for _hv, _spec, guest in self.guests())
        names[PEER_ADDRESS] = 'peer'
        for hv_name, hv, guest in self.guests():
            report = reports.get(guest['name']) or {'results': {}, 'done': None}
            targets = [guest['gateway']] + [
                other['address'].split('/')[0] for other in hv['guests'] if other is not guest] + [PEER_ADDRESS]
            for target in targets:
                result = report['results'].get(target)
                label = names.get(target, '%s gateway' % hv_name)
                ok = result is not None and result.get('status') == 'ok'
                latency = result.get('rtt_ms') if result else None
                rows.append(('%s (%s)' % (guest['name'], hv_name), '%s %s' % (label, target), ok, latency))
        for hv_name, hv, guest in self.guests():
            address = guest['address'].split('/')[0]
            ok, latency = self.ping(self.peer, address)
            rows.append(('peer (LAN)', '%s %s' % (guest['name'], address), ok, latency))
        return rows

    @staticmethod
    def print_matrix(title, rows):
        table = [('from', 'to', 'result', 'latency')] + [
            (source, target, 'ok' if ok else 'FAIL', '%.2f ms' % latency if latency is not None else '-')
            for source, target, ok, latency in rows]
        widths = [max(len(row[i]) for row in table) for i in range(4)]
        line = '  '.join('%%-%ds' % width for width in widths)
        print('\n' + title)
        print(line % table[0])
        print(line % tuple('-' * width for width in widths))
        for row in table[1:]:
            print(line % row)
        return all(row[2] for row in rows)


def guest_boot_network(cidr):
    address, prefix = cidr.split('/')
    octets = [int(part) for part in address.split('.')]
    value = (octets[0] << 24 | octets[1] << 16 | octets[2] << 8 | octets[3]) & (0xffffffff << (32 - int(prefix)))
    return '%d.%d.%d.%d/%s' % (value >> 24, value >> 16 & 255, value >> 8 & 255, value & 255, prefix)


def demo(lab, python, keep):
    started = time.time()
    build = build_guest.build_guest()
    print('test guest: %s (%s, %.1f s to build)' % (
        build['kernel_release'], 'cached' if build['cached'] else 'built', build['build_seconds']))
    lab.up(python)
    extra = {'lab_guest_kernel': build['kernel'], 'lab_guest_initrd': build['initrd']}
    converge_started = time.time()
    rc, _changed = lab.converge('lab_demo.yml', extra)
    if rc != 0:
        print('the converge failed (exit %d)' % rc)
        return rc
    converge_seconds = time.time() - converge_started
    print('\nsecond converge (must report changed=0):')
    rc, changed = lab.converge('lab_demo.yml', extra)
    if rc != 0 or changed != 0:
        print('the second converge was not idempotent (exit %d, changed=%d)' % (rc, changed))
        return rc or 1
    reports = lab.guest_reports()
    ok = lab.print_matrix('connectivity matrix of lab %s (routed topology on hv1):' % lab.prefix,
                          lab.matrix_rows(reports))
    for _hv, _spec, guest in lab.guests():
        boot = (reports[guest['name']] or {}).get('boot') or {}
        print('%s booted to network in %s s of guest uptime' % (guest['name'], boot.get('uptime', '?')))
    verdict = 'all pings ok' if ok else 'SOME PINGS FAILED'
    print('\nconverge %.1f s; %s in %.1f s' % (converge_seconds, verdict, time.time() - started))
    if not ok:
        for _hv, _spec, guest in lab.guests():
            print('\n--- serial log of %s ---' % guest['name'])
            with open(lab.serial_log(guest), errors='replace') as handle:
                print(handle.read()[-4000:])
    if keep:
        print('the lab stays up; inventory %s; tear it down with: lab/run.sh down --prefix %s'
              % (lab.inventory, lab.prefix))
    return 0 if ok else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('command', nargs='?', default='demo', choices=['demo', 'up', 'converge', 'down', 'matrix'])
    parser.add_argument('--prefix', default='ttqlab-', help='namespace name prefix (default ttqlab-)')
    parser.add_argument('--keep', action='store_true', help='demo: leave the lab up afterwards')
    parser.add_argument('--python', default='/usr/bin/python3',
                        help="the hypervisors' Python (default Debian's /usr/bin/python3)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit('the lab creates network namespaces: run it as root')
    lab = Lab(args.prefix)
    if args.command == 'up':
        lab.up(args.python)
        return 0
    if args.command == 'down':
        lab.down()
        return 0
    if args.command == 'converge':
        build = build_guest.build_guest()
        return lab.converge('lab_demo.yml', {'lab_guest_kernel': build['kernel'],
                                             'lab_guest_initrd': build['initrd']})[0]
    if args.command == 'matrix':
        return 0 if lab.print_matrix('connectivity matrix of lab %s:' % lab.prefix,
                                     lab.matrix_rows(lab.guest_reports())) else 1
    try:
        return demo(lab, args.python, args.keep)
    finally:
        if not args.keep:
            lab.down()


if __name__ == '__main__':
    sys.exit(main())
