# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tuntap.qemu namespace lab: a LAN and hypervisors as network namespaces.

    tuntap_lab.py demo [--keep]   up, converge playbooks/lab_demo.yml, print the matrix, down
    tuntap_lab.py up              create the namespaces and the inventory
    tuntap_lab.py matrix          print the connectivity matrix of a running lab
    tuntap_lab.py down            remove everything the lab created

Layout (prefix default 'ttqlab-'):
    <prefix>lan    the LAN switch: bridge lan0, no address
    <prefix>peer   a LAN host, eth0 10.0.0.20/24
    <prefix>hv1    a hypervisor, eth0 10.0.0.11/24 (the uplink the collection works on)

Nothing here touches the root network namespace: every link is created inside a lab
namespace (veth pairs are created in the LAN namespace and one end moved), and the only
files written outside the state folder are /etc/netns/<namespace>/ folders, which
`ip netns exec` bind-mounts over /etc inside that namespace only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAN_CIDR = '10.0.0.0/24'
PEER_ADDRESS = '10.0.0.20'
ENV = dict(os.environ, LC_ALL='C.UTF-8')


def run(argv, check=True, capture=False, netns=None):
    if netns:
        argv = ['ip', 'netns', 'exec', netns] + argv
    return subprocess.run(argv, check=check, env=ENV, text=True,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.STDOUT if capture else None)


class Lab:
    def __init__(self, prefix, state_dir=None):
        if not re.match(r'^[a-z0-9-]{1,10}$', prefix):
            raise SystemExit('--prefix: %r must be 1-10 characters of a-z, 0-9 and -' % prefix)
        self.prefix = prefix
        self.state_dir = state_dir or os.path.join('/run/tuntap-lab', prefix.rstrip('-'))
        self.lan = prefix + 'lan'
        self.hosts = {
            # name: (namespace, address)
            'peer': (prefix + 'peer', PEER_ADDRESS),
            'hv1': (prefix + 'hv1', '10.0.0.11'),
        }

    @property
    def namespaces(self):
        return [self.lan] + [ns for ns, _address in self.hosts.values()]

    @property
    def inventory(self):
        return os.path.join(self.state_dir, 'inventory.ini')

    # ------------------------------------------------------------ up / down
    def up(self, python):
        self.down(quiet=True)
        os.makedirs(self.state_dir, exist_ok=True)
        with open(os.path.join(self.state_dir, 'state.json'), 'w') as handle:
            json.dump({'namespaces': self.namespaces}, handle)
        for ns in self.namespaces:
            run(['ip', 'netns', 'add', ns])
            os.makedirs('/etc/netns/%s/sysctl.d' % ns, exist_ok=True)
            os.makedirs('/etc/netns/%s/network/interfaces.d' % ns, exist_ok=True)
            run(['ip', 'link', 'set', 'lo', 'up'], netns=ns)
        run(['ip', 'link', 'add', 'lan0', 'type', 'bridge'], netns=self.lan)
        run(['ip', 'link', 'set', 'lan0', 'up'], netns=self.lan)
        for index, (name, (ns, address)) in enumerate(sorted(self.hosts.items())):
            port = 'p-%s' % name
            # Both ends are born in the LAN namespace; one moves to the host as eth0.
            run(['ip', 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'e%d' % index],
                netns=self.lan)
            run(['ip', 'link', 'set', 'e%d' % index, 'netns', ns, 'name', 'eth0'], netns=self.lan)
            run(['ip', 'link', 'set', port, 'master', 'lan0', 'up'], netns=self.lan)
            run(['ip', 'addr', 'add', '%s/24' % address, 'dev', 'eth0'], netns=ns)
            run(['ip', 'link', 'set', 'eth0', 'up'], netns=ns)
        # The LAN peer routes the hypervisor's guest networks back through it (the routed
        # topology); NAT topologies work without this route.
        run(['ip', 'route', 'add', '192.168.0.0/16', 'via', self.hosts['hv1'][1]],
            netns=self.hosts['peer'][0])
        with open(self.inventory, 'w') as handle:
            handle.write('[lan]\n')
            handle.write('peer ansible_host=%s\n' % self.hosts['peer'][0])
            handle.write('\n[hypervisors]\n')
            handle.write('hv1 ansible_host=%s lab_uplink_address=%s\n' % self.hosts['hv1'])
            handle.write('\n[all:vars]\nansible_connection=tuntap.qemu.netns\n')
            handle.write('ansible_python_interpreter=%s\n' % python)
            handle.write('lab_peer_address=%s\n' % PEER_ADDRESS)
        print('lab %s is up: namespaces %s' % (self.prefix, ', '.join(self.namespaces)))
        print('inventory: %s' % self.inventory)

    def down(self, quiet=False):
        namespaces = set(self.namespaces)
        state = os.path.join(self.state_dir, 'state.json')
        if os.path.exists(state):
            with open(state) as handle:
                namespaces.update(json.load(handle)['namespaces'])
        for ns in sorted(namespaces):
            if os.path.exists('/run/netns/%s' % ns):
                run(['ip', 'netns', 'del', ns])
            shutil.rmtree('/etc/netns/%s' % ns, ignore_errors=True)
        shutil.rmtree(self.state_dir, ignore_errors=True)
        if not quiet:
            print('lab %s removed' % self.prefix)

    # ------------------------------------------------------------ proof
    def ping(self, source_ns, target):
        result = run(['ping', '-n', '-c', '3', '-i', '0.2', '-W', '1', target],
                     check=False, capture=True, netns=source_ns)
        match = re.search(r'= [\d.]+/([\d.]+)/', result.stdout)
        return result.returncode == 0, (float(match.group(1)) if match else None)

    def matrix(self, checks):
        """checks: list of (from label, namespace, to label, address); prints a table."""
        rows = []
        for source, ns, target, address in checks:
            ok, latency = self.ping(ns, address)
            rows.append((source, '%s (%s)' % (target, address), 'ok' if ok else 'FAIL',
                         '%.2f ms' % latency if latency is not None else '-'))
        widths = [max(len(row[i]) for row in rows + [('from', 'to', 'result', 'latency')])
                  for i in range(4)]
        line = '  '.join('%%-%ds' % width for width in widths)
        print(line % ('from', 'to', 'result', 'latency'))
        print(line % tuple('-' * width for width in widths))
        for row in rows:
            print(line % row)
        return all(row[2] == 'ok' for row in rows)

    def demo_checks(self):
        peer, hv1 = self.hosts['peer'][0], self.hosts['hv1'][0]
        return [
            ('hv1', hv1, 'peer', PEER_ADDRESS),
            ('peer', peer, 'hv1 uplink', '10.0.0.11'),
            ('peer', peer, 'hv1 br0 gateway', '192.168.0.1'),
            ('peer', peer, 'hv1 tap100 gateway', '192.168.100.1'),
        ]


