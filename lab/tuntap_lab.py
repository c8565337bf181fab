# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tuntap.qemu namespace lab: a LAN and hypervisors as network namespaces, real guests.

    tuntap_lab.py demo [--keep]   up, converge, wait for the guests, print the matrix, down
    tuntap_lab.py up              create the namespaces and the inventory
    tuntap_lab.py converge        run the lab playbook against a lab that is up
    tuntap_lab.py matrix          print the connectivity matrix of a converged lab
    tuntap_lab.py down            stop the lab's guests (by their pidfiles) and remove everything
    --only hv3[,hv1]              up/demo/matrix: only these hypervisors (with the LAN and the
                                  peer), e.g. the one a molecule scenario tests

Layout (prefix default 'ttqlab-'):
    <prefix>lan    the LAN switch: bridge lan0, no address
    <prefix>peer   a LAN host, eth0 10.0.0.20/24 and fd00:10::20/64; it advertises
                   fd00:10::/64 on the LAN (router advertisements: SLAAC for hv4 and its
                   bridged_lan guests) and routes hv1's and hv2's IPv6 pools to them
    <prefix>hv1    a hypervisor, eth0 10.0.0.11/24 and fd00:10::11/64 (the uplink), routed
                   topology: one tap and one subnet per guest, guests vm1 (192.168.1.10) and
                   vm2 (192.168.2.10), dual-stack: a /64 of fd00:1::/56 each
    <prefix>hv2..4 routed_nat, bridged_nat (NAT66) and bridged_lan the same way (HYPERVISORS);
                   hv2 also has a VDE switch (vde_switch, a pidfile'd process here) with two
                   guests on it, hv4's vm8 is an isolated bridge port
    <prefix>hv5    isolated: a bridge of its own, no uplink port, no NAT, no forwarding; vm10
                   and vm11 are isolated ports too. The peer routes hv5's networks to hv5's
                   uplink, so that only hv5 stands between them and the LAN

The guests are the test guest of lab/guest (a Debian cloud kernel and a busybox initramfs)
started by tuntap.qemu.qemu_guest. Each pings its gateway, the other guests and the LAN peer
and prints one result line per target on its serial console; the matrix is read from there,
plus pings from the LAN peer to every guest. The guests of routed, routed_nat and bridged_nat
hosts take their address and name from the host's DHCP server (tuntap.qemu.guest_dhcp, a
dnsmasq process here): their rows show the lease against the plan, the lookup of the other
guest's DNS name and the ping by that name. IPv6: each guest's address against the plan
(SLAAC: the EUI-64 of its MAC; a static one: ttq.ip6 on its command line), ping6 of its
gateway, the other guest and the LAN peer; the peer pings the routed /64s directly and sees
only the NAT66 host's uplink address. What must fail is tried too, once and briefly
(ttq.unreach): an isolated guest pings another isolated one, an isolated network's guest
the peer and the peer it; such a row is ok when nothing answered, and for a guest target
only when that guest was up (its TTQ-BOOT clock) before the try. A guest with forwards listens on its guest port;
its forwards are fetched from the LAN peer, from the hypervisor itself and, through the
host's uplink address, from the other guest (the hairpin); the answer must name the guest.

Nothing here touches the root network namespace: every link is created inside a lab
namespace (veth pairs are created in the LAN namespace and one end moved), and the only
files written outside the lab's state folder are /etc/netns/<namespace>/ folders, which
`ip netns exec` bind-mounts over /etc inside that namespace only. Guests are ended by the
pids in their pidfiles, after checking that the pid is the QEMU of that guest.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import ipaddress
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
# The LAN's IPv6: static for the peer and hv1-hv3's uplinks; the peer advertises the /64.
LAN_NETWORK6 = ipaddress.IPv6Network('fd00:10::/64')
PEER_ADDRESS6 = 'fd00:10::20'
# The hypervisors' eth0 MAC by their index (1..): locally administered, unique on the lab's LAN.
UPLINK_MAC = '02:74:71:00:00:%02x'
ENV = dict(os.environ, LC_ALL='C.UTF-8')
GUEST_TIMEOUT = 120
# A guest that must not reach another guest tries it only once it has been up this long
# (ttq.unreach_after, guest uptime in seconds): the other guests of its host start just after
# it. The row holds only when the target's TTQ-BOOT clock is UNREACH_PROOF_SECONDS before the
# try (both clocks are the host's in whole seconds, from the RTC: 2 apart is later for sure).
UNREACH_AFTER = 20
UNREACH_PROOF_SECONDS = 2
# Debian's bridge-utils hooks ifupdown's bridge_ports into these folders of /etc/network.
BRIDGE_UTILS_HOOK = '/lib/bridge-utils/ifupdown.sh'
BRIDGE_UTILS_HOOK_FOLDERS = ('if-pre-up.d', 'if-down.d', 'if-post-down.d')
IFUPDOWN_HOOK_FOLDERS = ('if-pre-up.d', 'if-up.d', 'if-down.d', 'if-post-down.d')
# The only sysctl keys the boot simulation applies: per network namespace, and all that
# tuntap.qemu.ip_forward writes. Anything else in a lab's sysctl.d is refused.
NFT_BOOT_UNIT = 'tuntap-qemu-nft.service'
BOOT_SYSCTL_KEY = re.compile(r'^net\.ipv[46]\.(ip_forward|conf\.[^./]+\.forwarding)$')

# The lab fleet: one hypervisor per topology, two guests each, all on the LAN 10.0.0.0/24
# and fd00:10::/64. Addresses are given in the inventory schema of docs/inventory.md; site.yml
# plans the rest. IPv6 (uplink_address6, the lab's; pool6, bridge_address6, nat6: the
# tuntap_qemu_* variables; address6: the guest's): on hv1-hv3 one guest takes its IPv6
# address by SLAAC as planned, the other is given a static address6; hv4's guests take
# theirs by SLAAC from the LAN peer.
# Issue 13: hv2's VDE switch (tuntap_qemu_vde) with vm12 and vm13 on it (IPv4 only: the switch
# has no address6); hv4's vm8 an isolated port of its bridge; hv5 the isolated topology.
HYPERVISORS = {
    'hv1': {
        'uplink_address': '10.0.0.11', 'uplink_address6': 'fd00:10::11', 'topology': 'routed',
        'pool6': 'fd00:1::/56',
        'guests': [{'name': 'vm1', 'address': '192.168.1.10/24'},
                   {'name': 'vm2', 'address': '192.168.2.10/24', 'address6': 'fd00:1:0:2::10/64'}],
    },
    'hv2': {
        'uplink_address': '10.0.0.12', 'uplink_address6': 'fd00:10::12', 'topology': 'routed_nat',
        'pool6': 'fd00:2::/56',
        'guests': [{'name': 'vm3', 'address': '192.168.3.10/24'},
                   {'name': 'vm4', 'address': '192.168.4.10/24', 'address6': 'fd00:2:0:4::10/64',
                    'forwards': [{'port': 8004, 'guest_port': 80}]},
                   {'name': 'vm12', 'address': '192.168.20.10/24', 'vde': True},
                   {'name': 'vm13', 'address': '192.168.20.11/24', 'vde': True}],
        'vde': {'address': '192.168.20.1/24'},
    },
    'hv3': {
        'uplink_address': '10.0.0.13', 'uplink_address6': 'fd00:10::13', 'topology': 'bridged_nat',
        'bridge_address': '192.168.5.1/24', 'bridge_address6': 'fd00:3::1/64', 'nat6': True,
        'guests': [{'name': 'vm5', 'address': '192.168.5.10/24'},
                   {'name': 'vm6', 'address': '192.168.5.11/24', 'address6': 'fd00:3::11/64',
                    'forwards': [{'port': 8006, 'guest_port': 80}]}],
    },
    'hv4': {
        'uplink_address': '10.0.0.14', 'topology': 'bridged_lan',
        'guests': [{'name': 'vm7', 'address': '10.0.0.101/24'},
                   {'name': 'vm8', 'address': '10.0.0.102/24', 'isolated': True}],
    },
    'hv5': {
        'uplink_address': '10.0.0.15', 'uplink_address6': 'fd00:10::15', 'topology': 'isolated',
        'bridge_address': '192.168.9.1/24', 'bridge_address6': 'fd00:5::1/64',
        'guests': [{'name': 'vm9', 'address': '192.168.9.10/24'},
                   {'name': 'vm10', 'address': '192.168.9.11/24', 'isolated': True},
                   {'name': 'vm11', 'address': '192.168.9.12/24', 'isolated': True}],
    },
}


