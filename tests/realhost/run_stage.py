# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The real-host stage: each topology converged on a real Debian 12 VM, rebooted, compared.

    run_stage.py [--only routed_nat[,bridged_lan]] [--keep] [--jobs 2] [--collections DIR]

For each topology, on a VM of its own (realhost.Vm: its own namespace LAN, reached over
SSH from a controller namespace):
  1. the lab's test guest goes to the host (scp, not measured);
  2. playbooks/site.yml converges (for bridged_lan while the LAN peer pings the host 10/s:
     at most 1 lost);
  3. the state is read (host_state), the host reboots for real (ansible.builtin.reboot),
     the state is read again: it must be equal, or each difference explained by the
     topology's allow-list (with its reason) -- an unexplained difference fails;
  4. every inventory guest's QEMU runs again on its tap and answers QMP;
  5. a second site.yml reports changed=0;
  6. for routed_nat, the serial console of a guest started at boot shows its network came up;
  7. the NAT topologies run checks_nat (the table and our boot unit after the converge and
     after the boot with nftables.service disabled as Debian installs it); bridged_nat also
     the admin's case: nftables.service enabled and restarted, a second reboot, changed=0.
One result line per check, PASS or FAIL; the last line counts them, and the exit status is
non-zero on any failure. Logs stay in /var/tmp/tuntap-qemu-realhost-logs/<run>/.

--collections DIR: a folder with ansible_collections/tuntap/qemu (tests/run.sh passes its
laid-out copy); without it the work tree is laid out into a temporary folder.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from typing import NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, 'lab', 'guest'))

import build_guest  # noqa: E402  pylint: disable=wrong-import-position
import build_image  # noqa: E402  pylint: disable=wrong-import-position
import checks_nat  # noqa: E402  pylint: disable=wrong-import-position
import guest_boot  # noqa: E402  pylint: disable=wrong-import-position
import host_state  # noqa: E402  pylint: disable=wrong-import-position
import realhost  # noqa: E402  pylint: disable=wrong-import-position

LOG_ROOT = '/var/tmp/tuntap-qemu-realhost-logs'
GUEST_DIR = '/var/lib/tuntap-qemu-test'
# Measured: the lab guest under TCG inside the TCG VM reaches its network ~95 s after its
# QEMU starts on a quiet machine, and reached only its /init after 300 s while two more
# QEMU labs ran beside the stage. The wait counts from the end of the reboot, while the
# second converge runs.
SERIAL_TIMEOUT = int(os.environ.get('TUNTAP_REALHOST_SERIAL_TIMEOUT', '360'))
MAX_PING_LOSS = 1
PEER = realhost.PEER_ADDRESS
HOST = realhost.HOST_ADDRESS


class Guest(NamedTuple):
    name: str
    address: str
    gateway: str | None = None    # as given in the inventory (None: the plan's)


class Topology(NamedTuple):
    """One run of the stage: a topology, its inventory and what may differ after a boot."""
    name: str                     # the run's name; the topology unless `topology` says
    guests: tuple
    hostvars: dict
    # The peer's routes back to guest subnets (routed: the LAN routes them to the host).
    peer_routes: tuple = ()
    ping_during_converge: bool = False
    serial_wait: bool = False
    # The NAT networks (checks_nat): masqueraded out of eth0, back at boot.
    nat_subnets: tuple = ()
    # checks_nat's admin case: nftables.service enabled and restarted, a second reboot.
    nftables_admin_case: bool = False
    # The NAT backend is iptables: checks_nat's ifupdown hook checks instead of the unit's.
    iptables: bool = False
    topology: str | None = None
    # Not in the default set (the stage's time budget); run it with --only.
    extra: bool = False
    # False: the guests' QEMU starts paused (-S, QMP status prelaunch). Each booting guest
    # costs the VM's only vCPU minutes (TCG inside TCG) after the converge and again after
    # the reboot; the stage proves a guest's own boot once (routed_nat's console), and
    # everywhere else the unit, the process on its tap and QMP.
    boot_guests: bool = False
    # Issue 14: before the converge, the same inventory on another subnet (this uplink
    # address, gateway and the guests' addresses in it) must be refused, changing nothing.
    wrong_uplink: tuple = ()
    # (regex on a host_state difference path, reason): explained differences after a boot.
    allowed: tuple = ()
    # Issue 10: after the reboot, the host leaves this topology for `leave` (another
    # Topology: its topology, guests and peer routes) while the LAN peer pings it and an SSH
    # session stays open; then it reboots again and must come back as it left.
    leave: 'Topology | None' = None