def ansible_playbook():
    found = shutil.which('ansible-playbook')
    if not found:
        raise SystemExit('ansible-playbook not found; run lab/run.sh, which installs it')
    return found


def collections_path():
    """A folder ansible_collections/tuntap/qemu that points at this checkout."""
    root = '/run/tuntap-lab/collections'
    link = os.path.join(root, 'ansible_collections', 'tuntap', 'qemu')
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if os.path.islink(link) and os.readlink(link) != REPO:
        os.unlink(link)
    if not os.path.lexists(link):
        os.symlink(REPO, link)
    return root


def converge(lab, playbook, extra=()):
    """Run a playbook against the lab; returns (exit code, total 'changed' of the recap)."""
    env = dict(ENV, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_HOST_KEY_CHECKING='False',
               ANSIBLE_PIPELINING='True', ANSIBLE_FORCE_COLOR='0', ANSIBLE_NOCOLOR='1')
    argv = [ansible_playbook(), '-i', lab.inventory, os.path.join(REPO, 'playbooks', playbook)]
    process = subprocess.Popen(argv + list(extra), env=env, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    changed = 0
    for line in process.stdout:
        sys.stdout.write(line)
        match = re.search(r'\bok=\d+\s+changed=(\d+)', line)
        if match:
            changed += int(match.group(1))
    return process.wait(), changed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('command', nargs='?', default='demo', choices=['demo', 'up', 'down', 'matrix'])
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
    if args.command == 'matrix':
        return 0 if lab.matrix(lab.demo_checks()) else 1

    started = time.time()
    try:
        lab.up(args.python)
        rc, _changed = converge(lab, 'lab_demo.yml')
        if rc != 0:
            print('the converge failed (exit %d)' % rc)
            return rc
        print('\nsecond converge (must report changed=0):')
        rc, changed = converge(lab, 'lab_demo.yml')
        if rc != 0 or changed != 0:
            print('the second converge was not idempotent (exit %d, changed=%d)' % (rc, changed))
            return rc or 1
        print('\nconnectivity matrix of lab %s:' % lab.prefix)
        ok = lab.matrix(lab.demo_checks())
        print('\n%s in %.1f s' % ('all pings ok' if ok else 'SOME PINGS FAILED', time.time() - started))
        if args.keep:
            print('the lab stays up; inventory %s; tear it down with: %s down --prefix %s'
                  % (lab.inventory, sys.argv[0], lab.prefix))
        return 0 if ok else 1
    finally:
        if not args.keep:
            lab.down()


if __name__ == '__main__':
    sys.exit(main())