# The topology-change matrix: each lab hypervisor moves to another topology (all five
# starting points: the four of issue 10 and isolated), and hv2, hv4 and hv5 lose guests
# (hv2 its VDE switch with its guests; hv5 an isolated guest, the other stays isolated). Converging this
# over a converged lab must leave exactly what a fresh converge of it leaves.
# The guests of a host restart one after the other, each after its predecessor's stop (the
# test guest ignores ACPI, so qemu_guest waits its stop_timeout, 30 s): a guest pinging its
# neighbour keeps trying for longer than that (a round that fails takes about 4 s).
CHANGE_PING_TRIES = 20
CHANGED_HYPERVISORS = {
    'hv1': {  # routed -> bridged_nat
        'uplink_address': '10.0.0.11', 'uplink_address6': 'fd00:10::11', 'topology': 'bridged_nat',
        'bridge_address': '192.168.1.1/24',
        'guests': [{'name': 'vm1', 'address': '192.168.1.10/24', 'ping_tries': CHANGE_PING_TRIES},
                   {'name': 'vm2', 'address': '192.168.1.11/24', 'ping_tries': CHANGE_PING_TRIES}],
    },
    'hv2': {  # routed_nat -> bridged_lan, vm4 and the VDE switch with vm12 and vm13 removed
        'uplink_address': '10.0.0.12', 'uplink_address6': 'fd00:10::12', 'topology': 'bridged_lan',
        'guests': [{'name': 'vm3', 'address': '10.0.0.103/24', 'ping_tries': CHANGE_PING_TRIES}],
    },
    'hv3': {  # bridged_nat -> routed_nat
        'uplink_address': '10.0.0.13', 'uplink_address6': 'fd00:10::13', 'topology': 'routed_nat',
        'guests': [{'name': 'vm5', 'address': '192.168.5.10/24', 'ping_tries': CHANGE_PING_TRIES},
                   {'name': 'vm6', 'address': '192.168.6.10/24', 'ping_tries': CHANGE_PING_TRIES}],
    },
    'hv4': {  # bridged_lan -> routed, vm8 removed
        'uplink_address': '10.0.0.14', 'topology': 'routed',
        'guests': [{'name': 'vm7', 'address': '192.168.7.10/24', 'ping_tries': CHANGE_PING_TRIES}],
    },
    'hv5': {  # isolated -> bridged_nat, vm11 removed, vm10 stays an isolated port
        'uplink_address': '10.0.0.15', 'uplink_address6': 'fd00:10::15', 'topology': 'bridged_nat',
        'bridge_address': '192.168.9.1/24',
        'guests': [{'name': 'vm9', 'address': '192.168.9.10/24', 'ping_tries': CHANGE_PING_TRIES},
                   {'name': 'vm10', 'address': '192.168.9.11/24', 'isolated': True,
                    'ping_tries': CHANGE_PING_TRIES}],
    },
}


# The topologies whose guests the host serves by DHCP (the plan's default, docs/inventory.md):
# their guests get no address on the kernel command line and take their lease and name.
DHCP_TOPOLOGIES = ('routed', 'routed_nat', 'bridged_nat', 'isolated')
# The topologies whose guests share one bridge of the host's (the plan's BRIDGE_SUBNET): their
# IPv6 is the bridge's /64; guest isolation (isolated: true) makes ports of it isolated.
BRIDGE_TOPOLOGIES = ('bridged_nat', 'isolated')
# Nothing of an isolated network reaches the LAN, nor the LAN it (issue 13).
LAN_BLOCKED_TOPOLOGIES = ('isolated',)
DNS_DOMAIN = 'qemu.internal'
# A name outside the guests' zone, answered by the LAN peer's DNS server: the hypervisors'
# DHCP servers forward it there (tuntap_qemu_dhcp_resolvers), as a host forwards names to
# its resolvers; no query leaves the lab.
PEER_NAME = 'peer.lan.example'
HTTP_TIMEOUT = 5


def guest_ip(guest):
    return guest['address'].split('/')[0]


class GuestIPv6:
    """A guest's planned IPv6: address (ADDRESS/PREFIX), gateway (the host side, or None on
    the LAN), slaac (the address is the one its kernel makes from a router advertisement)."""

    def __init__(self, address, gateway, slaac):
        self.address, self.gateway, self.slaac = address, gateway, slaac

    @property
    def ip(self):
        return self.address.split('/')[0]

    def __repr__(self):
        return 'GuestIPv6(%r, %r, %r)' % (self.address, self.gateway, self.slaac)


def stable_mac(name, nic_index=0):
    """The MAC the plan gives a guest without one (tuntap.qemu.stable_mac,
    plugins/module_utils/_guest/guest_config.py)."""
    digest = hashlib.sha256(('%s/%d' % (name, nic_index)).encode('utf-8')).digest()
    return '52:54:00:%02x:%02x:%02x' % (digest[0], digest[1], digest[2])


def slaac_address(mac, network):
    """The address SLAAC makes from mac in the /64 network: its modified EUI-64 (RFC 4291
    appendix A: ff:fe in the middle, the universal/local bit flipped), ADDRESS/64."""
    octets = [int(octet, 16) for octet in mac.split(':')]
    eui64 = bytes([octets[0] ^ 0x02] + octets[1:3] + [0xff, 0xfe] + octets[3:])
    return '%s/64' % ipaddress.IPv6Address(int(network.network_address) | int.from_bytes(eui64, 'big'))


def ipv6_plan(hv):
    """{guest name: GuestIPv6} as the plan makes it (docs/inventory.md, IPv6), {} for a host
    without IPv6. routed*: a given address6 is its own /64 with the host side ::1; the others
    get the next free /64 of pool6 in list order (skipping the given ones). bridged_nat and
    isolated: the bridge's /64 (bridge_address6, else ::1 of pool6's first /64). A guest the
    host serves by DHCP takes the SLAAC address of its MAC there; one it does not, ::2
    (routed*) or the next free from ::2 (bridge). bridged_lan: SLAAC in the LAN's /64 (the
    peer's router advertisements), no gateway of the host's. A VDE guest (routed*) has IPv6
    only when the switch has an address6: its /64, as on a bridge; it takes no /64 of the
    pool. The lab's pools overlap no other host's, so per host is fleet-wide here."""
    topology = hv['topology']
    guests = [guest for guest in hv['guests'] if not guest.get('vde')]
    if topology == 'bridged_lan':
        return dict((guest['name'], GuestIPv6(slaac_address(guest.get('mac') or stable_mac(guest['name']),
                                                            LAN_NETWORK6), None, True)) for guest in guests)
    plan = {}
    pool = ipaddress.IPv6Network(hv['pool6']) if hv.get('pool6') else None
    if topology in ('routed', 'routed_nat'):
        named = [ipaddress.IPv6Interface(guest['address6']).network for guest in guests if guest.get('address6')]
        free = (network for network in (pool.subnets(new_prefix=64) if pool else ())
                if not any(network.overlaps(other) for other in named))
        for guest in guests:
            if guest.get('address6'):
                network = ipaddress.IPv6Interface(guest['address6']).network
                plan[guest['name']] = GuestIPv6(guest['address6'], str(network[1]), False)
                continue
            network = next(free, None)
            if network is None:
                continue
            if is_dhcp_guest(hv, guest):
                address, slaac = slaac_address(guest.get('mac') or stable_mac(guest['name']), network), True
            else:
                address, slaac = '%s/64' % network[2], False
            plan[guest['name']] = GuestIPv6(address, str(network[1]), slaac)
        vde6 = (hv.get('vde') or {}).get('address6')
        if vde6:
            plan.update(_shared_ipv6(hv, [guest for guest in hv['guests'] if guest.get('vde')],
                                     ipaddress.IPv6Interface(vde6)))
        return plan
    if topology in BRIDGE_TOPOLOGIES:
        if hv.get('bridge_address6'):
            bridge = ipaddress.IPv6Interface(hv['bridge_address6'])
        elif pool:
            first = next(pool.subnets(new_prefix=64))
            bridge = ipaddress.IPv6Interface('%s/64' % first[1])
        else:
            return {}
        plan = _shared_ipv6(hv, guests, bridge)
    return plan


def _shared_ipv6(hv, guests, host_side):
    """The IPv6 plan of guests sharing one /64 (a bridge's, a VDE switch's) whose host side is
    host_side (IPv6Interface): a given address6, else SLAAC for a DHCP guest, else the next
    free address from ::2."""
    taken = {host_side.ip} | {ipaddress.IPv6Interface(guest['address6']).ip for guest in guests
                              if guest.get('address6')}
    candidates = (ip for ip in host_side.network.hosts()
                  if int(ip) - int(host_side.network.network_address) >= 2 and ip not in taken)
    plan = {}
    for guest in guests:
        if guest.get('address6'):
            plan[guest['name']] = GuestIPv6(guest['address6'], str(host_side.ip), False)
        elif is_dhcp_guest(hv, guest):
            plan[guest['name']] = GuestIPv6(slaac_address(guest.get('mac') or stable_mac(guest['name']),
                                                          host_side.network), str(host_side.ip), True)
        else:
            plan[guest['name']] = GuestIPv6('%s/%d' % (next(candidates), host_side.network.prefixlen),
                                            str(host_side.ip), False)
    return plan


