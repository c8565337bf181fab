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
     the admin's case: nftables.service enabled and restarted, a second reboot, changed=0;
  8. bridged_lan (issue 11), on a static and on a DHCP uplink (dnsmasq in the LAN peer):
     before the real converge, injected failures the host must roll back by itself
     (readdress to another subnet; the LAN dropping the host once it bridged): the play
     fails naming the rollback, the host answers again within the timeout + 15 s, its
     network and files are as before. Then the takeover with an SSH session open across it;
     the admin's eth0 stanza out of /etc/network/interfaces (a marked block, a backup), no
     DHCP client on the port, the DHCP client and the same lease on br0; the same after the
     reboot; leaving bridged_lan brings the admin's stanza back byte for byte.
One result line per check, PASS or FAIL; the last line counts them, and the exit status is
non-zero on any failure. Logs stay in /var/tmp/tuntap-qemu-realhost-logs/<run>/.

--collections DIR: a folder with ansible_collections/tuntap/qemu (tests/run.sh passes its
laid-out copy); without it the work tree is laid out into a temporary folder.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import ipaddress
import json
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
# second converge runs: vm3 printed TTQ-DONE at 208-268 s of its uptime in earlier runs,
# and had reached only 300 s of uptime (its /init at 180 s) 411 s after the reboot while the
# second converge took 374 s of the wait (machine load 3-4). Guests that boot side by side
# share the VM's one vCPU: each one more gets SERIAL_TIMEOUT_MORE. The wait ends as soon as
# the consoles say TTQ-DONE.
SERIAL_TIMEOUT = int(os.environ.get('TUNTAP_REALHOST_SERIAL_TIMEOUT', '600'))
SERIAL_TIMEOUT_MORE = int(os.environ.get('TUNTAP_REALHOST_SERIAL_TIMEOUT_MORE', '240'))
MAX_PING_LOSS = 1
LAN = '10.44.0.0/%d' % realhost.PREFIX_LEN
# Issue 11's injected failures: the takeover timeout they run with, and how much longer than
# it the host may stay unreachable (the issue: reachable again within timeout + 15 s). The
# role arms right before the bridge task, which must start before the deadline (bridge_port's
# armed_change refuses it after): on CI's loaded machine a task took 5-15 s on the TCG host
# (the rollback of 20 s once fired before the bridge task, when the arm came before the taps
# and the VDE tasks), so 30 s.
ROLLBACK_TIMEOUT = 30
ROLLBACK_MARGIN = 15
PEER = realhost.PEER_ADDRESS
HOST = realhost.HOST_ADDRESS
# Issue 13's VDE switch: the plan's default tap and the socket vde_switch makes for it (the
# role's tuntap_qemu_vde_runtime_dir default; the guests' QEMU -netdev vde,sock=).
VDE_TAP = 'vde0'
VDE_SOCKET = host_state.VDE_RUNTIME_DIR + '/%s.ctl'


class Guest(NamedTuple):
    name: str
    address: str
    gateway: str | None = None    # as given in the inventory (None: the plan's)
    # Issue 13: attached to the host's VDE switch (no tap of its own; the topology's
    # hostvars have tuntap_qemu_vde), or an isolated port of the bridge (BR_ISOLATED).
    vde: bool = False
    isolated: bool = False
    # Whether its QEMU boots the guest (None: the topology's boot_guests).
    boot: bool | None = None


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
    # Issue 11: the host image's uplink (build_image.UPLINKS: 'static' or 'dhcp', served by
    # dnsmasq in the LAN peer) and the keyword of the admin's stanza for eth0 ('allow-hotplug'
    # as the installer writes it, or 'auto', set before the converge).
    uplink: str = 'static'
    stanza: str = 'allow-hotplug'
    # Issue 11: failures injected before the real converge, each rolled back by the host:
    # 'readdress' (the bridge gets another subnet's address: the controller loses the host),
    # 'lan_drop' (the LAN drops the host's frames once eth0 is a port of br0).
    injections: tuple = ()
    # Issue 12: the internal networks the host's dnsmasq serves, (interface, host address):
    # tuntap-qemu-dnsmasq.service active and enabled, its DHCP socket on the interface and
    # DNS on the address, after the converge and back after the reboot with the same config.
    dhcp_networks: tuple = ()
    # Issue 13: the internal IPv6 networks, (interface, the host's address6 with its /64), that
    # the plan puts on the tap or bridge and the host's dnsmasq advertises (RA, SLAAC): the
    # address and its route on the interface, IPv6 forwarding, dnsmasq's router advertisements
    # (the raw ICMPv6 socket, enable-ra and the ra-only range in its config) and DNS on the
    # address, after the converge and back after the reboot.
    ipv6_networks: tuple = ()
    # Issue 13: tuntap_qemu_nat6 (NAT66): the IPv6 networks of ipv6_networks are masqueraded
    # out of eth0 like nat_subnets; without it no IPv6 source is (routed /64s).
    nat6: bool = False