TOPOLOGIES = (
    # The longest first (two VMs at a time): routed_nat waits for a guest's console,
    # bridged_nat reboots twice. One guest per topology, two where a second tap is the
    # point; only routed_nat's guest boots.
    Topology('routed_nat',
             guests=(Guest('vm3', '192.168.3.10/24'),),
             hostvars={}, serial_wait=True, nat_subnets=('192.168.3.0/24',), boot_guests=True),
    Topology('bridged_nat',
             guests=(Guest('vm5', '192.168.5.10/24'),),
             hostvars={'tuntap_qemu_bridge_address': '192.168.5.1/24'},
             nat_subnets=('192.168.5.0/24',), nftables_admin_case=True),
    Topology('bridged_lan',
             guests=(Guest('vm7', '10.44.0.101/24', gateway=realhost.GATEWAY_ADDRESS),),
             hostvars={'tuntap_qemu_guest_user': realhost.USER}, ping_during_converge=True,
             wrong_uplink=('10.45.0.50/24', '10.45.0.1', '10.45.0.0/24'),
             leave=Topology('bridged_lan_to_routed', topology='routed',
                            # vm7 goes (its unit with it), vm8 comes.
                            guests=(Guest('vm8', '192.168.7.10/24'),),
                            hostvars={'tuntap_qemu_guest_user': realhost.USER},
                            peer_routes=('192.168.7.0/24',))),
    Topology('routed',
             guests=(Guest('vm1', '192.168.1.10/24'), Guest('vm2', '192.168.2.10/24')),
             hostvars={'tuntap_qemu_guest_user': realhost.USER},
             peer_routes=('192.168.1.0/24', '192.168.2.0/24')),
    Topology('routed_nat_iptables', topology='routed_nat',
             guests=(Guest('vm9', '192.168.9.10/24'),),
             hostvars={'tuntap_qemu_nat_backend': 'iptables'}, nat_subnets=('192.168.9.0/24',),
             iptables=True, extra=True),
)
BY_NAME = dict((topology.name, topology) for topology in TOPOLOGIES)

_print_lock = threading.Lock()


def say(message):
    with _print_lock:
        print(message, flush=True)


class Check(NamedTuple):
    topology: str
    name: str
    ok: bool
    detail: str

    def line(self):
        return '%s %s: %s%s' % ('PASS' if self.ok else 'FAIL', self.topology, self.name,
                                ' (%s)' % self.detail if self.detail else '')


def guest_gateway(topology, guest):
    if guest.gateway:
        return guest.gateway
    if (topology.topology or topology.name) in ('routed', 'routed_nat'):
        return str(next(ipaddress.ip_interface(guest.address).network.hosts()))
    if topology.name == 'bridged_nat':
        return topology.hostvars['tuntap_qemu_bridge_address'].split('/')[0]
    return None


def ping_targets(topology, guest):
    """What a guest pings from its console: its gateway (bridged_lan: the host), the other
    guests of its host, the LAN peer."""
    first = guest_gateway(topology, guest) if topology.name != 'bridged_lan' else HOST
    others = [other.address.split('/')[0] for other in topology.guests if other is not guest]
    return [first] + others + [PEER]