def ipv6_networks(hv):
    """The host's IPv6 guest networks (sorted, unique)."""
    return sorted(set(network_of(planned.address) for planned in ipv6_plan(hv).values()))


def routed_ipv6(hv):
    """Whether the LAN reaches the host's IPv6 guest networks directly: routed, routed_nat
    without NAT66, bridged_lan (the guests are on the LAN)."""
    return bool(ipv6_plan(hv)) and hv['topology'] in ('routed', 'routed_nat', 'bridged_lan') and not hv.get('nat6')


def lan_blocked(hv):
    """Whether the host's guests and the LAN must not reach each other (isolated)."""
    return hv['topology'] in LAN_BLOCKED_TOPOLOGIES


def is_dhcp_guest(hv, guest):
    """Whether the plan serves the guest by DHCP: a DHCP topology and no `dhcp: false`."""
    return hv['topology'] in DHCP_TOPOLOGIES and guest.get('dhcp', True) is not False


def dns_name(guest):
    return '%s.%s' % (guest['name'], DNS_DOMAIN)


def siblings(hv, guest):
    """The other guests of the host on the same kind of link as the guest: the VDE guests
    for a VDE guest (they meet on the switch), the tap guests for a tap guest."""
    return [other for other in hv['guests']
            if other is not guest and bool(other.get('vde')) == bool(guest.get('vde'))]


def both_isolated(guest, other):
    """Isolated bridge ports reach the host and the other ports, never each other."""
    return bool(guest.get('isolated')) and bool(other.get('isolated'))


def forwards(hv):
    """(port, guest, guest_port) of every port forward of the host's guests."""
    return [(forward['port'], guest, forward.get('guest_port', forward['port']))
            for guest in hv['guests'] for forward in guest.get('forwards', ())]


def forward_url(hv, port):
    return 'http://%s:%d/' % (hv['uplink_address'], port)


def listen_port(guest):
    """The port of the guest's listener: where its forwards lead (one port; the test guest
    has one listener), else None."""
    ports = sorted(set(forward.get('guest_port', forward['port']) for forward in guest.get('forwards', ())))
    if len(ports) > 1:
        raise ValueError('%s: the test guest listens on one port, its forwards lead to %s' % (guest['name'], ports))
    return ports[0] if ports else None


def fetch_urls(hv, guest):
    """What a guest fetches: every forward of its host to one of its siblings, through the
    host's uplink address (the hairpin)."""
    return [forward_url(hv, port) for port, target, _guest_port in forwards(hv)
            if any(target is other for other in siblings(hv, guest))]


def http_body(guest):
    """The body of the test guest's listener (lab/guest/init.sh, ttq.listen)."""
    return 'TTQ-HTTP name=%s' % guest['name']


def guest_gateway(hv, guest):
    """What the plan makes the guest's gateway (docs/inventory.md): routed, the first
    host of its subnet; a VDE guest, the switch's host side; bridged_nat and isolated, the
    bridge; bridged_lan, none (the host does not route)."""
    if guest.get('vde'):
        return hv['vde']['address'].split('/')[0]
    if hv['topology'] in ('routed', 'routed_nat'):
        return str(next(ipaddress.ip_interface(guest['address']).network.hosts()))
    if hv['topology'] in BRIDGE_TOPOLOGIES:
        return hv['bridge_address'].split('/')[0]
    return None


def ping_targets(hv, guest):
    """(label, target, note) a guest pings and must reach: its gateway (or, on the LAN, its
    host), the other guests of its link (a DHCP guest by its DNS name) unless both are
    isolated ports, the LAN peer unless the network is isolated; then, when the guest has
    IPv6, the same over IPv6 (by address; on the LAN no gateway: the host does not route).
    note: what the row adds ('' or ' (VDE switch)' ...)."""
    plan6 = ipv6_plan(hv)
    vde = ' (VDE switch)' if guest.get('vde') else ''
    targets = []
    gateway = guest_gateway(hv, guest)
    if gateway:
        targets.append(('gateway', gateway, vde))
    else:
        targets.append(('host on br0', hv['uplink_address'], ''))
    reachable = [other for other in siblings(hv, guest) if not both_isolated(guest, other)]
    for other in reachable:
        by_name = is_dhcp_guest(hv, guest) and is_dhcp_guest(hv, other)
        targets.append((other['name'], dns_name(other) if by_name else guest_ip(other), vde))
    if not lan_blocked(hv):
        targets.append(('peer', PEER_ADDRESS, ' (NAT)' if vde and hv['topology'] == 'routed_nat' else ''))
    mine = plan6.get(guest['name'])
    if mine:
        if mine.gateway:
            targets.append(('gateway', mine.gateway, vde))
        for other in reachable:
            if other['name'] in plan6:
                targets.append((other['name'], plan6[other['name']].ip, vde))
        if not lan_blocked(hv):
            targets.append(('peer', PEER_ADDRESS6, ''))
    return targets


def unreach_targets(hv, guest):
    """(label, target, why, the guest it is or None) a guest must NOT reach, by address: the
    other isolated ports of its bridge, and on an isolated network the LAN peer; IPv4, then
    IPv6."""
    plan6 = ipv6_plan(hv)
    others = [other for other in siblings(hv, guest) if both_isolated(guest, other)]
    targets = [(other['name'], guest_ip(other), 'isolated', other) for other in others]
    if lan_blocked(hv):
        targets.append(('peer', PEER_ADDRESS, 'isolated network', None))
    if guest['name'] in plan6:
        targets += [(other['name'], plan6[other['name']].ip, 'isolated', other)
                    for other in others if other['name'] in plan6]
        if lan_blocked(hv):
            targets.append(('peer', PEER_ADDRESS6, 'isolated network', None))
    return targets


def lookups(hv, guest):
    """The DNS names a DHCP guest looks up: its DHCP siblings', then the LAN peer's name,
    which its host's DHCP server forwards to the peer."""
    if not is_dhcp_guest(hv, guest):
        return []
    return [dns_name(other) for other in siblings(hv, guest) if is_dhcp_guest(hv, other)] + [PEER_NAME]


def lookup_answer(hv, query):
    """(the address a lookup must give, how it is answered)."""
    if query == PEER_NAME:
        return PEER_ADDRESS, 'forwarded to %s' % PEER_ADDRESS
    other = [guest for guest in hv['guests'] if dns_name(guest) == query][0]
    return guest_ip(other), None