TOPOLOGIES = (
    # The longest first (two VMs at a time): routed_nat waits for a guest's console,
    # bridged_nat reboots twice. One guest per topology, two where a second tap is the
    # point; only routed_nat's guest boots.
    # Both dual-stack (issue 13): routed_nat plans vm3's /64 from a pool (the first /64, the
    # host side ::1 on tap0), nat6 off; bridged_nat has its bridge's IPv6 address and NAT66.
    # Issue 13's VDE switch on routed_nat: its tap vde0 holds 192.168.60.1/24, vm12 is
    # attached to it (no tap; a port of the switch), its subnet is masqueraded like tap0's
    # and served by the host's dnsmasq. vm12 starts paused: booting it beside vm3 starved the
    # VM's one vCPU so that its sshd missed the stage's 3 s banner timeout six times in a
    # row right after the converge (two runs at machine load 4-8); its own network through
    # the switch is the lab's VDE rows (tests/e2e). Issue 13's port isolation on
    # bridged_nat: vm5's tap0 is an isolated port of br0, vm10's tap1 is not (the plan's
    # isolated_ports are exactly the isolated guests' taps).
    Topology('routed_nat',
             guests=(Guest('vm3', '192.168.3.10/24'), Guest('vm12', '192.168.60.10/24', vde=True, boot=False)),
             hostvars={'tuntap_qemu_pool6': 'fd00:33::/56', 'tuntap_qemu_vde': {'address': '192.168.60.1/24'}},
             serial_wait=True, nat_subnets=('192.168.3.0/24', '192.168.60.0/24'),
             boot_guests=True, dhcp_networks=(('tap0', '192.168.3.1'), ('vde0', '192.168.60.1')),
             ipv6_networks=(('tap0', 'fd00:33::1/64'),)),
    Topology('bridged_nat',
             guests=(Guest('vm5', '192.168.5.10/24', isolated=True), Guest('vm10', '192.168.5.11/24')),
             hostvars={'tuntap_qemu_bridge_address': '192.168.5.1/24',
                       'tuntap_qemu_bridge_address6': 'fd00:55::1/64', 'tuntap_qemu_nat6': True},
             nat_subnets=('192.168.5.0/24',), nftables_admin_case=True,
             dhcp_networks=(('br0', '192.168.5.1'),),
             ipv6_networks=(('br0', 'fd00:55::1/64'),), nat6=True),
    Topology('bridged_lan',
             guests=(Guest('vm7', '10.44.0.101/24', gateway=realhost.GATEWAY_ADDRESS),),
             hostvars={'tuntap_qemu_guest_user': realhost.USER}, ping_during_converge=True,
             wrong_uplink=('10.45.0.50/24', '10.45.0.1', '10.45.0.0/24'),
             injections=('readdress',),
             leave=Topology('bridged_lan_to_routed', topology='routed',
                            # vm7 goes (its unit with it), vm8 comes.
                            guests=(Guest('vm8', '192.168.7.10/24'),),
                            hostvars={'tuntap_qemu_guest_user': realhost.USER},
                            peer_routes=('192.168.7.0/24',))),
    # Issue 11: a DHCP uplink (dnsmasq in the LAN peer, a static lease for the VM's MAC) with
    # an `auto eth0` stanza; the LAN drops the host once it bridged (rolled back), then the
    # real takeover, a reboot, and the way back to the admin's own stanza.
    Topology('bridged_lan_dhcp', topology='bridged_lan', uplink='dhcp', stanza='auto',
             guests=(Guest('vm6', '10.44.0.106/24', gateway=realhost.GATEWAY_ADDRESS),),
             hostvars={'tuntap_qemu_guest_user': realhost.USER}, ping_during_converge=True,
             injections=('lan_drop',),
             leave=Topology('bridged_lan_dhcp_to_routed', topology='routed', uplink='dhcp',
                            guests=(Guest('vm4', '192.168.4.10/24'),),
                            hostvars={'tuntap_qemu_guest_user': realhost.USER},
                            peer_routes=('192.168.4.0/24',))),
    # The other two stanza keywords of issue 11 (run with --only; the default set keeps the
    # stage within its time budget): static with `auto eth0`, DHCP with `allow-hotplug eth0`.
    Topology('bridged_lan_static_auto', topology='bridged_lan', stanza='auto',
             guests=(Guest('vm7', '10.44.0.101/24', gateway=realhost.GATEWAY_ADDRESS),),
             hostvars={'tuntap_qemu_guest_user': realhost.USER}, ping_during_converge=True, extra=True),
    Topology('bridged_lan_dhcp_hotplug', topology='bridged_lan', uplink='dhcp',
             guests=(Guest('vm6', '10.44.0.106/24', gateway=realhost.GATEWAY_ADDRESS),),
             hostvars={'tuntap_qemu_guest_user': realhost.USER}, ping_during_converge=True, extra=True),
    # routed is converged, rebooted and compared by bridged_lan's way out (bridged_lan_to_routed);
    # this run with two taps stays for --only.
    Topology('routed',
             guests=(Guest('vm1', '192.168.1.10/24'), Guest('vm2', '192.168.2.10/24')),
             hostvars={'tuntap_qemu_guest_user': realhost.USER},
             peer_routes=('192.168.1.0/24', '192.168.2.0/24'), extra=True),
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


def vde_switch(topology):
    """The host's VDE switch (issue 13) as (tap, host address with prefix), or None."""
    vde = topology.hostvars.get('tuntap_qemu_vde')
    return (vde.get('tap', VDE_TAP), vde['address']) if vde else None


def guest_boots(topology, guest):
    return topology.boot_guests if guest.boot is None else guest.boot


def guest_gateway(topology, guest):
    if guest.gateway:
        return guest.gateway
    if guest.vde:
        return vde_switch(topology)[1].split('/')[0]
    if (topology.topology or topology.name) in ('routed', 'routed_nat'):
        return str(next(ipaddress.ip_interface(guest.address).network.hosts()))
    if topology.name == 'bridged_nat':
        return topology.hostvars['tuntap_qemu_bridge_address'].split('/')[0]
    return None


def guest_interface(topology, guest):
    """The host's interface towards the guest: br0 (bridged), the VDE switch's tap, else the
    guest's tap."""
    if (topology.topology or topology.name) in ('bridged_nat', 'bridged_lan'):
        return 'br0'
    if guest.vde:
        return vde_switch(topology)[0]
    return guest_tap(topology, guest)


def guest_tap(topology, guest):
    """The plan's tap of a guest (tap<index in the inventory>); a VDE guest has none."""
    return None if guest.vde else 'tap%d' % topology.guests.index(guest)


def guest_gateway6(topology, guest):
    """The host side IPv6 address of the guest's network (issue 13), or None."""
    return next((address.split('/')[0] for interface, address in topology.ipv6_networks
                 if interface == guest_interface(topology, guest)), None)


def slaac_address(mac, network):
    """The address a guest's kernel makes by SLAAC from its MAC in a /64 (EUI-64)."""
    octets = [int(part, 16) for part in mac.split(':')]
    octets[0] ^= 0x02
    eui64 = octets[:3] + [0xff, 0xfe] + octets[3:]
    return ipaddress.ip_network(network)[int.from_bytes(bytes(eui64), 'big')]


def ping_targets(topology, guest):
    """What a guest pings from its console: its gateway (bridged_lan: the host), the other
    guests of its host (a VDE guest: the other VDE guests; a tap's: the others on taps), the
    LAN peer; a dual-stack guest also its IPv6 gateway (its IPv6 address by SLAAC from the
    host's router advertisements)."""
    first = guest_gateway(topology, guest) if topology.name != 'bridged_lan' else HOST
    others = [other.address.split('/')[0] for other in topology.guests
              if other is not guest and other.vde == guest.vde]
    gateway6 = guest_gateway6(topology, guest)
    return [first] + others + [PEER] + ([gateway6] if gateway6 else [])


def inventory_vars(topology):
    guests = []
    for guest in topology.guests:
        boots = guest_boots(topology, guest)
        spec = {'name': guest.name, 'address': guest.address,
                'kernel': GUEST_DIR + '/vmlinuz', 'initrd': GUEST_DIR + '/initrd.img',
                'memory': 160,
                # The VM's CPU offers svm under TCG (see realhost.cpu_model): no nested KVM.
                'accel': 'tcg',
                # A booting guest's kernel messages stay on its console (they show how far
                # it got when the stage waits for it in vain).
                'append': 'console=ttyS0%s panic=-1 ttq.ping=%s ttq.after=stay%s'
                          % ('' if boots else ' quiet', ','.join(ping_targets(topology, guest)),
                             # SLAAC under TCG in TCG: the wait ends when the address is there.
                             ' ttq.ip6_wait=120' if guest_gateway6(topology, guest) else ''),
                'extra_args': ['-no-reboot'] + ([] if boots else ['-S'])}
        if guest.gateway:
            spec['gateway'] = guest.gateway
        if guest.vde:
            spec['vde'] = True
        if guest.isolated:
            spec['isolated'] = True
        guests.append(spec)
    uplink = {'tuntap_qemu_uplink_address': '%s/%d' % (HOST, realhost.PREFIX_LEN),
              'tuntap_qemu_uplink_gateway': realhost.GATEWAY_ADDRESS}
    if topology.uplink == 'dhcp':
        # The lease's address is not in the inventory; the LAN's subnet is, for the guests.
        uplink = {'tuntap_qemu_uplink_address': 'dhcp', 'tuntap_qemu_uplink_network': LAN}
    return dict({
        'tuntap_qemu_topology': topology.topology or topology.name,
        'tuntap_qemu_uplink': 'eth0',
        'tuntap_qemu_install_packages': True,
        'tuntap_qemu_guests': guests,
    }, **uplink, **topology.hostvars)


INTERFACES = '/etc/network/interfaces'
# Issue 13: the line of the bridge's stanza that isolates a port at boot.
ISOLATED_UP = re.compile(r'^up\s+ip\s+link\s+set\s+dev\s+(\S+)\s+type\s+bridge_slave\s+isolated\s+on$')
# A line that configures eth0 in interfaces(5): auto/allow-* naming it, or its iface stanza.
ACTIVE_UPLINK_LINE = re.compile(r'^\s*((auto|allow-[\w-]+)\s(.*\s)?eth0(\s|$)|iface\s+eth0\s)')
# After a rolled-back play: the guest taps made before the takeover stay (ours, marked; the
# next converge uses them), nothing else may differ.
ROLLBACK_ALLOWED = (
    (r'link/tap\d+(/.*)?', 'a guest tap made before the uplink change (marked ours; the next converge uses it)'),
    (r'unit/tuntap-qemu-rollback-[\w.-]+\.service(/.*)?',
     'the rollback\'s transient unit, inactive: it stays loaded while the DHCP client it started again on the '
     'uplink runs in its cgroup (KillMode=process)'),
)
# What the rollback helper writes to the kernel log (the host's console shows it).
ROLLBACK_CONSOLE = 'tuntap-qemu: rolled back'
DROP_RULES = """table bridge ttqdrop {
    chain forward {
        type filter hook forward priority 0; policy accept;
        iifname "vm0" drop
        oifname "vm0" drop
    }
}
"""


def other_subnet(hostvars, address, gateway, network):
    """hostvars moved to another subnet: the uplink address and gateway, and every guest at
    the same host number there (10.44.0.101 -> 10.45.0.101)."""
    network = ipaddress.ip_network(network)
    hostvars['tuntap_qemu_uplink_address'] = address
    hostvars['tuntap_qemu_uplink_gateway'] = gateway
    for guest in hostvars['tuntap_qemu_guests']:
        host_number = int(ipaddress.ip_interface(guest['address']).ip) & int(network.hostmask)
        guest['address'] = '%s/%d' % (network[host_number], network.prefixlen)
        if 'gateway' in guest:
            guest['gateway'] = gateway


def longest_reply_gap(output):
    """The longest time between two ping replies (ping -D prints [epoch] before each)."""
    stamps = [float(match) for match in re.findall(r'^\[(\d+\.\d+)\] \d+ bytes from', output, re.M)]
    if len(stamps) < 2:
        return None
    return max(later - earlier for earlier, later in zip(stamps, stamps[1:]))


def open_session(vm):
    """An SSH session of its own (no shared master): it ends when its stdin closes, after
    the converge, and prints a word; a connection cut by the change ends it early."""
    session = subprocess.Popen(vm.in_controller(['ssh', '-i', vm.key] + realhost.SSH_OPTIONS + [
        '-o', 'ServerAliveInterval=2', '-o', 'ServerAliveCountMax=3', '-o', 'ConnectTimeout=5',
        '%s@%s' % (realhost.USER, HOST), 'cat >/dev/null; echo session-survived']),
        env=realhost.ENV, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    vm.children.append(session)
    time.sleep(3)
    return session


class LanDrop(threading.Thread):
    """The LAN switch drops every frame from and to the host's port (nft, bridge family, in
    the switch namespace) once the host's eth0 is a port of br0; the rule goes when the
    host's console says it rolled back (or a minute after the timeout)."""

    def __init__(self, vm, note):
        super().__init__(daemon=True)
        self.vm, self.note = vm, note
        self.stopping = threading.Event()
        self.dropped_at = None
        self.saw_rollback = False

    def run(self):
        vm = self.vm
        while not self.stopping.is_set():
            try:
                master = vm.ssh('readlink', '/sys/class/net/eth0/master', check=False, timeout=10).stdout
            except subprocess.TimeoutExpired:
                master = ''
            if master.strip().endswith('/br0'):
                break
            time.sleep(0.2)
        else:
            return
        offset = os.path.getsize(vm.serial_log)
        realhost.run(['nft', '-f', '-'], netns=vm.switch, input_text=DROP_RULES)
        self.dropped_at = time.monotonic()
        self.note('the LAN drops the host (eth0 is a port of br0)')
        while time.monotonic() < self.dropped_at + ROLLBACK_TIMEOUT + 60:
            with open(vm.serial_log, errors='replace') as handle:
                handle.seek(offset)
                if ROLLBACK_CONSOLE in handle.read():
                    self.saw_rollback = True
                    break
            time.sleep(0.3)
        realhost.run(['nft', 'delete', 'table', 'bridge', 'ttqdrop'], netns=vm.switch, check=False)
        self.note('the LAN lets the host through again (%s)' % (
            'its console says it rolled back' if self.saw_rollback else 'no rollback on its console'))

    def finish(self):
        self.stopping.set()
        self.join(timeout=ROLLBACK_TIMEOUT + 90)


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
        self.original_interfaces = None
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
        if topology.stanza != 'allow-hotplug':
            # The admin wrote `auto eth0` where the installer writes `allow-hotplug eth0`.
            vm.ssh('sudo', 'sed', '-i', 's/^allow-hotplug eth0$/%s eth0/' % topology.stanza, INTERFACES)
        self.original_interfaces = self.read_file(vm, INTERFACES)
        if topology.wrong_uplink:
            self.wrong_uplink_refused(vm, site)
        for kind in topology.injections:
            self.rollback_injected(vm, site, kind)

        # 1. converge (bridged_lan: while the LAN peer pings the host 10 times a second and an
        # SSH session opened before stays open)
        pinger = session = None
        if topology.ping_during_converge:
            pinger = vm.spawn(['ping', '-n', '-i', '0.1', HOST], netns=vm.peer)
            time.sleep(0.5)
        if self.takes_uplink():
            session = open_session(vm)
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
        if session is not None:
            self.check_session(vm, session, 'an SSH session open across the takeover survives it')
        if self.takes_uplink():
            self.uplink_checks(vm, 'after the converge', taken=True, backup=True)
        before_raw = host_state.collect(vm)
        before = host_state.normalise(before_raw)
        self.check_guests('guests run after the converge', before)
        if topology.dhcp_networks:
            self.dhcp_checks('after the converge', before)
        if topology.ipv6_networks:
            self.ipv6_checks(vm, 'after the converge', before)
        if vde_switch(topology):
            self.vde_checks('after the converge', before)
        if any(guest.isolated for guest in topology.guests):
            self.isolation_checks(vm, 'after the converge', before)
        if topology.nat_subnets and not topology.iptables:
            self.check_all(checks_nat.after_converge(vm, self.masqueraded()))

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
        if self.takes_uplink():
            self.uplink_checks(vm, 'after the reboot', taken=True)
        boot_guests = self.check_guests('guests are back after the reboot (QEMU on its tap, QMP)', after)
        if topology.dhcp_networks:
            self.dhcp_checks('after the reboot', after, before)
        if topology.ipv6_networks:
            self.ipv6_checks(vm, 'after the reboot', after)
        if vde_switch(topology):
            self.vde_checks('after the reboot', after)
        if any(guest.isolated for guest in topology.guests):
            self.isolation_checks(vm, 'after the reboot', after)
        if topology.iptables:
            self.check_all(checks_nat.after_boot_iptables(vm, list(topology.nat_subnets)))
        elif topology.nat_subnets:
            self.check_all(checks_nat.after_boot(vm, self.masqueraded(), nftables_enabled=False))

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
            subnets = self.masqueraded()
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
        session = open_session(vm)
        rc, summary, seconds = self.playbook(vm, 'leave', site, inventory)
        self.times['leave'] = seconds
        time.sleep(0.5)
        pinger.send_signal(signal.SIGINT)
        output = pinger.communicate(timeout=10)[0]
        vm.children.remove(pinger)
        self.check('leaving %s: converge to %s' % (self.topology.name, target.topology), rc == 0,
                   '%.0fs, %s' % (seconds, summary))
        loss = ping_summary(output)
        self.check('LAN peer pings the host while it leaves %s' % self.topology.name,
                   loss is not None and loss[0] <= MAX_PING_LOSS,
                   'lost %d of %d, at most %d allowed' % (loss + (MAX_PING_LOSS,)) if loss
                   else 'no ping summary: %s' % output[-300:])
        self.check_session(vm, session, 'an SSH session open across the change survives it')
        self.uplink_checks(vm, 'after leaving %s' % self.topology.name, taken=False)
        left_raw = host_state.collect(vm)
        left = host_state.normalise(left_raw)
        uplink = '%s/%d' % (HOST, realhost.PREFIX_LEN)
        if target.uplink == 'dhcp':
            uplink += ' dynamic'  # the lease, back on eth0 with its lifetimes
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
            self.uplink_checks(vm, 'after leaving and rebooting', taken=False)
            rc, summary, seconds = self.playbook(vm, 'leave-again', site, inventory)
            self.check('converge after leaving and rebooting reports changed=0',
                       rc == 0 and summary is not None and summary.get('changed') == 0,
                       'exit %d, %s' % (rc, summary))
        finally:
            self.topology = saved

    def dhcp_checks(self, when, state, before=None):
        """Issue 12: the guests' DHCP/DNS service of a host with internal networks: its unit
        active and enabled (started at boot), dnsmasq's DHCP socket on each interface it
        serves (bound to the interface when it serves one, the wildcard with SO_BINDTODEVICE
        off when several: dnsmasq's own rule) and DNS (UDP and TCP 53) on each internal
        address; with before, its configuration files as they were."""
        unit = state['unit'].get(host_state.DHCP_UNIT)
        self.check('%s: %s active and enabled' % (when, host_state.DHCP_UNIT),
                   unit == {'enabled': 'enabled', 'active': 'active'}, '%s' % (unit or 'no such unit'))
        server = state['dhcp_server']
        sockets = host_state.dhcp_sockets(server)
        networks = self.topology.dhcp_networks
        dhcp_socket = '0.0.0.0%%%s' % networks[0][0] if len(networks) == 1 else '0.0.0.0'
        wanted = [('udp', dhcp_socket, '67')]
        wanted += [(protocol, address, '53') for _interface, address in networks for protocol in ('udp', 'tcp')]
        missing = ['%s %s:%s' % item for item in wanted if item not in sockets]
        self.check('%s: dnsmasq listens on UDP 67 on %s and on port 53 (UDP, TCP) of %s'
                   % (when, ', '.join(interface for interface, _address in networks),
                      ', '.join(address for _interface, address in networks)),
                   not missing, 'missing %s; dnsmasq holds %s' % (missing, ['%s %s:%s' % item for item in sockets])
                   if missing else ', '.join('%s %s:%s' % item for item in sockets))
        if before is not None:
            config = dict((key, value) for key, value in before['dhcp_server'].items() if key.startswith('config '))
            again = dict((key, value) for key, value in server.items() if key.startswith('config '))
            self.check('%s: the DHCP config is the one the converge wrote' % when, config and again == config,
                       '%d files equal' % len(config) if config and again == config
                       else 'after the converge %s, now %s' % (config, again))

    def masqueraded(self):
        """The networks our table masquerades out of eth0: the IPv4 NAT subnets, and with nat6
        the IPv6 networks (NAT66)."""
        return list(self.topology.nat_subnets) + (self.ipv6_subnets() if self.topology.nat6 else [])

    def ipv6_subnets(self):
        return [str(ipaddress.ip_interface(address).network) for _interface, address in self.topology.ipv6_networks]

    def ipv6_checks(self, vm, when, state):
        """Issue 13: each internal IPv6 network on its interface (the host's address and the
        /64's route), IPv6 forwarding on, dnsmasq advertising it (the raw ICMPv6 socket of its
        router advertisements, enable-ra and an ra-only range for the interface in its config)
        and answering DNS on the address; NAT66 only with nat6. The comparison across the
        reboot covers the same state; these say that it is there at all."""
        networks = self.topology.ipv6_networks
        problems = []
        for (interface, address), network in zip(networks, self.ipv6_subnets()):
            held = state['addr'].get(interface, [])
            if address not in held:
                problems.append('%s holds %s, not %s' % (interface, held, address))
            if '%s dev %s' % (network, interface) not in state['route6']:
                problems.append('no route %s dev %s: %s' % (network, interface, sorted(state['route6'])))
        self.check('%s: %s' % (when, ', '.join('%s holds %s' % item for item in networks)), not problems,
                   '; '.join(problems) or 'with the routes to %s' % ', '.join(self.ipv6_subnets()))
        forwarding = state['sysctl'].get('net.ipv6.conf.all.forwarding')
        self.check('%s: net.ipv6.conf.all.forwarding = 1' % when, forwarding == '1', '%s' % forwarding)
        sockets = host_state.dhcp_sockets(state['dhcp_server'])
        wanted = [('raw', '*', '58')] + [(protocol, '[%s]' % address.split('/')[0], '53')
                                         for _interface, address in networks for protocol in ('udp', 'tcp')]
        missing = ['%s %s:%s' % item for item in wanted if item not in sockets]
        self.check('%s: dnsmasq sends router advertisements (raw ICMPv6 socket) and answers DNS on %s'
                   % (when, ', '.join(address.split('/')[0] for _interface, address in networks)),
                   not missing, 'missing %s; dnsmasq holds %s' % (missing, ['%s %s:%s' % item for item in sockets])
                   if missing else ', '.join('%s %s:%s' % item for item in wanted))
        config = vm.ssh('sudo', 'sh', '-c', 'cat %s' % ' '.join(host_state.DHCP_CONFIG_PATTERNS),
                        check=False, timeout=60).stdout
        lines = [line.strip() for line in config.splitlines()]
        ranges = dict((interface, [line for line in lines if line.startswith('dhcp-range=') and 'ra-only' in line
                                   and (interface in line or network.split('/')[0] in line)])
                      for (interface, _address), network in zip(networks, self.ipv6_subnets()))
        self.check('%s: the DHCP config has enable-ra and an ra-only range for %s'
                   % (when, ', '.join(interface for interface, _address in networks)),
                   'enable-ra' in lines and all(ranges.values()),
                   '%s; ranges %s' % ('enable-ra' if 'enable-ra' in lines else 'no enable-ra line', ranges))
        self.check_all(checks_nat.nat6_checks(vm, self.ipv6_subnets(), self.topology.nat6, when))

    def vde_checks(self, when, state):
        """Issue 13: the host's VDE switch: its unit enabled and active (tuntap-qemu-vde.service
        brings it back at boot), its tap up with the host side address, one vde_switch on that
        tap and the socket the guests' QEMU use (the socket folder with its ctl socket). The
        guests on it: check_guests (-netdev vde,sock=, QMP); the comparison across the reboot
        covers the same state (link, addr, unit, vde sections)."""
        tap, address = vde_switch(self.topology)
        socket = VDE_SOCKET % tap
        unit = state['unit'].get(host_state.VDE_UNIT)
        self.check('%s: %s enabled and active' % (when, host_state.VDE_UNIT),
                   unit == {'enabled': 'enabled', 'active': 'active'}, '%s' % (unit or 'no such unit'))
        link = state['link'].get(tap) or {}
        held = state['addr'].get(tap, [])
        self.check('%s: the switch\'s tap %s is up and holds %s' % (when, tap, address),
                   link.get('kind') == 'tun' and link.get('up') and address in held,
                   'kind %s, %s, addresses %s' % (link.get('kind'), 'up' if link.get('up') else 'down', held)
                   if link else 'no link %s' % tap)
        switches = [key[len('process '):] for key in state['vde'] if key.startswith('process ')]
        ours = [args for args in switches if tap in args.split() and socket in args.split()]
        runtime = state['vde'].get('runtime %s' % socket)
        self.check('%s: one vde_switch on %s with its socket %s' % (when, tap, socket),
                   len(switches) == 1 and len(ours) == 1 and runtime == 'dir ctl',
                   'processes %s; %s is %s' % (switches, socket, runtime or 'absent'))
        # The switch's own word (its management socket's port/print): its tap and each VDE
        # guest's QEMU are ports of it, one port each, nothing else.
        ports = sorted(key[len('port '):] for key, count in state['vde'].items() if key.startswith('port ')
                       for _copy in range(count))
        wanted = sorted(['tuntap %s' % tap] + ['unix prog QEMU user=%s guest=%s' % (
            self.topology.hostvars.get('tuntap_qemu_guest_user', 'root'), guest.name)
            for guest in self.topology.guests if guest.vde])
        self.check('%s: the switch\'s ports are %s' % (when, ', '.join(wanted)), ports == wanted,
                   '%s' % (state['vde'].get('ports') or ports))

    def isolation_checks(self, vm, when, state):
        """Issue 13: each guest's tap is a port of br0, isolated (BR_ISOLATED) exactly when the
        guest is `isolated: true`; the bridge's interfaces.d stanza isolates exactly those
        ports again at boot (`up ip link set dev TAP type bridge_slave isolated on`)."""
        wanted = dict((guest_tap(self.topology, guest), guest.isolated) for guest in self.topology.guests)
        ports = host_state.bridge_ports(state['link'], 'br0')
        described = ', '.join('%s %s' % (tap, 'isolated' if flag else 'not isolated') for tap, flag in sorted(wanted.items()))
        self.check('%s: br0\'s ports isolated exactly for the isolated guests (%s)' % (when, described),
                   ports == wanted, 'ports %s' % ports)
        stanzas = vm.ssh('sudo', 'sh', '-c', 'cat /etc/network/interfaces.d/*', check=False, timeout=60).stdout
        lines = [line.strip() for line in stanzas.splitlines() if 'isolated' in line]
        persisted = sorted(match.group(1) for match in (ISOLATED_UP.match(line) for line in lines) if match)
        expected = sorted(tap for tap, flag in wanted.items() if flag)
        self.check('%s: interfaces.d isolates %s at boot (up ... bridge_slave isolated on), no other port'
                   % (when, ', '.join(expected)), persisted == expected and len(lines) == len(persisted),
                   'lines %s' % lines)

    def check_session(self, vm, session, title):
        early = session.poll()
        try:
            said = session.communicate(input='', timeout=30)[0]
        except subprocess.TimeoutExpired:
            session.kill()
            said = session.communicate()[0]
        vm.children.remove(session)
        return self.check(title, early is None and session.returncode == 0 and 'session-survived' in said,
                          'ended %s during the converge, exit %s: %s' % (
                              'already' if early is not None else 'not', session.returncode, said.strip()[-300:]))

    def read_file(self, vm, path):
        return vm.ssh('sudo', 'cat', path).stdout

    def takes_uplink(self):
        return (self.topology.topology or self.topology.name) == 'bridged_lan'

    def uplink_checks(self, vm, when, taken, backup=False):
        """Issue 11: where the admin's eth0 stanza is (out of /etc/network/interfaces while
        eth0 is a port of br0, back byte for byte after), which DHCP clients run (none on a
        port; on br0, or back on eth0, for a DHCP uplink), and that the lease is the same."""
        original = self.original_interfaces
        text = self.read_file(vm, INTERFACES)
        if taken:
            active = [line for line in text.splitlines() if ACTIVE_UPLINK_LINE.match(line)]
            kept = [line for line in original.splitlines() if ACTIVE_UPLINK_LINE.match(line) or line.startswith((' ', '\t'))]
            missing = [line for line in kept if not any(other.startswith('#') and other.endswith(line)
                                                        for other in text.splitlines())]
            self.check('%s: the admin\'s eth0 stanza is out of /etc/network/interfaces, kept in a marked block' % when,
                       not active and not missing,
                       'active: %s; original lines not kept: %s' % (active, missing) if active or missing
                       else '%d original lines commented in the block' % len(kept))
            if backup:
                listing = vm.ssh('sudo', 'sh', '-c', 'sha256sum /etc/network/interfaces*', check=False).stdout
                wanted = hashlib.sha256(original.encode()).hexdigest()
                copies = [line.split(None, 1)[1] for line in listing.splitlines()
                          if line.startswith(wanted) and not line.endswith(INTERFACES)]
                self.check('%s: a backup of the original /etc/network/interfaces is kept' % when, copies,
                           ', '.join(copies) or 'no file with the original content: %s' % listing.strip())
        else:
            self.check('%s: /etc/network/interfaces is the admin\'s original, byte for byte' % when, text == original,
                       'equal (%d bytes)' % len(text) if text == original else 'differs:\n%s' % text[-600:])
        clients = sorted(tuple(key.split()) for key in host_state.normalise_dhcp_clients(
            vm.ssh('ps', '-eo', 'pid=,user=,args=').stdout))
        if self.topology.uplink == 'dhcp':
            holder = 'br0' if taken else 'eth0'
            self.check('%s: one DHCP client, on %s (none on a bridge port)' % (when, holder),
                       clients == [('dhclient', holder)], '%s' % clients)
            address = vm.ssh('ip', '-j', 'address', 'show', 'dev', holder).stdout
            infos = [info for link in json.loads(address or '[]') for info in link.get('addr_info', [])
                     if info.get('family') == 'inet']
            lease = [info for info in infos if info.get('local') == HOST and info.get('dynamic')]
            leases = self.dnsmasq_leases(vm)
            held = ['%s/%s%s' % (info.get('local'), info.get('prefixlen'), ' dynamic' if info.get('dynamic') else '')
                    for info in infos]
            self.check('%s: %s holds the same lease %s/%d (dynamic; dnsmasq leased it to the host\'s MAC only)'
                       % (when, holder, HOST, realhost.PREFIX_LEN),
                       lease and leases == [(vm.mac, HOST)], '%s: %s; dnsmasq leases %s' % (holder, held, leases))
        else:
            self.check('%s: no DHCP client runs' % when, not clients, '%s' % clients)

    def dnsmasq_leases(self, vm):
        try:
            with open(os.path.join(vm.state, 'dnsmasq.leases')) as handle:
                return sorted((fields[1], fields[2]) for fields in (line.split() for line in handle) if len(fields) > 2)
        except OSError:
            return []

    def rollback_injected(self, vm, site, kind):
        """Issue 11's injected failures. readdress: the bridge gets another subnet's address on
        purpose, so the controller cannot reach the host; lan_drop: the LAN switch drops the
        host's frames as soon as eth0 is a port of br0 (lifted when the host's console says it
        rolled back). Either way the host must restore itself, answer again within the timeout
        + ROLLBACK_MARGIN, have its files and network as before, and the play must fail
        naming the rollback."""
        hostvars = inventory_vars(self.topology)
        hostvars['tuntap_qemu_takeover_timeout'] = ROLLBACK_TIMEOUT
        if kind == 'readdress':
            other_subnet(hostvars, '10.45.0.50/24', '10.45.0.1', '10.45.0.0/24')
            hostvars['tuntap_qemu_uplink_readdress'] = True
        inventory = vm.write_inventory('rollback-%s.json' % kind, hostvars=hostvars)
        before = host_state.normalise(host_state.collect(vm))
        pinger = vm.spawn(['ping', '-n', '-D', '-i', '0.2', HOST], netns=vm.peer)
        time.sleep(1)
        injector = LanDrop(vm, self.note) if kind == 'lan_drop' else None
        if injector:
            injector.start()
        rc, _summary, seconds = self.playbook(vm, 'rollback-' + kind, site, inventory)
        if injector:
            injector.finish()
        time.sleep(1)
        pinger.send_signal(signal.SIGINT)
        output = pinger.communicate(timeout=10)[0]
        vm.children.remove(pinger)
        with open(os.path.join(self.log_dir, 'rollback-%s.log' % kind)) as handle:
            play = handle.read()
        named = 'rolled back' in play
        self.check('%s: the play fails and names the rollback' % kind, rc != 0 and named,
                   'exit %d after %.0fs; %s' % (rc, seconds, 'the rollback is named' if named else 'no "rolled back" in the output'))
        # The change was made before the rollback, which undid it: its step that deletes br0
        # found a br0 ("ok", not "done already"). A rollback that ran before the bridge task
        # (bridge_port's armed_change then refuses the change) would leave every other check
        # here green with nothing tested.
        self.check('%s: the bridge task made the change before the rollback, which undid it' % kind,
                   *self.rollback_undid_bridge(vm, play))
        if injector:
            self.check('%s: the LAN dropped the host once eth0 was a port of br0, until its console said it rolled back'
                       % kind, injector.dropped_at is not None and injector.saw_rollback,
                       'dropped %s, lifted after %s' % (
                           'yes' if injector.dropped_at else 'never (no br0 seen)',
                           'the console line' if injector.saw_rollback else 'no console line'))
        gap = longest_reply_gap(output)
        self.check('%s: the host answers pings again within the timeout + %d s' % (kind, ROLLBACK_MARGIN),
                   gap is not None and gap <= ROLLBACK_TIMEOUT + ROLLBACK_MARGIN,
                   'longest gap between replies %.1fs (timeout %d s)' % (gap, ROLLBACK_TIMEOUT) if gap is not None
                   else 'no replies: %s' % output[-300:])
        after = host_state.normalise(host_state.collect(vm))
        explained = host_state.explain(host_state.compare(before, after), ROLLBACK_ALLOWED)
        with open(os.path.join(self.log_dir, 'rollback-%s-differences.txt' % kind), 'w') as handle:
            for item in explained:
                handle.write('%s   [%s]\n' % (item.difference, item.reason or 'UNEXPLAINED'))
        unexplained = [str(item.difference) for item in explained if item.reason is None]
        self.check('%s: links, addresses, routes, DHCP client and files are as before the play' % kind, not unexplained,
                   '; '.join(unexplained[:6]) or 'equal%s' % (' but %s' % '; '.join(
                       '%s [%s]' % (item.difference, item.reason) for item in explained) if explained else ''))
        text = self.read_file(vm, INTERFACES)
        self.check('%s: /etc/network/interfaces is byte for byte as before' % kind, text == self.original_interfaces,
                   'equal' if text == self.original_interfaces else text[-400:])

    def rollback_undid_bridge(self, vm, play):
        """(ok, detail): the rollback report of the change the play names (on the host, in the
        role's rollback folder) has its br0 deletion step 'ok'."""
        ids = sorted(set(change_id for line in play.splitlines() if 'rolled back' in line
                         for change_id in re.findall(r'\b(\d{8}T\d{6}-[0-9a-f]{6})\b', line)))
        if 'before this change was made' in play or len(ids) != 1:
            return False, 'the bridge task was refused, or not one rollback id in the play (%s): %s' % (
                ids, re.findall(r'armed_change [^"]{0,200}', play)[:1])
        report = vm.ssh('sudo', 'cat', '/run/tuntap-qemu-rollback/%s/report.json' % ids[0], check=False).stdout
        try:
            steps = json.loads(report)['steps']
        except (ValueError, KeyError):
            return False, 'no report of %s: %r' % (ids[0], report[:200])
        deleted = [step for step in steps if step['text'].startswith('br0 is deleted')]
        return (len(deleted) == 1 and deleted[0]['result'] == 'ok',
                '%s: %s' % (ids[0], ['%s (%s)' % (step['text'], step['result']) for step in deleted]))

    def wrong_uplink_refused(self, vm, site):
        """Issue 14 on the real host: a typo'd uplink address is an error that names the
        host, the inventory's value and the uplink's real one, and the host is untouched."""
        address, gateway, network = self.topology.wrong_uplink
        hostvars = inventory_vars(self.topology)
        other_subnet(hostvars, address, gateway, network)
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

    def expected_nics(self):
        """{guest: ('tap', its tap) or ('vde', the switch's socket)}: where its QEMU's NIC is."""
        switch = vde_switch(self.topology)
        return dict((guest.name, ('vde', VDE_SOCKET % switch[0]) if guest.vde else ('tap', guest_tap(self.topology, guest)))
                    for guest in self.topology.guests)

    def check_guests(self, title, state):
        """Every inventory guest: its QEMU runs (pidfile), on its tap (a VDE guest: -netdev
        vde on the switch's socket, no tap), and QMP says running (prelaunch for guests
        started paused, see Topology.boot_guests). Returns the guests that run and boot."""
        nics = self.expected_nics()
        problems = []
        good = []
        for guest_spec in self.topology.guests:
            name = guest_spec.name
            wanted = 'running' if guest_boots(self.topology, guest_spec) else 'prelaunch'
            kind, where = nics[name]
            guest = state['guest'].get(name)
            held = (('vde', guest['vde']) if guest.get('vde') else ('tap', guest['tap'])) if guest else None
            if guest is None:
                problems.append('%s: no runtime folder' % name)
            elif not guest['running']:
                problems.append('%s: no QEMU (pidfile)' % name)
            elif held != (kind, where):
                problems.append('%s: QEMU on %s %s, expected %s %s' % ((name,) + tuple(held) + (kind, where)))
            elif guest['qmp'] != wanted:
                problems.append('%s: QMP %s, expected %s' % (name, guest['qmp'], wanted))
            else:
                good.append('%s on %s%s, QMP %s' % (name, 'VDE ' if kind == 'vde' else '', where, wanted))
        self.check(title, not problems, '; '.join(problems) or ', '.join(good))
        return [guest.name for guest in self.topology.guests
                if guest_boots(self.topology, guest) and not any(problem.startswith(guest.name + ':')
                                                                 for problem in problems)]

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
        """Every guest whose QEMU started at boot (same pid as just after the reboot) prints
        TTQ-DONE with every ping ok on its serial console; they boot side by side, so the
        wait (SERIAL_TIMEOUT from the reboot, SERIAL_TIMEOUT_MORE for each more guest) is one
        for all."""
        if not boot_guests:
            self.check('guest console: network up after the reboot', False, 'no guest came back at boot')
            return
        deadline = rebooted_at + SERIAL_TIMEOUT + SERIAL_TIMEOUT_MORE * (len(boot_guests) - 1)
        reports, serials, waited = {}, {}, {}
        pending = list(boot_guests)
        while pending:
            for name in list(pending):
                folder = '%s/%s' % (host_state.DEFAULT_RUNTIME_ROOT, name)
                pid = after_raw['guests'][name]['pid']
                try:
                    result = vm.ssh('sudo', 'sh', '-c', 'cat %s/qemu.pid; echo ---; cat %s/serial.log' % (folder, folder),
                                    check=False, timeout=30)
                except subprocess.TimeoutExpired:
                    result = None
                if result is None or result.returncode == 255:
                    # ssh itself failed: the VM's one vCPU is busy with the booting guests
                    # (the banner exchange timed out under load); ask again until the deadline.
                    if time.monotonic() > deadline:
                        self.check('guest console: %s network up after the reboot' % name, False,
                                   '%s: the host did not answer ssh: %s' % (
                                       name, result.stdout.strip()[-200:] if result else 'timed out'))
                        pending.remove(name)
                    continue
                head, _separator, serials[name] = result.stdout.partition('---\n')
                if head.strip() != str(pid):
                    self.check('guest console: %s network up after the reboot' % name, False,
                               '%s: QEMU pid %s at boot, now %r' % (name, pid, head.strip()))
                    pending.remove(name)
                    continue
                reports[name] = guest_boot.parse_serial(serials[name])
                if reports[name]['done'] or time.monotonic() > deadline:
                    waited[name] = time.monotonic() - rebooted_at
                    pending.remove(name)
            if pending:
                time.sleep(5)
        for name in boot_guests:
            if name in reports:
                self.guest_console_checks(name, reports[name], serials[name], waited[name])

    def guest_console_checks(self, name, report, serial, waited):
        """What one booting guest's console says: its DHCP lease (issue 12), its SLAAC address
        when its network is dual-stack (issue 13), every ping ok."""
        with open(os.path.join(self.log_dir, '%s-serial.log' % name), 'w') as handle:
            handle.write(serial)
        guest = next(item for item in self.topology.guests if item.name == name)
        results = report['results']
        failed = sorted(target for target, item in results.items() if item.get('status') != 'ok')
        ok = bool(report['done']) and not failed and results
        if self.topology.dhcp_networks:
            # Issue 12: the test guest names no address, so it asks DHCP (udhcpc) at its boot.
            lease = report['lease'] or {}
            self.check('guest console: %s leased its planned %s and name from the host\'s dnsmasq' % (name, guest.address),
                       lease.get('ip') == guest.address and lease.get('hostname') == name,
                       'TTQ-LEASE %s' % ' '.join('%s=%s' % item for item in sorted(lease.items()))
                       if lease else 'no TTQ-LEASE line; errors %s' % report['errors'])
        network = next((str(ipaddress.ip_interface(address).network) for interface, address
                        in self.topology.ipv6_networks if interface == guest_interface(self.topology, guest)), None)
        if network:
            # Issue 13: the guest's own SLAAC address from the host's router advertisements,
            # the EUI-64 of its MAC in its /64 (what the plan puts in the AAAA record).
            boot = report['boot'] or {}
            wanted = '%s/64' % slaac_address(boot['mac'], network) if boot.get('mac') else None
            self.check('guest console: %s took its SLAAC address %s from the host\'s router advertisements'
                       % (name, wanted or 'in %s' % network), wanted is not None and boot.get('ip6') == wanted,
                       'TTQ-BOOT ip6=%s ip6_wait=%s' % (boot.get('ip6'), boot.get('ip6_wait')) if boot
                       else 'no TTQ-BOOT line')
        targets = ', '.join(ping_targets(self.topology, guest))
        self.check('guest console: %s network up after the reboot (%s)' % (name, targets), ok,
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

    images = {}
    for uplink in sorted(set(topology.uplink for topology in topologies)):
        images[uplink], built = build_image.build(uplink=uplink)
        say('host image (%s uplink): %s (%s)' % (uplink, images[uplink], 'built in %.0fs' % built if built else 'cached'))
    guest = build_guest.build_guest()
    say('test guest: %s (%s)' % (guest['kernel'], 'cached' if guest['cached'] else 'built'))
    temp = None
    collections = args.collections
    if not collections:
        temp = tempfile.mkdtemp(prefix='tuntap-qemu-realhost-')
        collections = realhost.lay_out_collection(temp)
    log_dir = os.path.join(LOG_ROOT, 'ttqr%d' % os.getpid())
    say('logs: %s' % log_dir)
    runs = [TopologyRun(topology, images[topology.uplink], guest, collections, log_dir, args.keep)
            for topology in topologies]
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