def inventory_vars(topology):
    guests = []
    for guest in topology.guests:
        spec = {'name': guest.name, 'address': guest.address,
                'kernel': GUEST_DIR + '/vmlinuz', 'initrd': GUEST_DIR + '/initrd.img',
                'memory': 160,
                # The VM's CPU offers svm under TCG (see realhost.cpu_model): no nested KVM.
                'accel': 'tcg',
                # A booting guest's kernel messages stay on its console (they show how far
                # it got when the stage waits for it in vain).
                'append': 'console=ttyS0%s panic=-1 ttq.ping=%s ttq.after=stay'
                          % ('' if topology.boot_guests else ' quiet', ','.join(ping_targets(topology, guest))),
                'extra_args': ['-no-reboot'] + ([] if topology.boot_guests else ['-S'])}
        if guest.gateway:
            spec['gateway'] = guest.gateway
        guests.append(spec)
    return dict({
        'tuntap_qemu_topology': topology.topology or topology.name,
        'tuntap_qemu_uplink': 'eth0',
        'tuntap_qemu_uplink_address': '%s/%d' % (HOST, realhost.PREFIX_LEN),
        'tuntap_qemu_uplink_gateway': realhost.GATEWAY_ADDRESS,
        'tuntap_qemu_install_packages': True,
        'tuntap_qemu_guests': guests,
    }, **topology.hostvars)


def ping_summary(output):
    match = re.search(r'(\d+) packets transmitted, (\d+) received', output)
    if not match:
        return None
    sent, received = int(match.group(1)), int(match.group(2))
    return sent - received, sent