def guest_append(hv, guest, tries=None):
    """The kernel command line the lab gives a guest. A DHCP guest names neither its address
    nor its name (both come from its lease; the plan appends no ip= either); a static one gets
    its address from the plan's ip=, appended to this. A static IPv6 address (the kernel's ip=
    has no IPv6 form) is given as ttq.ip6 with its gateway; a SLAAC guest waits for its own.
    The targets it must not reach are tried last (ttq.unreach), after UNREACH_AFTER seconds
    when one of them is a guest."""
    mine = ipv6_plan(hv).get(guest['name'])
    static6 = mine if mine and not mine.slaac else None
    unreach = unreach_targets(hv, guest)
    return guest_boot.kernel_append(
        None, ping=[target for _label, target, _note in ping_targets(hv, guest)], lookup=lookups(hv, guest),
        listen=listen_port(guest), fetch=fetch_urls(hv, guest), tries=tries, after='stay',
        address6=static6.address if static6 else None, gateway6=static6.gateway if static6 else None,
        unreach=[target for _label, target, _why, _other in unreach],
        unreach_after=UNREACH_AFTER if any(other for _label, _target, _why, other in unreach) else None)


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
    def __init__(self, prefix, state_dir=None, only=None, specs=None):
        """only: names of the hypervisors to build (default all); specs: the fleet
        (default HYPERVISORS; CHANGED_HYPERVISORS is the other one); the LAN and the peer
        are always there."""
        specs = HYPERVISORS if specs is None else specs
        if not re.match(r'^[a-z0-9-]{1,10}$', prefix):
            raise SystemExit('--prefix: %r must be 1-10 characters of a-z, 0-9 and -' % prefix)
        unknown = sorted(set(only or ()) - set(specs))
        if unknown:
            raise SystemExit('--only: no hypervisor %s in the lab (it has %s)'
                             % (', '.join(unknown), ', '.join(sorted(specs))))
        self.prefix = prefix
        self.state_dir = state_dir or os.path.join('/run/tuntap-lab', prefix.rstrip('-'))
        self.lan = prefix + 'lan'
        self.peer = prefix + 'peer'
        self.hypervisors = dict((name, dict(spec, namespace=prefix + name))
                                for name, spec in specs.items() if not only or name in only)
        self.guests_dir = os.path.join(self.state_dir, 'guests')
        self.last_output = ''

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

    def runtime_root(self, hv_name):
        """The runtime root of hypervisor hv_name's guests (its /run/tuntap-qemu): one per
        hypervisor, as each real host has its own /run, so that a prune on one hypervisor
        can only see its own guests."""
        return os.path.join(self.guests_dir, hv_name)

    def guest_dir(self, name):
        """The runtime folder of guest `name`: under the hypervisor that lists it, else (a
        guest the inventory no longer lists) wherever it is."""
        for hv_name, hv in self.hypervisors.items():
            if any(guest['name'] == name for guest in hv['guests']):
                return os.path.join(self.runtime_root(hv_name), name)
        found = sorted(glob.glob(os.path.join(glob.escape(self.guests_dir), '*', name)))
        return found[0] if found else os.path.join(self.guests_dir, 'unknown', name)

    def serial_log(self, guest):
        return os.path.join(self.guest_dir(guest['name']), 'serial.log')

    # ------------------------------------------------------------ up / down
    def up(self, python, build):
        """Create the namespaces and write the inventory; build: build_guest()'s result."""
        with_vde = sorted(name for name, hv in self.hypervisors.items() if hv.get('vde'))
        if with_vde and not shutil.which('vde_switch'):
            raise SystemExit("%s: a VDE switch, but there is no vde_switch here: install Debian's vde2 "
                             "(apt-get install vde2; tests/run.sh installs it)" % ', '.join(with_vde))
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
            with open('/etc/netns/%s/network/interfaces' % ns, 'w') as handle:
                handle.write('# %s (tuntap.qemu lab)\nauto lo\niface lo inet loopback\n' % ns)
            self.write_ifupdown_hooks(ns)
            run(['ip', 'link', 'set', 'lo', 'up'], netns=ns)
        run(['ip', 'link', 'add', 'lan0', 'type', 'bridge'], netns=self.lan)
        run(['ip', 'link', 'set', 'lan0', 'up'], netns=self.lan)
        hosts = [('peer', self.peer, PEER_ADDRESS, PEER_ADDRESS6)] + [
            (name, hv['namespace'], hv['uplink_address'], hv.get('uplink_address6'))
            for name, hv in sorted(self.hypervisors.items())]
        for index, (name, ns, address, address6) in enumerate(hosts):
            self.plug_uplink(name, ns, address, index, address6=address6)
        self.peer_routes('add')
        self.count_sources()
        self.start_peer_dns()
        self.write_inventory(python, build)
        print('lab %s is up: namespaces %s' % (self.prefix, ', '.join(self.namespaces)))
        print('inventory: %s' % self.inventory)

    def peer_routes(self, verb):
        """The LAN peer routes the routed hypervisors' guest subnets back through them
        (verb add or del); NAT topologies need no route, and the peer counts where their
        packets come from. IPv6: the pool and the guest /64s outside it of every routed and
        routed_nat host without NAT66 (its /64s are routed).

        An isolated host's networks (IPv4 and IPv6) are routed to its uplink too, as a LAN
        router that knows them would: what keeps the peer and those guests apart is then the
        host alone (no forwarding, no NAT), and the pings that must fail can fail."""
        for _name, hv in sorted(self.hypervisors.items()):
            if hv['topology'] == 'routed' or lan_blocked(hv):
                for network in sorted(set(network_of(guest['address']) for guest in hv['guests'])):
                    run(['ip', 'route', verb, network, 'via', hv['uplink_address']], netns=self.peer)
            if lan_blocked(hv) and hv.get('uplink_address6'):
                for network in ipv6_networks(hv):
                    run(['ip', '-6', 'route', verb, network, 'via', hv['uplink_address6']], netns=self.peer)
            if hv['topology'] in ('routed', 'routed_nat') and routed_ipv6(hv) and hv.get('uplink_address6'):
                pool = ipaddress.IPv6Network(hv['pool6']) if hv.get('pool6') else None
                networks = ([str(pool)] if pool else []) + [
                    network for network in ipv6_networks(hv)
                    if not pool or not ipaddress.IPv6Network(network).subnet_of(pool)]
                for network in networks:
                    run(['ip', '-6', 'route', verb, network, 'via', hv['uplink_address6']], netns=self.peer)

    def reconfigure(self, specs, python, build):
        """Give the running lab another fleet (the same hypervisor names, other topologies
        and guests): the inventory, the LAN peer's routes and counters follow; the
        hypervisors change only when a playbook converges them."""
        if sorted(specs) != sorted(self.hypervisors):
            raise ValueError('reconfigure keeps the hypervisors %s' % ', '.join(sorted(self.hypervisors)))
        self.peer_routes('del')
        for name, spec in specs.items():
            self.hypervisors[name] = dict(spec, namespace=self.hypervisors[name]['namespace'])
        self.peer_routes('add')
        run(['nft', 'delete', 'table', 'inet', 'ttqlab'], netns=self.peer)
        self.count_sources()
        self.write_inventory(python, build)

    def plug_uplink(self, name, ns, address, index, mac=None, address6=None):
        """eth0 of host `name` in namespace ns: a veth into the LAN bridge, address/24, up;
        with the MAC `mac` when given, else UPLINK_MAC of its index. address6: a static IPv6 address (/64 of the LAN), and
        then no router advertisements taken on eth0 (no SLAAC address beside it: the NAT66
        host's source must be that address); without it eth0 takes SLAAC from the LAN."""
        port = 'p-%s' % name
        # The same MAC for the same hypervisor in every lab (locally administered; each lab has
        # a LAN of its own): its SLAAC address (EUI-64) is then the same too, so two labs of one
        # fleet compare equal.
        mac = mac or UPLINK_MAC % index
        # Both ends are born in the LAN namespace; one moves to the host as eth0.
        run(['ip', 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'e%d' % index]
            + (['address', mac] if mac else []), netns=self.lan)
        run(['ip', 'link', 'set', 'e%d' % index, 'netns', ns, 'name', 'eth0'], netns=self.lan)
        run(['ip', 'link', 'set', port, 'master', 'lan0', 'up'], netns=self.lan)
        run(['ip', 'addr', 'add', '%s/24' % address, 'dev', 'eth0'], netns=ns)
        if address6:
            # Per namespace (the namespace's own conf of its eth0), never the root's.
            run(['sysctl', '-q', '-w', 'net.ipv6.conf.eth0.accept_ra=0', 'net.ipv6.conf.eth0.autoconf=0'],
                netns=ns)
            run(['ip', '-6', 'addr', 'add', '%s/%d' % (address6, LAN_NETWORK6.prefixlen), 'dev', 'eth0',
                 'nodad'], netns=ns)
        run(['ip', 'link', 'set', 'eth0', 'up'], netns=ns)

    @staticmethod
    def write_ifupdown_hooks(ns):
        """The ifupdown hook folders of the namespace's /etc/network (which `ip netns exec`
        mounts over the host's, hooks included) with only bridge-utils' hook, which
        bridge_ports needs: other packages' hooks (systemd-resolved's, for one) would act on
        the host's services."""
        for folder in IFUPDOWN_HOOK_FOLDERS:
            path = '/etc/netns/%s/network/%s' % (ns, folder)
            os.makedirs(path, exist_ok=True)
            if folder in BRIDGE_UTILS_HOOK_FOLDERS and os.path.exists(BRIDGE_UTILS_HOOK):
                link = os.path.join(path, 'bridge')
                if not os.path.lexists(link):
                    os.symlink(BRIDGE_UTILS_HOOK, link)

    def write_inventory(self, python, build):
        """The fleet in the inventory schema of docs/inventory.md, reached through netns."""
        hosts = {}
        for name, hv in sorted(self.hypervisors.items()):
            ns = hv['namespace']
            guests = []
            for spec in hv['guests']:
                # ping_tries (the lab's, not an inventory key): rounds per target in the guest.
                append = guest_append(hv, spec, spec.get('ping_tries'))
                spec = dict(spec)
                spec.pop('ping_tries', None)
                guests.append(dict(spec, kernel=build['kernel'], initrd=build['initrd'], memory=256,
                                   append=append, extra_args=['-no-reboot']))
            host = {
                'ansible_host': ns,
                'tuntap_qemu_topology': hv['topology'],
                'tuntap_qemu_uplink_address': '%s/24' % hv['uplink_address'],
                'tuntap_qemu_guests': guests,
                # A single file cannot be replaced atomically through the bind mount of
                # ip netns exec: the namespace's nftables.conf is written where it lives
                # (inside the namespace it is /etc/nftables.conf), and the table's file in
                # the lab's state folder (a /etc/netns/NS/nftables.d would need the host to
                # have an /etc/nftables.d to mount it over).
                'tuntap_qemu_nftables_conf': '/etc/netns/%s/nftables.conf' % ns,
                'tuntap_qemu_nft_file': os.path.join(self.state_dir, name, 'tuntap-qemu.nft'),
                # The unit that loads that file at boot, written as on a systemd host (there is
                # no systemd as PID 1 here) into the lab's stand-in for /etc/systemd/system,
                # which boot_hypervisor reads.
                'tuntap_qemu_nft_boot_unit': 'systemd',
                'tuntap_qemu_nft_unit_dir': self.unit_dir(name),
                'tuntap_qemu_guest_runtime_root': self.runtime_root(name),
                # The rollback folders of its uplink changes (its /run/tuntap-qemu-rollback):
                # runtime state in the lab's state folder, which the teardown removes - not in
                # the hypervisor's folder of persistent files.
                'tuntap_qemu_rollback_dir': os.path.join(self.state_dir, 'rollback', name),
                # Its DHCP and DNS server: a pidfile'd dnsmasq (no systemd here) forwarding the
                # names outside the guests' zone to the LAN peer's DNS server (no query leaves
                # the lab; start_peer_dns), its files in the lab's state folder: the
                # configuration among the hypervisor's persistent files; the pidfile as runtime
                # state (its /run), which the teardown ends by (stop_dhcp_servers); the leases
                # (its /var/lib: kept at a simulated reboot) beside, not among the persistent
                # configuration (dnsmasq rewrites them with every lease's expiry time).
                'tuntap_qemu_dhcp_service': 'process',
                'tuntap_qemu_dhcp_resolvers': [PEER_ADDRESS],
                'tuntap_qemu_dhcp_config_dir': os.path.join(self.state_dir, name, 'dnsmasq'),
                'tuntap_qemu_dhcp_runtime_dir': self.dhcp_runtime_dir(name),
                'tuntap_qemu_dhcp_lease_file': os.path.join(self.state_dir, 'dhcp-leases', name, 'dnsmasq.leases'),
                'tuntap_qemu_dhcp_unit_dir': self.unit_dir(name),
            }
            if 'bridge_address' in hv:
                host['tuntap_qemu_bridge_address'] = hv['bridge_address']
            if hv.get('vde'):
                # The VDE switch: a pidfile'd vde_switch (no systemd here), its pidfile and
                # socket in the lab's state folder (its /run/tuntap-qemu/vde), which the
                # teardown and the reboot simulation end it by (stop_vde_switches).
                host['tuntap_qemu_vde'] = dict(hv['vde'])
            host['tuntap_qemu_vde_runtime_dir'] = self.vde_runtime_dir(name)
            if hv.get('uplink_address6'):
                # The uplink's static IPv6 address (set by plug_uplink): checked, and moved to
                # the bridge and persisted there by bridged_lan.
                host['tuntap_qemu_uplink_address6'] = '%s/%d' % (hv['uplink_address6'], LAN_NETWORK6.prefixlen)
            for key in ('pool6', 'bridge_address6', 'nat6'):
                if key in hv:
                    host['tuntap_qemu_%s' % key] = hv[key]
            hosts[name] = host
        inventory = {'all': {
            'vars': {
                'ansible_connection': 'tuntap.qemu.netns',
                'ansible_python_interpreter': python,
                'tuntap_qemu_install_packages': False,
                'tuntap_qemu_become': False,
                # No systemd here: the guests run daemonized (qemu_guest would fall back with
                # a warning per guest); a real host gets a unit per guest (autostart).
                'tuntap_qemu_guest_autostart': False,
            },
            'children': {
                'lan': {'hosts': {'peer': {'ansible_host': self.peer}}},
                'hypervisors': {'hosts': hosts},
            },
        }}
        with open(self.inventory, 'w') as handle:
            json.dump(inventory, handle, indent=2)

    def stop_guests(self, names=None):
        """End the lab's QEMU processes (or those of the guests `names`) by the pids in their
        pidfiles."""
        for folder in sorted(glob.glob(os.path.join(glob.escape(self.guests_dir), '*', '*'))):
            name = os.path.basename(folder)
            if names is not None and name not in names:
                continue
            pid = guest_process(os.path.join(folder, 'qemu.pid'), name)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 5
                while os.path.exists('/proc/%d' % pid) and time.monotonic() < deadline:
                    time.sleep(0.05)

    def start_peer_dns(self):
        """The LAN's DNS server: a dnsmasq in the peer namespace, bound to the peer's eth0
        addresses only, answering PEER_NAME and nothing else (no upstream), by its pidfile in the lab's
        DHCP runtime folder (stop_dhcp_servers ends it); it is the LAN's IPv6 router too:
        router advertisements of fd00:10::/64 on eth0."""
        folder = self.dhcp_runtime_dir('peer')
        os.makedirs(folder, exist_ok=True)
        run(['dnsmasq', '--conf-file=/dev/null', '--bind-interfaces', '--listen-address=%s' % PEER_ADDRESS,
             '--except-interface=lo', '--no-resolv', '--no-hosts',
             '--address=/%s/%s' % (PEER_NAME, PEER_ADDRESS),
             # The LAN's router advertisements (SLAAC in fd00:10::/64): RA only, no DHCPv6.
             # dnsmasq advertises only on an interface it is told by name (a listen-address
             # alone sends none), so DNS is on eth0's addresses as well.
             '--interface=eth0', '--enable-ra',
             '--dhcp-range=%s,ra-only,%d' % (LAN_NETWORK6.network_address, LAN_NETWORK6.prefixlen),
             '--pid-file=%s' % os.path.join(folder, 'dnsmasq.pid')], netns=self.peer)

    def dhcp_runtime_dir(self, name):
        """Hypervisor `name`'s DHCP runtime folder (its /run/tuntap-qemu/dnsmasq: pidfile)."""
        return os.path.join(self.state_dir, 'dhcp-run', name)

    def vde_runtime_dir(self, name):
        """Hypervisor `name`'s VDE runtime folder (its /run/tuntap-qemu/vde: the switch's
        pidfile and socket)."""
        return os.path.join(self.state_dir, 'vde-run', name)

    def stop_dhcp_servers(self, names=None):
        """End the dnsmasq processes of the lab's hypervisors (or of the hypervisors `names`)
        by the pids in the pidfiles of their DHCP runtime folders, each only when it is a
        dnsmasq whose command line names a path of the lab's state folder. A process would
        keep its namespace alive after `ip netns del`. Returns the pids ended."""
        folders = [self.dhcp_runtime_dir(name) for name in names] if names is not None \
            else [os.path.join(self.state_dir, 'dhcp-run')]
        return self.stop_pidfile_processes(folders, 'dnsmasq')

    def stop_vde_switches(self, names=None):
        """End the vde_switch processes of the lab's hypervisors (or of the hypervisors
        `names`) by the pids in the pidfiles of their VDE runtime folders, each only when it is
        a vde_switch whose command line names a path of the lab's state folder. Returns the
        pids ended."""
        folders = [self.vde_runtime_dir(name) for name in names] if names is not None \
            else [os.path.join(self.state_dir, 'vde-run')]
        return self.stop_pidfile_processes(folders, 'vde_switch')

    def vde_switch_pids(self, name):
        """The pids of hypervisor `name`'s running VDE switches, by the pidfiles of its VDE
        runtime folder (sorted)."""
        return sorted(pid for pid in (pidfile_process(pidfile, 'vde_switch', self.state_dir) for pidfile in
                                      glob.glob(os.path.join(glob.escape(self.vde_runtime_dir(name)), '**', '*.pid'),
                                                recursive=True))
                      if pid is not None)

    def stop_pidfile_processes(self, folders, program):
        """End, by the pids in the *.pid files under folders, each process that is `program`
        with a command line naming a path of the lab's state folder (SIGTERM, SIGKILL after
        5 s). Returns the pids ended."""
        ended = []
        for folder in folders:
            for pidfile in sorted(glob.glob(os.path.join(glob.escape(folder), '**', '*.pid'), recursive=True)):
                pid = pidfile_process(pidfile, program, self.state_dir)
                if pid is None:
                    continue
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 5
                while os.path.exists('/proc/%d' % pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if os.path.exists('/proc/%d' % pid):
                    os.kill(pid, signal.SIGKILL)
                ended.append(pid)
        return ended

    def down(self, quiet=False):
        namespaces = set(self.namespaces)
        state = os.path.join(self.state_dir, 'state.json')
        if os.path.exists(state):
            with open(state) as handle:
                namespaces.update(json.load(handle)['namespaces'])
        self.stop_guests()
        self.stop_dhcp_servers()
        self.stop_vde_switches()
        for ns in sorted(namespaces):
            if os.path.exists('/run/netns/%s' % ns):
                run(['ip', 'netns', 'del', ns])
            shutil.rmtree('/etc/netns/%s' % ns, ignore_errors=True)
        shutil.rmtree(self.state_dir, ignore_errors=True)
        if not quiet:
            print('lab %s removed' % self.prefix)

    # ------------------------------------------------------------ reboot simulation
    def recreate_hypervisor(self, name, timeout=10):
        """Power hypervisor `name` off and on: end its guests, its DHCP server and its VDE
        switch (each by its pidfile), delete its namespace and make a new one with only what
        the machine has before its own boot configuration runs: lo and its uplink eth0 (the
        veth into the LAN, same MAC) with the address it had before any converge. Its
        /etc/netns/<namespace>/ files (the persistent configuration) stay; its guests' and
        services' runtime folders (pidfiles, the VDE socket) and ifupdown's state go, as /run
        does at a reboot."""
        hv = self.hypervisors[name]
        ns = hv['namespace']
        # A NIC keeps its MAC across a reboot (and the LAN's ARP caches stay right).
        mac = json.loads(run(['ip', '-j', 'link', 'show', 'dev', 'eth0'], capture=True, netns=ns).stdout)[0]['address']
        guests = [guest['name'] for guest in hv['guests']]
        self.stop_guests(guests)
        self.stop_dhcp_servers([name])
        self.stop_vde_switches([name])
        shutil.rmtree(self.runtime_root(name), ignore_errors=True)
        shutil.rmtree(self.dhcp_runtime_dir(name), ignore_errors=True)
        shutil.rmtree(self.vde_runtime_dir(name), ignore_errors=True)
        shutil.rmtree(self.ifupdown_state(name), ignore_errors=True)
        if os.path.exists('/run/netns/%s' % ns):
            run(['ip', 'netns', 'del', ns])
        # The kernel dismantles a namespace asynchronously; its veth's LAN end goes with it.
        port = 'p-%s' % name
        deadline = time.monotonic() + timeout
        while run(['ip', 'link', 'show', 'dev', port], check=False, capture=True, netns=self.lan).returncode == 0:
            if time.monotonic() > deadline:
                raise RuntimeError('%s: the LAN port %s outlived the namespace %s' % (name, port, ns))
            time.sleep(0.05)
        run(['ip', 'netns', 'add', ns])
        run(['ip', 'link', 'set', 'lo', 'up'], netns=ns)
        self.plug_uplink(name, ns, hv['uplink_address'], sorted(self.hypervisors).index(name) + 1, mac,
                         address6=hv.get('uplink_address6'))

    def unit_dir(self, name):
        """Hypervisor `name`'s systemd unit folder (its /etc/systemd/system)."""
        return os.path.join(self.state_dir, name, 'systemd', 'system')

    def ifupdown_state(self, name):
        """ifupdown's state folder of hypervisor `name` (its /run/network)."""
        return os.path.join(self.state_dir, name, 'ifupdown')

    def boot_hypervisor(self, name):
        """Run hypervisor `name`'s boot path on its persistent files, in the order of a Debian
        12 boot, loading only what such a boot loads: systemd-sysctl (the files of its
        sysctl.d), the enabled units that load nftables rules - nftables.service
        (nft -f /etc/nftables.conf) only when it is enabled, which Debian's package is not,
        then tuntap-qemu-nft.service (the command of its ExecStart) - and networking.service
        (ifup -a with the interfaces files).

        A unit counts as enabled when a <target>.wants link of the hypervisor's unit folder
        (unit_dir, its /etc/systemd/system) names it, as `systemctl enable` makes it.
        Everything runs through `ip netns exec` in the hypervisor's namespace, which mounts
        /etc/netns/<namespace>/network over /etc/network. Only the sysctl.d files of the
        namespace are applied, never `sysctl --system` (it would also apply the host's
        /usr/lib/sysctl.d, where kernel.* keys are not per namespace), and only keys that
        are per namespace (BOOT_SYSCTL_KEY). ifupdown keeps its state in the lab's state
        folder (--state-dir), not in the host's /run/network. Returns {step: seconds}."""
        ns = self.hypervisors[name]['namespace']
        etc = '/etc/netns/%s' % ns
        timings = {}
        started = time.monotonic()
        sysctl_dir = os.path.join(etc, 'sysctl.d')
        for filename in sorted(os.listdir(sysctl_dir)):
            if not filename.endswith('.conf'):
                continue
            path = os.path.join(sysctl_dir, filename)
            keys = sysctl_keys(path)
            refused = [key for key in keys if not BOOT_SYSCTL_KEY.match(key)]
            if refused:
                raise RuntimeError('%s: %s sets %s, which the lab does not apply (not known to be per '
                                   'network namespace)' % (name, path, ', '.join(refused)))
            run(['sysctl', '-p', path], netns=ns)
        timings['sysctl'] = time.monotonic() - started
        units = enabled_units(self.unit_dir(name))
        if 'nftables.service' in units:
            started = time.monotonic()
            run(['nft', '-f', os.path.join(etc, 'nftables.conf')], netns=ns)
            timings['nftables.service'] = time.monotonic() - started
        if NFT_BOOT_UNIT in units:
            started = time.monotonic()
            run(nft_unit_command(os.path.join(self.unit_dir(name), NFT_BOOT_UNIT)), netns=ns)
            timings[NFT_BOOT_UNIT] = time.monotonic() - started
        started = time.monotonic()
        # ifup reads /etc/network/interfaces: make sure it is the namespace's.
        with open(os.path.join(etc, 'network', 'interfaces')) as handle:
            wanted = handle.read()
        seen = run(['cat', '/etc/network/interfaces'], capture=True, netns=ns).stdout
        if seen != wanted:
            raise RuntimeError('%s: /etc/network inside %s is not %s/network' % (name, ns, etc))
        state = self.ifupdown_state(name)
        os.makedirs(state, exist_ok=True)
        run(['ifup', '-a', '--state-dir', state], netns=ns)
        timings['ifup'] = time.monotonic() - started
        return timings

    # ------------------------------------------------------------ converge
    def converge(self, playbook, extra_vars=None, extra_args=None):
        """Run a playbook against the lab; returns (exit code, total 'changed' of the recap).

        extra_args: more ansible-playbook arguments, such as ['--check', '--diff'].
        The output stays in self.last_output."""
        ansible_playbook = shutil.which('ansible-playbook')
        if not ansible_playbook:
            raise SystemExit('ansible-playbook not found; run lab/run.sh, which installs it')
        env = dict(ENV, ANSIBLE_COLLECTIONS_PATH=collections_path(self.state_dir),
                   ANSIBLE_PIPELINING='True', ANSIBLE_NOCOLOR='1', ANSIBLE_RETRY_FILES_ENABLED='False')
        argv = [ansible_playbook, '-i', self.inventory, os.path.join(REPO, 'playbooks', playbook)]
        for key, value in sorted((extra_vars or {}).items()):
            argv += ['-e', '%s=%s' % (key, value)]
        argv += list(extra_args or [])
        process = subprocess.Popen(argv, env=env, text=True, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
        changed = 0
        output = []
        for line in process.stdout:
            sys.stdout.write(line)
            output.append(line)
            match = re.search(r'\bok=\d+\s+changed=(\d+)', line)
            if match:
                changed += int(match.group(1))
        rc = process.wait()
        self.last_output = ''.join(output)
        return rc, changed

    # ------------------------------------------------------------ proof
    def ping(self, source_ns, target):
        result = run(['ping', '-n', '-c', '3', '-i', '0.2', '-W', '1', target],
                     check=False, capture=True, netns=source_ns)
        match = re.search(r'= [\d.]+/([\d.]+)/', result.stdout)
        return result.returncode == 0, (float(match.group(1)) if match else None)

    @staticmethod
    def unreachable(source_ns, target):
        """Whether target does not answer a short ping from namespace source_ns (two echo
        requests within 2 s, as the guests' ttq.unreach), and the round trip if it does."""
        result = run(['ping', '-n', '-c', '2', '-i', '0.2', '-W', '1', '-w', '2', target],
                     check=False, capture=True, netns=source_ns)
        match = re.search(r'= [\d.]+/([\d.]+)/', result.stdout)
        return match is None, (float(match.group(1)) if match else None)

    def count_sources(self):
        """Counters in the LAN peer (a lab host) of the echo requests it gets from each NAT
        hypervisor's uplink address and from its guest subnets: the proof that the peer
        sees the host, never a guest address; the same over IPv6 for a NAT66 host. An
        isolated host's: the peer must see none, neither from its guests nor from its uplink
        (no NAT), IPv4 and IPv6."""
        rules = ['add table inet ttqlab', 'add chain inet ttqlab input { type filter hook input priority 0; }']
        for name, hv in sorted(self.hypervisors.items()):
            if hv['topology'] in ('routed_nat', 'bridged_nat'):
                rules.append('add rule inet ttqlab input ip saddr %s icmp type echo-request counter comment "%s uplink"'
                             % (hv['uplink_address'], name))
                for network in sorted(set(network_of(guest['address']) for guest in hv['guests'])):
                    rules.append('add rule inet ttqlab input ip saddr %s icmp type echo-request counter '
                                 'comment "%s guests"' % (network, name))
            if lan_blocked(hv):
                rules.append('add rule inet ttqlab input ip saddr %s icmp type echo-request counter '
                             'comment "%s uplink"' % (hv['uplink_address'], name))
                for network in sorted(set(network_of(guest['address']) for guest in hv['guests'])):
                    rules.append('add rule inet ttqlab input ip saddr %s icmp type echo-request counter '
                                 'comment "%s guests"' % (network, name))
            if (hv.get('nat6') or lan_blocked(hv)) and hv.get('uplink_address6'):
                rules.append('add rule inet ttqlab input ip6 saddr %s icmpv6 type echo-request counter '
                             'comment "%s uplink6"' % (hv['uplink_address6'], name))
                for network in ipv6_networks(hv):
                    rules.append('add rule inet ttqlab input ip6 saddr %s icmpv6 type echo-request counter '
                                 'comment "%s guests6"' % (network, name))
        subprocess.run(['ip', 'netns', 'exec', self.peer, 'nft', '-f', '-'], input='\n'.join(rules) + '\n',
                       text=True, check=True, env=ENV)

    def source_counts(self):
        """{comment: packets} of the peer's counters (summed over the rules of a comment)."""
        result = run(['nft', '-j', 'list', 'table', 'inet', 'ttqlab'], capture=True, netns=self.peer)
        counts = {}
        for item in json.loads(result.stdout)['nftables']:
            rule = item.get('rule')
            if not rule:
                continue
            for expr in rule['expr']:
                if 'counter' in expr:
                    # One rule per guest network shares the comment: their packets add up.
                    counts[rule.get('comment')] = counts.get(rule.get('comment'), 0) + expr['counter']['packets']
        return counts

    def guest_reports(self, timeout=GUEST_TIMEOUT):
        """{guest name: serial report}, waiting for every guest's TTQ-DONE."""
        reports = {}
        deadline = time.monotonic() + timeout
        for _hv, _spec, guest in self.guests():
            remaining = max(1.0, deadline - time.monotonic())
            reports[guest['name']], _waited = guest_boot.wait_for_done(self.serial_log(guest), remaining)
        return reports

    def http_get(self, source_ns, url, tries=3):
        """GET url from inside namespace source_ns (Debian's python3, urllib); returns
        (body or None, latency in ms or None), the first answer of up to `tries`."""
        for attempt in range(tries):
            result = subprocess.run(['ip', 'netns', 'exec', source_ns, '/usr/bin/python3', '-c', HTTP_GET, url,
                                     str(HTTP_TIMEOUT)], check=False, env=ENV, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            status, _sep, rest = result.stdout.partition('\n')
            words = status.split()
            if result.returncode == 0 and len(words) == 2 and words[0] == '200':
                return rest, float(words[1])
            if attempt + 1 < tries:
                time.sleep(1)
        return None, None

    @staticmethod
    def guest_rows(hv, guest, report, reports=None):
        """The rows of a guest's own checks, from its serial report: its lease (a DHCP guest),
        its lookups, its pings, its fetches through the host's forwards, the pings that must
        fail. reports: every guest's report ({name: report}), for the TTQ-BOOT clock of a
        guest that the guest must not reach: the row holds only when that guest was up before
        the try."""
        rows = []
        name = guest['name']
        if is_dhcp_guest(hv, guest):
            lease = report.get('lease') or {}
            leased, hostname = lease.get('ip', 'none'), lease.get('hostname', 'none')
            ok = leased == guest['address'] and hostname == name
            rows.append((name, 'lease %s %s planned %s (hostname %s)'
                         % (leased, '==' if ok else '!=', guest['address'], hostname), ok, None))
        mine = ipv6_plan(hv).get(name)
        if mine:
            reported = (report.get('boot') or {}).get('ip6') or 'none'
            ok = same_interface(reported, mine.address)
            rows.append((name, 'ip6 %s %s planned %s (%s)' % (reported, '==' if ok else '!=', mine.address,
                                                              'SLAAC' if mine.slaac else 'static'), ok, None))
        by_name = dict((dns_name(other), other) for other in hv['guests'])
        for query in lookups(hv, guest):
            found = (report.get('lookups') or {}).get(query) or {}
            address = found.get('address', 'none')
            wanted, how = lookup_answer(hv, query)
            ok = found.get('status') == 'ok' and address == wanted
            rows.append((name, 'lookup %s -> %s%s%s' % (query, address, ' (%s)' % how if how else '',
                                                        '' if ok else ' (expected %s)' % wanted), ok, None))
        for label, target, note in ping_targets(hv, guest):
            result = report['results'].get(target)
            ok = result is not None and result.get('status') == 'ok'
            if target in by_name:
                # By name: the guest pinged what its lookup gave, which must be the plan's.
                ok = ok and result.get('address') == guest_ip(by_name[target])
                text = '%s by name %s (%s)%s' % (label, target, (result or {}).get('address', 'not looked up'), note)
            else:
                text = '%s %s%s' % (label, target, note)
            rows.append((name, text, ok, result.get('rtt_ms') if result else None))
        for port, target, guest_port in forwards(hv):
            if not any(target is other for other in siblings(hv, guest)):
                continue
            url = forward_url(hv, port)
            fetched = (report.get('fetches') or {}).get(url) or {}
            ok = fetched.get('status') == 'ok' and fetched.get('body', '').strip() == http_body(target)
            failure = ' (%s, body %r)' % (fetched.get('status', 'no TTQ-FETCH'), fetched.get('body'))
            rows.append((name, '%s:%d -> %s:%d (hairpin)%s' % (hv['uplink_address'], port, target['name'], guest_port,
                                                               '' if ok else failure), ok, None))
        for label, target, why, other in unreach_targets(hv, guest):
            result = (report.get('unreach') or {}).get(target) or {}
            status = result.get('status', 'not tried')
            ok = status == 'blocked'
            proof = ''
            if ok and other is not None:
                # A guest that was not up yet proves nothing: its TTQ-BOOT must come first.
                booted = (((reports or {}).get(other['name']) or {}).get('boot') or {}).get('clock')
                tried = result.get('clock')
                if not (booted and tried and booted.isdigit() and tried.isdigit()
                        and int(tried) - int(booted) >= UNREACH_PROOF_SECONDS):
                    ok = False
                    proof = ' (not proven: %s up at clock %s, the try at %s)' % (
                        other['name'], booted or '-', tried or '-')
            rows.append((name, '%s %s %s (%s)%s' % (label, target, status, why, proof), ok, result.get('rtt_ms')))
        return rows

    def forward_rows(self, hv_name, hv):
        """Each forward of the host, reached from the LAN peer and from the host itself:
        a GET that the target guest's listener must answer with its own name."""
        rows = []
        for port, target, guest_port in forwards(hv):
            url = forward_url(hv, port)
            for source, ns in (('peer', self.peer), ('%s itself' % hv_name, hv['namespace'])):
                body, latency = self.http_get(ns, url)
                ok = body is not None and body.strip() == http_body(target)
                rows.append((source, '%s:%d -> %s:%d%s' % (hv['uplink_address'], port, target['name'], guest_port,
                                                           '' if ok or body is None else ': %r' % body),
                             ok, latency))
        return rows

    def matrices(self, reports):
        """{hypervisor: (title, rows)}; a row is (from, to, ok, latency in ms or None)."""
        counts = self.source_counts()
        tables = {}
        for name, hv in sorted(self.hypervisors.items()):
            rows = []
            for guest in hv['guests']:
                report = reports.get(guest['name']) or {'results': {}}
                rows += self.guest_rows(hv, guest, report, reports)
            if hv['topology'] in ('routed', 'bridged_lan'):
                for guest in hv['guests']:
                    ok, latency = self.ping(self.peer, guest_ip(guest))
                    rows.append(('peer', '%s %s (directly)' % (guest['name'], guest_ip(guest)), ok, latency))
            if routed_ipv6(hv):
                for guest_name, planned in sorted(ipv6_plan(hv).items()):
                    ok, latency = self.ping(self.peer, planned.ip)
                    rows.append(('peer', '%s %s (directly)' % (guest_name, planned.ip), ok, latency))
            if hv['topology'] == 'bridged_lan':
                ok, latency = self.ping(self.peer, hv['uplink_address'])
                rows.append(('peer', '%s %s (now on br0)' % (name, hv['uplink_address']), ok, latency))
            if hv['topology'] in ('routed_nat', 'bridged_nat'):
                from_host = counts.get('%s uplink' % name, 0)
                from_guests = counts.get('%s guests' % name, 0)
                rows.append(('peer', 'sees %s (%d pings), no guest address (%d)'
                             % (hv['uplink_address'], from_host, from_guests),
                             from_host > 0 and from_guests == 0, None))
            if hv.get('nat6') and ipv6_plan(hv):
                from_host = counts.get('%s uplink6' % name, 0)
                from_guests = counts.get('%s guests6' % name, 0)
                rows.append(('peer', 'sees %s (%d ping6s), no guest IPv6 address (%d)'
                             % (hv.get('uplink_address6'), from_host, from_guests),
                             from_host > 0 and from_guests == 0, None))
            if lan_blocked(hv):
                rows += self.blocked_rows(name, hv, counts)
            rows += self.forward_rows(name, hv)
            tables[name] = ('%s: %s' % (name, hv['topology']), rows)
        return tables

    def blocked_rows(self, hv_name, hv, counts):
        """An isolated network and the LAN: the peer's short pings of each guest (IPv4 and
        IPv6; the peer routes them to the host's uplink) must go unanswered while the guest
        runs, and the peer must have seen no echo request of the host's guests, nor of the
        host's uplink address (which a NAT would show)."""
        rows = []
        plan6 = ipv6_plan(hv)
        for guest in hv['guests']:
            running = guest_process(os.path.join(self.guest_dir(guest['name']), 'qemu.pid'), guest['name']) is not None
            for target in [guest_ip(guest)] + ([plan6[guest['name']].ip] if guest['name'] in plan6 else []):
                blocked, latency = self.unreachable(self.peer, target)
                rows.append(('peer', '%s %s %s (isolated network)%s' % (
                    guest['name'], target, 'blocked' if blocked else 'reached', '' if running else ' (not running)'),
                    blocked and running, latency))
        seen = [(counts.get('%s %s' % (hv_name, key), 0), what) for key, what in (
            ('uplink', 'pings from %s' % hv['uplink_address']), ('guests', 'from its guests'),
            ('uplink6', 'ping6s from %s' % hv.get('uplink_address6')), ('guests6', 'from its guests'))
            if key[-1] != '6' or hv.get('uplink_address6')]
        rows.append(('peer', 'sees nothing of %s (%s)' % (hv_name, ', '.join('%d %s' % item for item in seen)),
                     not any(count for count, _what in seen), None))
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
            print((line % row).rstrip())
        return all(row[2] for row in rows)

    def print_matrices(self, reports):
        ok = True
        for _name, (title, rows) in sorted(self.matrices(reports).items()):
            ok = self.print_matrix(title, rows) and ok
        return ok


def network_of(cidr):
    return str(ipaddress.ip_interface(cidr).network)


def same_interface(reported, planned):
    """Whether the ADDRESS/PREFIX a guest reported is the planned one (any spelling)."""
    try:
        return ipaddress.ip_interface(reported) == ipaddress.ip_interface(planned)
    except ValueError:
        return False


def dnsmasq_process(pidfile, folder):
    """The pid in pidfile when it is alive and a dnsmasq whose command line names a path
    under folder (its configuration, its pidfile), else None."""
    return pidfile_process(pidfile, 'dnsmasq', folder)


def pidfile_process(pidfile, program, folder):
    """The pid in pidfile when it is alive and is `program` (the base name of its argv[0])
    with a command line that names a path under folder (its configuration, pidfile or
    socket), else None."""
    try:
        with open(pidfile) as handle:
            pid = int(handle.read().strip())
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            args = [arg.decode(errors='replace') for arg in handle.read().split(b'\0') if arg]
    except (OSError, ValueError):
        return None
    if args and os.path.basename(args[0]) == program and any(folder in arg for arg in args[1:]):
        return pid
    return None


# Run inside a lab namespace: GET the URL, print the status, the time in ms and the body.
HTTP_GET = '''
import sys, time, urllib.request
started = time.monotonic()
with urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])) as response:
    body = response.read(4096).decode('utf-8', 'replace')
print(response.status, '%.2f' % ((time.monotonic() - started) * 1000))
sys.stdout.write(body)
'''


def enabled_units(unit_dir):
    """Names of the units that a *.wants folder of unit_dir links to (enabled units)."""
    names = set()
    if not os.path.isdir(unit_dir):
        return names
    for folder in os.listdir(unit_dir):
        wants = os.path.join(unit_dir, folder)
        if folder.endswith('.wants') and os.path.isdir(wants):
            names.update(entry for entry in os.listdir(wants)
                         if os.path.exists(os.path.join(wants, entry)))
    return names


def nft_unit_command(path):
    """The argv of the ExecStart of our nft boot unit: refused unless it is `nft -f FILE`."""
    with open(path) as handle:
        lines = [line.strip() for line in handle]
    if not lines or not lines[0].startswith('# Managed by tuntap.qemu'):
        raise RuntimeError('%s is not a unit of tuntap.qemu' % path)
    commands = [line[len('ExecStart='):].split() for line in lines if line.startswith('ExecStart=')]
    if len(commands) != 1 or len(commands[0]) != 3 or os.path.basename(commands[0][0]) != 'nft' \
            or commands[0][1] != '-f':
        raise RuntimeError('%s: ExecStart is not "nft -f FILE": %s' % (path, commands))
    return commands[0]


def sysctl_keys(path):
    """The keys a sysctl.d file sets, in sysctl's dotted form (sysctl.d(5) syntax)."""
    keys = []
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if not line or line[0] in '#;':
                continue
            key = line.split('=', 1)[0].strip().lstrip('-')
            keys.append(key.replace('/', '.'))
    return keys


def demo(lab, python, keep):
    started = time.time()
    build = build_guest.build_guest()
    print('test guest: %s (%s, %.1f s to build)' % (
        build['kernel_release'], 'cached' if build['cached'] else 'built', build['build_seconds']))
    lab.up(python, build)
    converge_started = time.time()
    rc, _changed = lab.converge('site.yml')
    if rc != 0:
        print('the converge failed (exit %d)' % rc)
        return rc
    converge_seconds = time.time() - converge_started
    print('\nsecond converge (must report changed=0):')
    second_started = time.time()
    rc, changed = lab.converge('site.yml')
    if rc != 0 or changed != 0:
        print('the second converge was not idempotent (exit %d, changed=%d)' % (rc, changed))
        return rc or 1
    second_seconds = time.time() - second_started
    checks_started = time.time()
    reports = lab.guest_reports()
    print("\nconnectivity of lab %s, from the guests' own serial consoles and the LAN peer:" % lab.prefix)
    ok = lab.print_matrices(reports)
    checks_seconds = time.time() - checks_started
    uptimes = ', '.join('%s %s s' % (guest['name'], ((reports[guest['name']] or {}).get('boot') or {}).get('uptime', '?'))
                        for _hv, _spec, guest in lab.guests())
    print('\nguest uptime when networking was up: %s' % uptimes)
    verdict = 'all checks ok' if ok else 'SOME CHECKS FAILED'
    print('site.yml converge %.1f s, second converge %.1f s, guest results and matrix %.1f s; %s in %.1f s'
          % (converge_seconds, second_seconds, checks_seconds, verdict, time.time() - started))
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
    parser.add_argument('--only', action='append', metavar='HV[,HV]',
                        help='up, demo, matrix: only these hypervisors of %s (default all); '
                             'down removes what up made either way' % ', '.join(sorted(HYPERVISORS)))
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit('the lab creates network namespaces: run it as root')
    only = [name for value in args.only or () for name in value.split(',') if name]
    lab = Lab(args.prefix, only=only)
    if args.command == 'up':
        lab.up(args.python, build_guest.build_guest())
        return 0
    if args.command == 'down':
        lab.down()
        return 0
    if args.command == 'converge':
        return lab.converge('site.yml')[0]
    if args.command == 'matrix':
        return 0 if lab.print_matrices(lab.guest_reports()) else 1
    try:
        return demo(lab, args.python, args.keep)
    finally:
        if not args.keep:
            lab.down()


if __name__ == '__main__':
    sys.exit(main())