class TopologyRun:
    """The steps of one topology on its own VM; checks collected in self.checks."""

    def __init__(self, topology, image, guest_build, collections, log_dir, keep):
        self.topology = topology
        self.image = image
        self.guest_build = guest_build
        self.collections = collections
        self.log_dir = os.path.join(log_dir, topology.name)
        self.keep = keep
        self.checks = []
        self.times = {}
        os.makedirs(self.log_dir, exist_ok=True)

    def check(self, name, ok, detail=''):
        item = Check(self.topology.name, name, bool(ok), detail)
        self.checks.append(item)
        say(item.line())
        return item.ok

    def check_all(self, checks):
        """checks_nat's [(name, ok, detail)]."""
        results = [self.check(name, ok, str(detail)) for name, ok, detail in checks]
        return all(results)

    def note(self, message):
        say('[%s] %s' % (self.topology.name, message))

    def playbook(self, vm, name, playbook, inventory):
        rc, output, seconds = vm.playbook(playbook, inventory, log_path=os.path.join(self.log_dir, name + '.log'))
        summary = realhost.recap(output)
        if rc != 0:
            failed = [line for line in output.splitlines() if line.startswith(('fatal:', 'failed:', '[ERROR]'))
                      or '"msg":' in line][:4]
            self.note('%s failed (exit %d): %s' % (name, rc, ' | '.join(line.strip()[:400] for line in failed)))
        return rc, summary, seconds

    def run(self):
        topology = self.topology
        self.note('booting a VM')
        vm = realhost.Vm(self.image, collections_path=self.collections, log=self.note)
        try:
            vm.up()
            self.times['boot'] = vm.boot_seconds
            self.note('VM %s: SSH after %.0fs' % (vm.prefix, vm.boot_seconds))
            self.steps(vm)
        except realhost.RealHostError as error:
            self.check('VM', False, str(error))
        except Exception as error:  # pylint: disable=broad-except
            # Reported as a failed check, so the other topologies still run and report.
            detail = '%s: %s\n%s' % (type(error).__name__, error, traceback.format_exc(limit=4))
            self.check('stage step', False, detail)
        finally:
            if self.keep and vm.alive():
                self.note('kept: %s ; inventory %s ; remove: %s cleanup --prefix %s'
                          % (' '.join(vm.in_controller(vm.ssh_argv())), os.path.join(vm.state, 'inventory.json'),
                             os.path.join(HERE, 'realhost.py'), vm.prefix))
            else:
                self.save_serial(vm)
                vm.down()
        return self.checks

    def save_journal(self, vm, name, boot='-1'):
        """The host's journal of a boot (Debian 12 keeps it in /var/log/journal) into the logs:
        what the shutdown waited for."""
        result = vm.ssh('sudo', 'journalctl', '-b', boot, '-o', 'short-monotonic', '--no-pager',
                        check=False, timeout=120)
        with open(os.path.join(self.log_dir, name), 'w') as handle:
            handle.write(result.stdout)

    def save_boot_analysis(self, vm, name):
        """What the boot waited for: systemd-analyze time, critical-chain and blame."""
        with open(os.path.join(self.log_dir, name), 'w') as handle:
            for argv in (['systemd-analyze', 'time'], ['systemd-analyze', 'critical-chain', 'multi-user.target'],
                         ['systemd-analyze', 'blame']):
                result = vm.ssh('sudo', *argv, check=False, timeout=60)
                handle.write('$ %s\n%s\n' % (' '.join(argv), result.stdout))

    def save_serial(self, vm):
        if os.path.exists(vm.serial_log):
            shutil.copy(vm.serial_log, os.path.join(self.log_dir, 'host-serial.log'))

    def steps(self, vm):
        topology = self.topology
        for network in topology.peer_routes:
            realhost.run(['ip', 'route', 'add', network, 'via', HOST], netns=vm.peer)
        inventory = vm.write_inventory(hostvars=inventory_vars(topology))
        try:
            vm.copy_to(self.guest_build['kernel'], GUEST_DIR + '/vmlinuz')
            vm.copy_to(self.guest_build['initrd'], GUEST_DIR + '/initrd.img')
        except realhost.RealHostError as error:
            self.check('test guest copied to the host', False, str(error))
            return
        site = os.path.join(REPO, 'playbooks', 'site.yml')
        if topology.wrong_uplink:
            self.wrong_uplink_refused(vm, site)

        # 1. converge (bridged_lan: while the LAN peer pings the host 10 times a second)
        pinger = None
        if topology.ping_during_converge:
            pinger = vm.spawn(['ping', '-n', '-i', '0.1', HOST], netns=vm.peer)
            time.sleep(0.5)
        rc, summary, seconds = self.playbook(vm, 'converge', site, inventory)
        self.times['converge'] = seconds
        if pinger is not None:
            time.sleep(0.5)
            pinger.send_signal(signal.SIGINT)
            output = pinger.communicate(timeout=10)[0]
            vm.children.remove(pinger)
            loss = ping_summary(output)
            self.times['ping'] = loss
            self.check('LAN peer pings the host during the converge',
                       loss is not None and loss[0] <= MAX_PING_LOSS,
                       'lost %d of %d, at most %d allowed' % (loss + (MAX_PING_LOSS,)) if loss
                       else 'no ping summary: %s' % output[-300:])
        self.check('converge', rc == 0, '%.0fs, %s' % (seconds, summary))
        before_raw = host_state.collect(vm)
        before = host_state.normalise(before_raw)
        self.check_guests('guests run after the converge', before)
        if topology.nat_subnets and not topology.iptables:
            self.check_all(checks_nat.after_converge(vm, list(topology.nat_subnets)))

        # 2. a real reboot
        rc, summary, seconds = self.playbook(vm, 'reboot', os.path.join(HERE, 'playbooks', 'reboot.yml'), inventory)
        self.times['reboot'] = seconds
        rebooted_at = time.monotonic()
        if not self.check('reboot', rc == 0, '%.0fs' % seconds):
            return
        after_raw = host_state.collect(vm)
        after = host_state.normalise(after_raw)
        self.save_journal(vm, 'journal-before-reboot.txt')
        self.save_boot_analysis(vm, 'boot-after-reboot.txt')
        # From the reboot command to the host's boot: shutdown (guests stopping) and reset.
        self.times['shutdown'] = seconds - after_raw['uptime']
        self.note('reboot %.0fs: about %.0fs to go down, %.0fs from power-on to SSH'
                  % (seconds, self.times['shutdown'], after_raw['uptime']))
        if after_raw['boot_id'] == before_raw['boot_id']:
            self.check('the host really rebooted', False, 'the same boot_id %s before and after' % after_raw['boot_id'])
        self.compare(before, after)
        boot_guests = self.check_guests('guests are back after the reboot (QEMU on its tap, QMP)', after)
        if topology.iptables:
            self.check_all(checks_nat.after_boot_iptables(vm, list(topology.nat_subnets)))
        elif topology.nat_subnets:
            self.check_all(checks_nat.after_boot(vm, list(topology.nat_subnets), nftables_enabled=False))

        # 3. idempotence after the reboot
        rc, summary, seconds = self.playbook(vm, 'converge-again', site, inventory)
        self.times['converge_again'] = seconds
        self.check('second converge reports changed=0', rc == 0 and summary is not None and summary.get('changed') == 0,
                   'exit %d, %s' % (rc, summary))

        # 4. the guest's own console, once in the stage
        if topology.serial_wait:
            self.wait_for_guest_network(vm, after_raw, boot_guests, rebooted_at)

        # 6. (issue 10) leave the topology, keeping the host reachable
        if topology.leave is not None:
            self.leave_topology(vm, site)

        # 5. an admin who uses nftables.service: enable, restart, reboot, converge
        if topology.nftables_admin_case:
            subnets = list(topology.nat_subnets)
            self.check_all(checks_nat.admin_enables_nftables(vm, subnets))
            self.check_all(checks_nat.restart_nftables(vm, subnets))
            rc, summary, seconds = self.playbook(vm, 'reboot-nftables-enabled',
                                                 os.path.join(HERE, 'playbooks', 'reboot.yml'), inventory)
            if not self.check('reboot with nftables.service enabled', rc == 0, '%.0fs' % seconds):
                return
            self.check_all(checks_nat.after_boot(vm, subnets, nftables_enabled=True))
            rc, summary, seconds = self.playbook(vm, 'converge-nftables-enabled', site, inventory)
            self.check('converge with nftables.service enabled reports changed=0',
                       rc == 0 and summary is not None and summary.get('changed') == 0,
                       'exit %d, %s' % (rc, summary))

    def leave_topology(self, vm, site):
        """Issue 10 on the real host: the inventory moves the host out of its topology. The
        converge gives the bridge's addresses and routes back to the uplink while the LAN
        peer pings the host and an SSH session stays open; br0 goes, the new topology's
        guest runs; a reboot brings back the same state; the next converge changes nothing."""
        target = self.topology.leave
        for network in target.peer_routes:
            realhost.run(['ip', 'route', 'add', network, 'via', HOST], netns=vm.peer)
        inventory = vm.write_inventory('leave.json', hostvars=inventory_vars(target))
        pinger = vm.spawn(['ping', '-n', '-i', '0.1', HOST], netns=vm.peer)
        # An SSH session of its own (no shared master): it ends when its stdin closes, after
        # the converge, and prints a word; a connection cut by the change ends it early.
        session = subprocess.Popen(vm.in_controller(['ssh', '-i', vm.key] + realhost.SSH_OPTIONS + [
            '-o', 'ServerAliveInterval=2', '-o', 'ServerAliveCountMax=3', '-o', 'ConnectTimeout=5',
            '%s@%s' % (realhost.USER, HOST), 'cat >/dev/null; echo session-survived']),
            env=realhost.ENV, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        vm.children.append(session)
        time.sleep(3)
        rc, summary, seconds = self.playbook(vm, 'leave', site, inventory)
        self.times['leave'] = seconds
        time.sleep(0.5)
        pinger.send_signal(signal.SIGINT)
        output = pinger.communicate(timeout=10)[0]
        vm.children.remove(pinger)
        early = session.poll()
        try:
            said = session.communicate(input='', timeout=30)[0]
        except subprocess.TimeoutExpired:
            session.kill()
            said = session.communicate()[0]
        vm.children.remove(session)
        self.check('leaving %s: converge to %s' % (self.topology.name, target.topology), rc == 0,
                   '%.0fs, %s' % (seconds, summary))
        loss = ping_summary(output)
        self.check('LAN peer pings the host while it leaves %s' % self.topology.name,
                   loss is not None and loss[0] <= MAX_PING_LOSS,
                   'lost %d of %d, at most %d allowed' % (loss + (MAX_PING_LOSS,)) if loss
                   else 'no ping summary: %s' % output[-300:])
        self.check('an SSH session open across the change survives it',
                   early is None and session.returncode == 0 and 'session-survived' in said,
                   'ended %s during the converge, exit %s: %s' % (
                       'already' if early is not None else 'not', session.returncode, said.strip()[-300:]))
        left_raw = host_state.collect(vm)
        left = host_state.normalise(left_raw)
        uplink = '%s/%d' % (HOST, realhost.PREFIX_LEN)
        problems = []
        if 'br0' in left['link']:
            problems.append('br0 is still there')
        if uplink not in left['addr'].get('eth0', []):
            problems.append('eth0 does not hold %s: %s' % (uplink, left['addr'].get('eth0')))
        if 'default via %s dev eth0' % realhost.GATEWAY_ADDRESS not in left['route4']:
            problems.append('no default route via %s on eth0: %s' % (realhost.GATEWAY_ADDRESS, sorted(left['route4'])))
        self.check('the bridge went, the uplink has its address and default route back', not problems,
                   '; '.join(problems) or 'eth0 %s, default via %s' % (uplink, realhost.GATEWAY_ADDRESS))
        gone = sorted(set(guest.name for guest in self.topology.guests) - set(guest.name for guest in target.guests))
        leftovers = ['%s: %s' % (name, where) for name in gone for where, present in (
            ('unit', 'tuntap-qemu-guest-%s.service' % name in left['unit']),
            ('runtime folder', name in left['guest']),
            ('QEMU process', any(name in key for key in left['qemu'])))
            if present]
        self.check('the removed guest %s left no unit, folder or process' % ', '.join(gone), not leftovers,
                   '; '.join(leftovers) or 'unit, folder and QEMU gone')
        saved, self.topology = self.topology, target
        try:
            self.check_guests('the guest of the new topology runs', left)
            rc, summary, seconds = self.playbook(vm, 'reboot-after-leaving',
                                                 os.path.join(HERE, 'playbooks', 'reboot.yml'), inventory)
            if not self.check('reboot after leaving %s' % saved.name, rc == 0, '%.0fs' % seconds):
                return
            self.compare(left, host_state.normalise(host_state.collect(vm)))
            rc, summary, seconds = self.playbook(vm, 'leave-again', site, inventory)
            self.check('converge after leaving and rebooting reports changed=0',
                       rc == 0 and summary is not None and summary.get('changed') == 0,
                       'exit %d, %s' % (rc, summary))
        finally:
            self.topology = saved

    def wrong_uplink_refused(self, vm, site):
        """Issue 14 on the real host: a typo'd uplink address is an error that names the
        host, the inventory's value and the uplink's real one, and the host is untouched."""
        address, gateway, network = self.topology.wrong_uplink
        network = ipaddress.ip_network(network)
        hostvars = inventory_vars(self.topology)
        hostvars['tuntap_qemu_uplink_address'] = address
        hostvars['tuntap_qemu_uplink_gateway'] = gateway
        for guest in hostvars['tuntap_qemu_guests']:
            # The same host number in the other subnet (10.44.0.101 -> 10.45.0.101).
            host_number = int(ipaddress.ip_interface(guest['address']).ip) & int(network.hostmask)
            guest['address'] = '%s/%d' % (network[host_number], network.prefixlen)
            if 'gateway' in guest:
                guest['gateway'] = gateway
        inventory = vm.write_inventory('wrong-uplink.json', hostvars=hostvars)
        before = host_state.normalise(host_state.collect(vm))
        rc, summary, _seconds = self.playbook(vm, 'wrong-uplink', site, inventory)
        with open(os.path.join(self.log_dir, 'wrong-uplink.log')) as handle:
            output = handle.read()
        after = host_state.normalise(host_state.collect(vm))
        real = '%s/%d' % (HOST, realhost.PREFIX_LEN)
        named = 'ttqhost' in output and address in output and real in output
        self.check('inventory with uplink address %s (the uplink has %s) is refused' % (address, real),
                   rc != 0 and named, 'exit %d, %s; the error %s the host, %s and %s' % (
                       rc, summary, 'names' if named else 'does NOT name', address, real))
        differences = host_state.compare(before, after)
        self.check('the refused run changed nothing (links, addresses, routes, nft, files)', not differences,
                   '; '.join(str(item) for item in differences[:6]))

    def expected_taps(self):
        return dict((guest.name, 'tap%d' % index) for index, guest in enumerate(self.topology.guests))

    def check_guests(self, title, state):
        """Every inventory guest: its QEMU runs (pidfile), on its tap, and QMP says running
        (prelaunch for guests started paused, see Topology.boot_guests)."""
        wanted = 'running' if self.topology.boot_guests else 'prelaunch'
        problems = []
        good = []
        for name, tap in sorted(self.expected_taps().items()):
            guest = state['guest'].get(name)
            if guest is None:
                problems.append('%s: no runtime folder' % name)
            elif not guest['running']:
                problems.append('%s: no QEMU (pidfile)' % name)
            elif guest['tap'] != tap:
                problems.append('%s: QEMU on %s, expected %s' % (name, guest['tap'], tap))
            elif guest['qmp'] != wanted:
                problems.append('%s: QMP %s, expected %s' % (name, guest['qmp'], wanted))
            else:
                good.append(name)
        self.check(title, not problems, '; '.join(problems) or '%s on %s, QMP %s' % (
            ', '.join(good), ', '.join(self.expected_taps()[name] for name in good), wanted))
        return good

    def compare(self, before, after):
        explained = host_state.explain(host_state.compare(before, after), self.topology.allowed)
        unexplained = [item.difference for item in explained if item.reason is None]
        with open(os.path.join(self.log_dir, 'differences.txt'), 'w') as handle:
            for item in explained:
                handle.write('%s   [%s]\n' % (item.difference, item.reason or 'UNEXPLAINED'))
        for item in explained:
            self.note('after reboot: %s   [%s]' % (item.difference, item.reason or 'UNEXPLAINED'))
        self.check('state after the reboot equals the state after the converge', not unexplained,
                   'equal' if not explained else '%d differences, %d explained, %d unexplained'
                   % (len(explained), len(explained) - len(unexplained), len(unexplained)))

    def wait_for_guest_network(self, vm, after_raw, boot_guests, rebooted_at):
        """A guest whose QEMU started at boot (same pid as just after the reboot) prints
        TTQ-DONE with every ping ok on its serial console."""
        if not boot_guests:
            self.check('guest console: network up after the reboot', False, 'no guest came back at boot')
            return
        name = boot_guests[0]
        pid = after_raw['guests'][name]['pid']
        folder = '%s/%s' % (host_state.DEFAULT_RUNTIME_ROOT, name)
        deadline = rebooted_at + SERIAL_TIMEOUT
        report = None
        while True:
            result = vm.ssh('sudo', 'sh', '-c', 'cat %s/qemu.pid; echo ---; cat %s/serial.log' % (folder, folder),
                            check=False, timeout=30)
            head, _separator, serial = result.stdout.partition('---\n')
            if head.strip() != str(pid):
                self.check('guest console: network up after the reboot', False,
                           '%s: QEMU pid %s at boot, now %r' % (name, pid, head.strip()))
                return
            report = guest_boot.parse_serial(serial)
            if report['done'] or time.monotonic() > deadline:
                break
            time.sleep(5)
        with open(os.path.join(self.log_dir, '%s-serial.log' % name), 'w') as handle:
            handle.write(serial)
        waited = time.monotonic() - rebooted_at
        results = report['results']
        failed = sorted(target for target, item in results.items() if item.get('status') != 'ok')
        ok = bool(report['done']) and not failed and results
        self.check('guest console: network up after the reboot', ok,
                   '%s (QEMU since boot): %s; %.0fs after the reboot' % (
                       name, ', '.join('%s %s' % (target, item.get('status')) for target, item in sorted(results.items()))
                       or 'no TTQ-RESULT', waited) if report['done'] else
                   '%s: no TTQ-DONE %.0fs after the reboot; errors %s' % (name, waited, report['errors']))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--only', action='append', metavar='TOPOLOGY[,TOPOLOGY]',
                        help='only these runs: %s (default all but %s)' % (
                            ', '.join(BY_NAME), ', '.join(t.name for t in TOPOLOGIES if t.extra)))
    parser.add_argument('--keep', action='store_true', help='leave the VMs up (prints how to reach and remove them)')
    parser.add_argument('--jobs', type=int, default=int(os.environ.get('TUNTAP_REALHOST_JOBS', '2')))
    parser.add_argument('--collections', help='folder holding ansible_collections/tuntap/qemu')
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit('the real-host stage creates network namespaces and runs QEMU: run it as root')
    only = [name for value in args.only or () for name in value.split(',') if name]
    unknown = sorted(set(only) - set(BY_NAME))
    if unknown:
        raise SystemExit('--only: unknown topology %s (known: %s)' % (', '.join(unknown), ', '.join(BY_NAME)))
    topologies = [topology for topology in TOPOLOGIES if topology.name in only or not only and not topology.extra]
    started = time.monotonic()
    if not args.keep:
        realhost.install_handlers()

    image, built = build_image.build()
    say('host image: %s (%s)' % (image, 'built in %.0fs' % built if built else 'cached'))
    guest = build_guest.build_guest()
    say('test guest: %s (%s)' % (guest['kernel'], 'cached' if guest['cached'] else 'built'))
    temp = None
    collections = args.collections
    if not collections:
        temp = tempfile.mkdtemp(prefix='tuntap-qemu-realhost-')
        collections = realhost.lay_out_collection(temp)
    log_dir = os.path.join(LOG_ROOT, 'ttqr%d' % os.getpid())
    say('logs: %s' % log_dir)
    runs = [TopologyRun(topology, image, guest, collections, log_dir, args.keep) for topology in topologies]
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(item.run) for item in runs]
            for future in futures:
                future.result()
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
    total = time.monotonic() - started

    say('')
    say('real-host stage (%s, %d at a time):' % (realhost.accelerator(), args.jobs))
    say('%-20s %6s %9s %7s %9s %-22s %s' % ('topology', 'boot', 'converge', 'reboot', 'again', 'state', 'ping loss'))
    for item in runs:
        times = item.times
        state = next((check for check in item.checks if check.name.startswith('state after')), None)

        def seconds(key):
            return '%.0fs' % times[key] if times.get(key) is not None else '-'
        ping = times.get('ping')
        say('%-20s %6s %9s %7s %9s %-22s %s' % (
            item.topology.name, seconds('boot'), seconds('converge'), seconds('reboot'), seconds('converge_again'),
            ('equal' if state.detail == 'equal' else state.detail.split(',')[0] + (' ok' if state.ok else ' FAIL'))
            if state else '-', 'lost %d of %d' % ping if ping else '-'))
    checks = [check for item in runs for check in item.checks]
    failed = [check for check in checks if not check.ok]
    say('')
    for check in failed:
        say(check.line())
    say('real-host stage: %d checks passed, %d failed, in %.0fs' % (len(checks) - len(failed), len(failed), total))
    return 1 if failed or not checks else 0


if __name__ == '__main__':
    sys.exit(main())
