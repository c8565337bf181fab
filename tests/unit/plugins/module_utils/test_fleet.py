# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet plan: a valid four-topology fleet, every class of error, pool planning."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import planner as fleet
from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import schema
from ansible_collections.tuntap.qemu.plugins.module_utils._guest.guest_config import stable_mac

# One hypervisor per topology, as docs/inventory.md shows it.
FLEET = {
    'hv1': {
        'tuntap_qemu_topology': 'routed',
        'tuntap_qemu_uplink_address': '10.0.0.11/24',
        'tuntap_qemu_guests': [
            {'name': 'vm1', 'address': '192.168.0.10/24', 'kernel': '/srv/vmlinuz', 'memory': 256},
            {'name': 'vm2', 'address': '192.168.1.10/24', 'gateway': '192.168.1.254'},
        ],
    },
    'hv2': {
        'tuntap_qemu_topology': 'routed_nat',
        'tuntap_qemu_uplink_address': '10.0.0.12/24',
        'tuntap_qemu_pool': '192.168.0.0/16',
        'tuntap_qemu_guests': [{'name': 'vm3'}, {'name': 'vm4', 'tap': 'vnet4'}],
    },
    'hv3': {
        'tuntap_qemu_topology': 'bridged_nat',
        'tuntap_qemu_uplink': 'ens3',
        'tuntap_qemu_uplink_address': '10.0.0.13/24',
        'tuntap_qemu_bridge': 'virbr0',
        'tuntap_qemu_bridge_address': '192.168.100.1/24',
        'tuntap_qemu_pool': '192.168.0.0/16',
        'tuntap_qemu_guests': [{'name': 'vm5', 'address': '192.168.100.2/24'}, {'name': 'vm6'}],
    },
    'hv4': {
        'tuntap_qemu_topology': 'bridged_lan',
        'tuntap_qemu_uplink_address': '10.0.0.14/24',
        'tuntap_qemu_uplink_gateway': '10.0.0.1',
        'tuntap_qemu_guest_user': 'qemu',
        'tuntap_qemu_guest_group': 'kvm',
        'tuntap_qemu_guests': [
            {'name': 'vm7', 'address': '10.0.0.101/24', 'gateway': '10.0.0.1', 'run_as': 'root'},
            {'name': 'vm8', 'address': '10.0.0.102/24', 'mac': '52:54:00:AA:BB:08', 'user': 'alice'},
        ],
    },
}


def guest(name, tap, address, gateway, derived, mac=None, user=None, group=None, run_as=None, dhcp=True, **options):
    ip, prefixlen = address.split('/')
    netmask = {'24': '255.255.255.0'}[prefixlen]
    network = '%s.0/%s' % (ip.rsplit('.', 1)[0], prefixlen)
    stanza = 'auto eth0\niface eth0 inet static\n    address %s\n' % address
    if gateway:
        stanza += '    gateway %s\n' % gateway
    result = {
        'name': name, 'tap': tap, 'mac': mac or stable_mac(name, 0),
        'user': user, 'group': group, 'run_as': run_as,
        'address': address, 'ip': ip, 'prefixlen': int(prefixlen), 'netmask': netmask,
        'network': network, 'gateway': gateway,
        'kernel_ip': 'ip=%s::%s:%s:%s:eth0:off' % (ip, gateway or '', netmask, name),
        'interfaces_stanza': stanza, 'derived': derived, 'dhcp': dhcp,
        'address6': None, 'ip6': None, 'gateway6': None, 'slaac': False,
        'isolated': False, 'vde': None,
    }
    result.update(options)
    return result


NAT_HINT = ('%s: the inventory (tuntap_qemu_uplink_address %s) is not what the host holds; nothing was '
            'changed. Correct the inventory')
LAN_HINT = ('%s: the inventory (tuntap_qemu_uplink_address 10.0.0.14/24, tuntap_qemu_uplink_gateway '
            '10.0.0.1) is not what the host holds; nothing was changed. Correct the inventory, or set '
            "tuntap_qemu_uplink_readdress: true to change the host's address on purpose")
EXPECTED_PLAN = {
    'hv1': {
        'topology': 'routed', 'uplink': 'eth0', 'uplink_address': '10.0.0.11/24', 'forwarding': True,
        'forwarding_families': ['ipv4'],
        'uplink_gateway': None,
        'uplink_network': None,
        'uplink_check': {'name': 'eth0', 'bridge': None, 'addresses': ['10.0.0.11/24'], 'gateway': None, 'exact': False, 'dhcp': False,
                         'hint': NAT_HINT % ('hv1', '10.0.0.11/24')},
        'uplink_change': {'uplink': 'eth0', 'bridge': 'br0', 'takeover': False},
        'taps': [
            {'name': 'tap0', 'user': None, 'group': None, 'addresses': ['192.168.0.1/24']},
            {'name': 'tap1', 'user': None, 'group': None, 'addresses': ['192.168.1.254/24']},
        ],
        'bridge': None,
        'nat': [],
        'vde': None,
        # A DHCP guest booted from a kernel asks for its address: no ip= is appended.
        'dhcp': {'domain': 'qemu.internal', 'host_name': 'hv1', 'networks': [
            {'interface': 'tap0', 'address': '192.168.0.1/24', 'address6': None, 'range': None,
             'hosts': [{'mac': stable_mac('vm1', 0), 'address': '192.168.0.10', 'name': 'vm1', 'address6': None}]},
            {'interface': 'tap1', 'address': '192.168.1.254/24', 'address6': None, 'range': None,
             'hosts': [{'mac': stable_mac('vm2', 0), 'address': '192.168.1.10', 'name': 'vm2', 'address6': None}]}]},
        'port_forwards': [],
        'guests': [
            guest('vm1', 'tap0', '192.168.0.10/24', '192.168.0.1', ['gateway', 'mac', 'tap'],
                  kernel='/srv/vmlinuz', memory=256),
            guest('vm2', 'tap1', '192.168.1.10/24', '192.168.1.254', ['mac', 'tap']),
        ],
    },
    'hv2': {
        # The pool skips 192.168.0.0/24 and 192.168.1.0/24 (hv1's guests).
        'topology': 'routed_nat', 'uplink': 'eth0', 'uplink_address': '10.0.0.12/24', 'forwarding': True,
        'forwarding_families': ['ipv4'],
        'uplink_gateway': None,
        'uplink_network': None,
        'uplink_check': {'name': 'eth0', 'bridge': None, 'addresses': ['10.0.0.12/24'], 'gateway': None, 'exact': False, 'dhcp': False,
                         'hint': NAT_HINT % ('hv2', '10.0.0.12/24')},
        'uplink_change': {'uplink': 'eth0', 'bridge': 'br0', 'takeover': False},
        'taps': [
            {'name': 'tap0', 'user': None, 'group': None, 'addresses': ['192.168.2.1/24']},
            {'name': 'vnet4', 'user': None, 'group': None, 'addresses': ['192.168.3.1/24']},
        ],
        'bridge': None,
        'vde': None,
        'nat': [{'source': ['192.168.2.0/24'], 'out_interface': 'eth0'},
                {'source': ['192.168.3.0/24'], 'out_interface': 'eth0'}],
        'dhcp': {'domain': 'qemu.internal', 'host_name': 'hv2', 'networks': [
            {'interface': 'tap0', 'address': '192.168.2.1/24', 'address6': None, 'range': None,
             'hosts': [{'mac': stable_mac('vm3', 0), 'address': '192.168.2.2', 'name': 'vm3', 'address6': None}]},
            {'interface': 'vnet4', 'address': '192.168.3.1/24', 'address6': None, 'range': None,
             'hosts': [{'mac': stable_mac('vm4', 0), 'address': '192.168.3.2', 'name': 'vm4', 'address6': None}]}]},
        'port_forwards': [],
        'guests': [
            guest('vm3', 'tap0', '192.168.2.2/24', '192.168.2.1', ['address', 'gateway', 'mac', 'tap']),
            guest('vm4', 'vnet4', '192.168.3.2/24', '192.168.3.1', ['address', 'gateway', 'mac']),
        ],
    },
    'hv3': {
        'topology': 'bridged_nat', 'uplink': 'ens3', 'uplink_address': '10.0.0.13/24', 'forwarding': True,
        'forwarding_families': ['ipv4'],
        'uplink_gateway': None,
        'uplink_network': None,
        'uplink_check': {'name': 'ens3', 'bridge': None, 'addresses': ['10.0.0.13/24'], 'gateway': None, 'exact': False, 'dhcp': False,
                         'hint': NAT_HINT % ('hv3', '10.0.0.13/24')},
        'uplink_change': {'uplink': 'ens3', 'bridge': 'virbr0', 'takeover': False},
        'taps': [
            {'name': 'tap0', 'user': None, 'group': None, 'addresses': []},
            {'name': 'tap1', 'user': None, 'group': None, 'addresses': []},
        ],
        'bridge': {'name': 'virbr0', 'addresses': ['192.168.100.1/24'], 'ports': ['tap0', 'tap1'], 'uplink': None,
                   'gateway': None, 'readdress': False, 'dhcp': False, 'isolated_ports': []},
        'vde': None,
        'nat': [{'source': ['192.168.100.0/24'], 'out_interface': 'ens3'}],
        'dhcp': {'domain': 'qemu.internal', 'host_name': 'hv3', 'networks': [
            {'interface': 'virbr0', 'address': '192.168.100.1/24', 'address6': None, 'range': None,
             'hosts': [{'mac': stable_mac('vm5', 0), 'address': '192.168.100.2', 'name': 'vm5', 'address6': None},
                       {'mac': stable_mac('vm6', 0), 'address': '192.168.100.3', 'name': 'vm6', 'address6': None}]}]},
        'port_forwards': [],
        'guests': [
            guest('vm5', 'tap0', '192.168.100.2/24', '192.168.100.1', ['gateway', 'mac', 'tap']),
            guest('vm6', 'tap1', '192.168.100.3/24', '192.168.100.1', ['address', 'gateway', 'mac', 'tap']),
        ],
    },
    'hv4': {
        'topology': 'bridged_lan', 'uplink': 'eth0', 'uplink_address': '10.0.0.14/24', 'forwarding': False,
        'forwarding_families': ['ipv4'],
        'uplink_gateway': '10.0.0.1',
        'uplink_network': None,
        'uplink_check': {'name': 'eth0', 'bridge': 'br0', 'addresses': ['10.0.0.14/24'], 'gateway': '10.0.0.1', 'exact': True, 'dhcp': False,
                         'hint': LAN_HINT % 'hv4'},
        'uplink_change': {'uplink': 'eth0', 'bridge': 'br0', 'takeover': True},
        'taps': [
            {'name': 'tap0', 'user': 'qemu', 'group': 'kvm', 'addresses': []},
            {'name': 'tap1', 'user': 'alice', 'group': 'kvm', 'addresses': []},
        ],
        'bridge': {'name': 'br0', 'addresses': ['10.0.0.14/24'], 'ports': ['tap0', 'tap1', 'eth0'], 'uplink': 'eth0',
                   'gateway': '10.0.0.1', 'readdress': False, 'dhcp': False, 'isolated_ports': []},
        'vde': None,
        'nat': [],
        'dhcp': None,
        'port_forwards': [],
        'guests': [
            guest('vm7', 'tap0', '10.0.0.101/24', '10.0.0.1', ['mac', 'tap'], user='qemu', group='kvm', run_as='root',
                  dhcp=False),
            guest('vm8', 'tap1', '10.0.0.102/24', None, ['tap'], mac='52:54:00:aa:bb:08',
                  user='alice', group='kvm', run_as='alice', dhcp=False),
        ],
    },
}


def fleet_with(change):
    inventory = copy.deepcopy(FLEET)
    change(inventory)
    return inventory


def guests_of(inventory, host):
    return inventory[host]['tuntap_qemu_guests']


def test_valid_fleet_gives_the_expected_plan():
    plan, errors = fleet.plan_fleet(copy.deepcopy(FLEET))
    assert errors == []
    for host in EXPECTED_PLAN:
        assert plan[host] == EXPECTED_PLAN[host], host
    assert sorted(plan) == sorted(EXPECTED_PLAN)


def test_plan_does_not_change_its_input():
    inventory = copy.deepcopy(FLEET)
    fleet.plan_fleet(inventory)
    assert inventory == FLEET


def test_summary_has_one_line_per_guest():
    plan, _errors = fleet.plan_fleet(dict(copy.deepcopy(FLEET), hv5={'tuntap_qemu_topology': 'routed'}))
    lines = fleet.summary(plan)
    assert len(lines) == 9
    assert lines[0] == 'hv1 routed: vm1 on tap0, mac %s, 192.168.0.10/24 via 192.168.0.1' % stable_mac('vm1', 0)
    assert lines[7] == 'hv4 bridged_lan: vm8 on tap1, mac 52:54:00:aa:bb:08, 10.0.0.102/24 via no gateway'
    assert lines[8] == 'hv5 routed: no guests'


def set_guest(host, index, **values):
    def change(inventory):
        guests_of(inventory, host)[index].update(values)
    return change


def set_host(host, **values):
    def change(inventory):
        for key, value in values.items():
            if value is None:
                inventory[host].pop(key, None)
            else:
                inventory[host][key] = value
    return change


def add_guest(host, **entry):
    def change(inventory):
        guests_of(inventory, host).append(entry)
    return change


# (id, change, [error fragments, each must be in one error]); the fleet has exactly as
# many errors as fragments.
ERROR_CASES = [
    # the uplink's router (issue 14: checked against the host, persisted for bridged_lan)
    ('uplink gateway outside the uplink subnet', set_host('hv4', tuntap_qemu_uplink_gateway='10.45.0.1'),
     ["hv4: tuntap_qemu_uplink_gateway: '10.45.0.1' is outside the uplink subnet 10.0.0.0/24 "
      '(tuntap_qemu_uplink_address)']),
    ('uplink gateway is the host', set_host('hv4', tuntap_qemu_uplink_gateway='10.0.0.14'),
     ["hv4: tuntap_qemu_uplink_gateway: '10.0.0.14' is the host's own address (tuntap_qemu_uplink_address)"]),
    ('uplink gateway not IPv4', set_host('hv4', tuntap_qemu_uplink_gateway='fd00::1'),
     ["hv4: tuntap_qemu_uplink_gateway: 'fd00::1' is not an IPv4 address"]),
    ('uplink gateway without the address',
     set_host('hv1', tuntap_qemu_uplink_address=None, tuntap_qemu_uplink_gateway='10.0.0.1'),
     ["hv1: tuntap_qemu_uplink_gateway: '10.0.0.1' needs tuntap_qemu_uplink_address"]),
    ('readdress outside bridged_lan', set_host('hv2', tuntap_qemu_uplink_readdress=True),
     ['hv2: tuntap_qemu_uplink_readdress: only bridged_lan moves the host\'s address']),
    ('readdress not a boolean', set_host('hv4', tuntap_qemu_uplink_readdress='yes'),
     ["hv4: tuntap_qemu_uplink_readdress: 'yes' is not a boolean"]),
    # fleet-wide
    ('duplicate MAC across hosts', set_guest('hv2', 1, mac='52:54:00:aa:bb:08'),
     ["hv4: tuntap_qemu_guests[1].mac: '52:54:00:AA:BB:08' is also used by hv2 vm4"]),
    ('duplicate MAC on one host, other spelling', set_guest('hv4', 0, mac='52-54-00-AA-BB-08'),
     ["hv4: tuntap_qemu_guests[1].mac: '52:54:00:AA:BB:08' is also used by hv4 vm7"]),
    ('given MAC equal to a default MAC', set_guest('hv1', 1, mac=stable_mac('vm5', 0)),
     ["hv3: tuntap_qemu_guests[0].mac: '%s' (the default for vm5) is also used by hv1 vm2" % stable_mac('vm5', 0)]),
    ('multicast MAC', set_guest('hv1', 0, mac='01:00:5e:00:00:01'),
     ["hv1: tuntap_qemu_guests[0].mac: '01:00:5e:00:00:01' is a multicast MAC"]),
    ('not a MAC', set_guest('hv1', 0, mac='52:54:00:zz'),
     ["hv1: tuntap_qemu_guests[0].mac: '52:54:00:zz' is not a MAC address"]),
    ('guest name used on two hosts', set_guest('hv3', 1, name='vm1'),
     ["hv3: tuntap_qemu_guests[1].name: 'vm1' is also used by hv1 tuntap_qemu_guests[0]",
      "hv3: tuntap_qemu_guests[1].mac: '%s' (the default for vm1) is also used by hv1 vm1" % stable_mac('vm1', 0)]),
    ('bridged_lan guest on an uplink address', set_guest('hv4', 1, address='10.0.0.11/24'),
     ["hv4: tuntap_qemu_guests[1].address: '10.0.0.11/24' is also used by hv1 (tuntap_qemu_uplink_address); "
      'addresses on the LAN are unique across the fleet']),
    ('two hosts with one uplink address', set_host('hv2', tuntap_qemu_uplink_address='10.0.0.11/24'),
     ["hv2: tuntap_qemu_uplink_address: '10.0.0.11/24' is also used by hv1 (tuntap_qemu_uplink_address)"]),
    ('bridged_lan guests of two hosts on one address', lambda inv: inv.update(hv5={
        'tuntap_qemu_topology': 'bridged_lan', 'tuntap_qemu_uplink_address': '10.0.0.15/24',
        'tuntap_qemu_guests': [{'name': 'vm9', 'address': '10.0.0.101/24'}]}),
     ["hv5: tuntap_qemu_guests[0].address: '10.0.0.101/24' is also used by hv4 vm7"]),
    ('routed subnets overlap across routed hosts', lambda inv: inv.update(hv5={
        'tuntap_qemu_topology': 'routed', 'tuntap_qemu_guests': [{'name': 'vm9', 'address': '192.168.1.130/25'}]}),
     ["hv5: tuntap_qemu_guests[0].address: '192.168.1.130/25' is in 192.168.1.128/25, which overlaps "
      '192.168.1.0/24 of hv1 vm2; routed guest subnets are routed on the LAN']),
    # per host: values
    ('topology missing', set_host('hv1', tuntap_qemu_topology=None),
     ['hv1: tuntap_qemu_topology: missing; set one of routed, routed_nat, bridged_nat, bridged_lan']),
    ('topology unknown', set_host('hv1', tuntap_qemu_topology='bridged'),
     ["hv1: tuntap_qemu_topology: 'bridged' is not one of routed, routed_nat, bridged_nat, bridged_lan"]),
    ('bridged_lan without the LAN address', set_host('hv4', tuntap_qemu_uplink_address=None),
     ['hv4: tuntap_qemu_uplink_address: missing; bridged_lan needs']),
    ('bridged_nat without the bridge address', set_host('hv3', tuntap_qemu_bridge_address=None),
     ['hv3: tuntap_qemu_bridge_address: missing; bridged_nat needs']),
    ('uplink address without prefix', set_host('hv1', tuntap_qemu_uplink_address='10.0.0.11'),
     ["hv1: tuntap_qemu_uplink_address: '10.0.0.11' is not an interface address"]),
    ('bridge subnet overlaps the uplink subnet', set_host('hv3', tuntap_qemu_uplink_address='192.168.100.50/24'),
     ["hv3: tuntap_qemu_bridge_address: '192.168.100.1/24' overlaps the uplink subnet 192.168.100.0/24 "
      '(tuntap_qemu_uplink_address)']),
    ('bridge named like the uplink', set_host('hv3', tuntap_qemu_bridge='ens3'),
     ["hv3: tuntap_qemu_bridge: 'ens3' is also the uplink (tuntap_qemu_uplink)"]),
    ('uplink name too long', set_host('hv1', tuntap_qemu_uplink='enp0s31f6-uplink0'),
     ["hv1: tuntap_qemu_uplink: interface name 'enp0s31f6-uplink0' is 17 bytes long"]),
    # tuntap_qemu_uplink_address: dhcp (issue 11): the lease gives the address and the router
    ('dhcp with a gateway', set_host('hv4', tuntap_qemu_uplink_address='dhcp'),
     ["hv4: tuntap_qemu_uplink_gateway: '10.0.0.1' is given with tuntap_qemu_uplink_address: dhcp; "
      "the lease gives the router"]),
    ('dhcp with readdress', set_host('hv4', tuntap_qemu_uplink_address='dhcp', tuntap_qemu_uplink_gateway=None,
                                     tuntap_qemu_uplink_readdress=True),
     ['hv4: tuntap_qemu_uplink_readdress: true with tuntap_qemu_uplink_address: dhcp']),
    ('DHCP is spelled dhcp', set_host('hv4', tuntap_qemu_uplink_address='DHCP', tuntap_qemu_uplink_gateway=None),
     ["hv4: tuntap_qemu_uplink_address: 'DHCP' is not an interface address"]),
    ('uplink network with host bits', set_host('hv4', tuntap_qemu_uplink_network='10.0.0.14/24'),
     ["hv4: tuntap_qemu_uplink_network: '10.0.0.14/24' has host bits set"]),
    ('uplink network not a network', set_host('hv4', tuntap_qemu_uplink_network=24),
     ['hv4: tuntap_qemu_uplink_network: 24 is not a network in CIDR form']),
    ('uplink network not the static address\'s subnet', set_host('hv4', tuntap_qemu_uplink_network='10.0.0.0/16'),
     ["hv4: tuntap_qemu_uplink_network: '10.0.0.0/16' is not the subnet of tuntap_qemu_uplink_address "
      "10.0.0.14/24 (10.0.0.0/24)"]),
    ('dhcp guests outside the uplink network',
     set_host('hv4', tuntap_qemu_uplink_address='dhcp', tuntap_qemu_uplink_gateway=None,
              tuntap_qemu_uplink_network='10.44.0.0/24'),
     ["hv4: tuntap_qemu_guests[0].address: '10.0.0.101/24' is outside the LAN subnet 10.44.0.0/24 "
      "(tuntap_qemu_uplink_network); bridged_lan guests are on the LAN",
      "hv4: tuntap_qemu_guests[1].address: '10.0.0.102/24' is outside the LAN subnet 10.44.0.0/24 "
      "(tuntap_qemu_uplink_network)"]),
    ('dhcp guest with another prefix than the uplink network',
     set_host('hv4', tuntap_qemu_uplink_address='dhcp', tuntap_qemu_uplink_gateway=None,
              tuntap_qemu_uplink_network='10.0.0.0/16'),
     ["hv4: tuntap_qemu_guests[0].address: '10.0.0.101/24' has prefix /24 but the LAN subnet is 10.0.0.0/16",
      "hv4: tuntap_qemu_guests[1].address: '10.0.0.102/24' has prefix /24 but the LAN subnet is 10.0.0.0/16"]),
    ('dhcp guest gateway outside its own subnet (no uplink network)',
     lambda inv: (set_host('hv4', tuntap_qemu_uplink_address='dhcp', tuntap_qemu_uplink_gateway=None)(inv),
                  set_guest('hv4', 0, gateway='10.9.9.1')(inv)),
     ['hv4: tuntap_qemu_guests[0].gateway: 10.9.9.1 is outside the guest subnet 10.0.0.0/24']),
    ('dhcp guest address missing', lambda inv: (
        set_host('hv4', tuntap_qemu_uplink_address='dhcp', tuntap_qemu_uplink_gateway=None,
                 tuntap_qemu_uplink_network='10.0.0.0/24')(inv),
        set_guest('hv4', 1, address=None)(inv)),
     ['hv4: tuntap_qemu_guests[1].address: missing; a bridged_lan guest needs its LAN address in '
      '10.0.0.0/24 (tuntap_qemu_uplink_network)']),
    ('dhcp on routed with a gateway', set_host('hv1', tuntap_qemu_uplink_address='dhcp', tuntap_qemu_uplink_gateway='10.0.0.1'),
     ["hv1: tuntap_qemu_uplink_gateway: '10.0.0.1' is given with tuntap_qemu_uplink_address: dhcp"]),
    ('pool with host bits', set_host('hv2', tuntap_qemu_pool='192.168.0.1/16'),
     ["hv2: tuntap_qemu_pool: '192.168.0.1/16' has host bits set"]),
    ('routed pool too small for /24', set_host('hv2', tuntap_qemu_pool='192.168.0.0/25'),
     ["hv2: tuntap_qemu_pool: '192.168.0.0/25' cannot hold /24 subnets"]),
    ('routed pool exhausted', set_host('hv2', tuntap_qemu_pool='192.168.0.0/23'),
     ['hv2: tuntap_qemu_guests[0].address: tuntap_qemu_pool 192.168.0.0/23 has no free /24 subnet left',
      'hv2: tuntap_qemu_guests[1].address: tuntap_qemu_pool 192.168.0.0/23 has no free /24 subnet left']),
    ('bridged_nat pool outside the bridge subnet', set_host('hv3', tuntap_qemu_pool='172.16.0.0/12'),
     ["hv3: tuntap_qemu_pool: '172.16.0.0/12' does not overlap the bridge subnet 192.168.100.0/24"]),
    ('bridged_nat address missing without a pool', set_host('hv3', tuntap_qemu_pool=None),
     ['hv3: tuntap_qemu_guests[1].address: missing; give ADDRESS/PREFIX in the bridge subnet 192.168.100.0/24, '
      'or set tuntap_qemu_pool to plan one']),
    ('bridged_nat pool exhausted', set_host('hv3', tuntap_qemu_pool='192.168.100.2/32'),
     ['hv3: tuntap_qemu_guests[1].address: no free address left where tuntap_qemu_pool 192.168.100.2/32 '
      'meets the bridge subnet 192.168.100.0/24']),
    ('guests not a list', set_host('hv1', tuntap_qemu_guests={'name': 'vm1'}),
     ["hv1: tuntap_qemu_guests: {'name': 'vm1'} is not a list of guests"]),
    ('guest not a mapping', set_host('hv1', tuntap_qemu_guests=['vm1']),
     ["hv1: tuntap_qemu_guests[0]: 'vm1' is not a mapping with at least a name"]),
    ('guest owner empty', set_host('hv4', tuntap_qemu_guest_user=''),
     ["hv4: tuntap_qemu_guest_user: '' is not a user or group name or numeric id"]),
    # per guest
    ('guest name missing', set_guest('hv1', 0, name=None),
     ['hv1: tuntap_qemu_guests[0].name: missing; every guest needs a name']),
    ('guest name invalid', set_guest('hv1', 0, name='vm 1'),
     ["hv1: tuntap_qemu_guests[0].name: 'vm 1' must be 1-63 characters"]),
    ('unknown guest key', set_guest('hv1', 0, adress='192.168.0.10/24'),
     ["hv1: tuntap_qemu_guests[0]: unknown key 'adress'; a guest takes name, tap, user"]),
    ('tap name too long', set_guest('hv1', 0, tap='tap-guest-vm1-eth0'),
     ["hv1: tuntap_qemu_guests[0].tap: interface name 'tap-guest-vm1-eth0' is 18 bytes long; Linux allows at most 15"]),
    ('tap name with a slash', set_guest('hv1', 0, tap='tap/0'),
     ["hv1: tuntap_qemu_guests[0].tap: interface name 'tap/0' contains '/'"]),
    ('tap used twice on a host', set_guest('hv1', 1, tap='tap0'),
     ["hv1: tuntap_qemu_guests[1].tap: 'tap0' is also the tap of vm1 on this host"]),
    ('default tap taken by a given one', set_guest('hv1', 0, tap='tap1'),
     ["hv1: tuntap_qemu_guests[1].tap: 'tap1' (the default for list position 1) is also the tap of vm1"]),
    ('tap named like the uplink', set_guest('hv3', 0, tap='ens3'),
     ["hv3: tuntap_qemu_guests[0].tap: 'ens3' is the uplink (tuntap_qemu_uplink)"]),
    ('tap named like the bridge', set_guest('hv3', 0, tap='virbr0'),
     ["hv3: tuntap_qemu_guests[0].tap: 'virbr0' is the bridge (tuntap_qemu_bridge)"]),
    ('the same tap name on two hosts is fine', set_guest('hv2', 1, tap='tap1'), []),
    ('routed address missing without a pool', set_guest('hv1', 0, address=None),
     ['hv1: tuntap_qemu_guests[0].address: missing; give ADDRESS/PREFIX such as 192.168.0.10/24, '
      'or set tuntap_qemu_pool to plan one']),
    ('bridged_lan address missing (pools do not plan LAN addresses)',
     lambda inv: (set_guest('hv4', 1, address=None)(inv), set_host('hv4', tuntap_qemu_pool='10.0.0.0/24')(inv)),
     ['hv4: tuntap_qemu_guests[1].address: missing; a bridged_lan guest needs its LAN address in '
      '10.0.0.0/24 (tuntap_qemu_uplink_address)']),
    ('address without prefix', set_guest('hv1', 0, address='192.168.0.10'),
     ["hv1: tuntap_qemu_guests[0].address: '192.168.0.10' is not an interface address"]),
    ('address is a network address', set_guest('hv1', 0, address='192.168.0.0/24'),
     ["hv1: tuntap_qemu_guests[0].address: '192.168.0.0/24' is the network address of its subnet"]),
    ('address is a broadcast address', set_guest('hv1', 0, address='192.168.0.255/24'),
     ["hv1: tuntap_qemu_guests[0].address: '192.168.0.255/24' is the broadcast address of its subnet"]),
    ('routed guests of one host overlap', set_guest('hv1', 1, address='192.168.0.20/24', gateway=None),
     ["hv1: tuntap_qemu_guests[1].address: '192.168.0.20/24' is in 192.168.0.0/24, which overlaps "
      '192.168.0.0/24 of vm1 on this host']),
    ('routed_nat guests of one host overlap',
     lambda inv: (set_guest('hv2', 0, address='172.16.0.10/24')(inv), set_guest('hv2', 1, address='172.16.0.130/16')(inv)),
     ["hv2: tuntap_qemu_guests[1].address: '172.16.0.130/16' is in 172.16.0.0/16, which overlaps "
      '172.16.0.0/24 of vm3 on this host']),
    ('an explicit subnet can use up the pool', set_guest('hv2', 1, address='192.168.50.20/16'),
     ['hv2: tuntap_qemu_guests[0].address: tuntap_qemu_pool 192.168.0.0/16 has no free /24 subnet left']),
    ('routed subnet overlaps the uplink subnet', set_guest('hv1', 0, address='10.0.0.50/24'),
     ["hv1: tuntap_qemu_guests[0].address: '10.0.0.50/24' is in 10.0.0.0/24, which overlaps the uplink "
      'subnet 10.0.0.0/24 (tuntap_qemu_uplink_address)']),
    ('routed guest on the default host side', set_guest('hv1', 0, address='192.168.0.1/24'),
     ["hv1: tuntap_qemu_guests[0].address: '192.168.0.1/24' is the first host address of its subnet"]),
    ('routed /32 leaves no room', set_guest('hv1', 0, address='192.168.0.10/32'),
     ["hv1: tuntap_qemu_guests[0].address: '192.168.0.10/32' leaves no room for the host side"]),
    ('routed gateway outside the subnet', set_guest('hv1', 1, gateway='192.168.0.1'),
     ['hv1: tuntap_qemu_guests[1].gateway: 192.168.0.1 is outside the guest subnet 192.168.1.0/24']),
    ('routed gateway is the guest', set_guest('hv1', 1, gateway='192.168.1.10'),
     ['hv1: tuntap_qemu_guests[1].gateway: 192.168.1.10 is the guest address itself']),
    ('routed gateway is the broadcast address', set_guest('hv1', 1, gateway='192.168.1.255'),
     ["hv1: tuntap_qemu_guests[1].gateway: '192.168.1.255' is not a host address of the guest subnet"]),
    ('gateway not an address', set_guest('hv1', 1, gateway='router'),
     ["hv1: tuntap_qemu_guests[1].gateway: 'router' is not an IP address"]),
    ('bridged_nat guest outside the bridge subnet', set_guest('hv3', 0, address='192.168.1.2/24'),
     ["hv3: tuntap_qemu_guests[0].address: '192.168.1.2/24' is outside the bridge subnet 192.168.100.0/24 "
      '(tuntap_qemu_bridge_address)']),
    ('bridged_nat guest with another prefix', set_guest('hv3', 0, address='192.168.100.2/16'),
     ["hv3: tuntap_qemu_guests[0].address: '192.168.100.2/16' has prefix /16 but the bridge subnet is "
      '192.168.100.0/24']),
    ('bridged_nat guest on the bridge address', set_guest('hv3', 0, address='192.168.100.1/24'),
     ["hv3: tuntap_qemu_guests[0].address: '192.168.100.1/24' is the bridge address, the host side"]),
    ('bridged_nat gateway not the bridge', set_guest('hv3', 0, gateway='192.168.100.254'),
     ["hv3: tuntap_qemu_guests[0].gateway: '192.168.100.254' is not the host side; bridged_nat guests "
      'route through the bridge address 192.168.100.1 (tuntap_qemu_bridge_address)']),
    ('bridged_nat address used twice on a host', set_guest('hv3', 1, address='192.168.100.2/24'),
     ["hv3: tuntap_qemu_guests[1].address: '192.168.100.2/24' is also used by vm5 on this host"]),
    ('bridged_lan guest outside the LAN', set_guest('hv4', 0, address='10.0.1.101/24', gateway=None),
     ["hv4: tuntap_qemu_guests[0].address: '10.0.1.101/24' is outside the LAN subnet 10.0.0.0/24 "
      '(tuntap_qemu_uplink_address); bridged_lan guests are on the LAN']),
    ('bridged_lan guest with another prefix', set_guest('hv4', 1, address='10.0.0.102/16'),
     ["hv4: tuntap_qemu_guests[1].address: '10.0.0.102/16' has prefix /16 but the LAN subnet is 10.0.0.0/24"]),
    ('bridged_lan gateway is the host', set_guest('hv4', 0, gateway='10.0.0.14'),
     ["hv4: tuntap_qemu_guests[0].gateway: '10.0.0.14' is this host, which does not route in bridged_lan"]),
    ('bridged_lan gateway outside the LAN', set_guest('hv4', 0, gateway='10.0.1.1'),
     ['hv4: tuntap_qemu_guests[0].gateway: 10.0.1.1 is outside the guest subnet 10.0.0.0/24']),
    ('qemu options of the wrong type', set_guest('hv1', 0, memory='lots', cpus=0, kernel=['a'],
                                                 accel='xen', extra_args='-no-reboot', autostart='yes'),
     ["hv1: tuntap_qemu_guests[0].memory: 'lots' is not a positive whole number",
      'hv1: tuntap_qemu_guests[0].cpus: 0 is not a positive whole number',
      "hv1: tuntap_qemu_guests[0].kernel: ['a'] is not a string",
      "hv1: tuntap_qemu_guests[0].accel: 'xen' is not one of kvm, tcg, auto",
      "hv1: tuntap_qemu_guests[0].autostart: 'yes' is not true or false",
      "hv1: tuntap_qemu_guests[0].extra_args: '-no-reboot' is not a list of strings"]),
]


@pytest.mark.parametrize('change, fragments', [case[1:] for case in ERROR_CASES],
                         ids=[case[0] for case in ERROR_CASES])
def test_errors(change, fragments):
    plan, errors = fleet.plan_fleet(fleet_with(change))
    for fragment in fragments:
        assert any(fragment in error for error in errors), (fragment, errors)
    assert len(errors) == len(fragments), errors
    if fragments:
        assert plan is None
    else:
        assert plan is not None


def test_every_problem_of_the_fleet_in_one_pass():
    def change(inventory):
        set_guest('hv1', 0, mac='01:00:00:00:00:01')(inventory)
        set_guest('hv2', 1, tap='x' * 16)(inventory)
        set_host('hv3', tuntap_qemu_topology='flat')(inventory)
        set_guest('hv4', 1, address='192.168.0.10/24')(inventory)
    _plan, errors = fleet.plan_fleet(fleet_with(change))
    assert [error.split(':')[0] for error in errors] == ['hv1', 'hv2', 'hv3', 'hv4']
    assert 'multicast' in errors[0] and '16 bytes' in errors[1]
    assert "'flat' is not one of" in errors[2] and 'outside the LAN subnet' in errors[3]


# Legitimate reuse: what the rules allow on purpose.
REUSE_CASES = [
    ('bridged_nat hosts share a subnet and an address', {
        'a': {'tuntap_qemu_topology': 'bridged_nat', 'tuntap_qemu_bridge_address': '192.168.0.1/24',
              'tuntap_qemu_guests': [{'name': 'a1', 'address': '192.168.0.10/24'}]},
        'b': {'tuntap_qemu_topology': 'bridged_nat', 'tuntap_qemu_bridge_address': '192.168.0.1/24',
              'tuntap_qemu_guests': [{'name': 'b1', 'address': '192.168.0.10/24'}]},
    }),
    ('routed_nat hosts share a subnet', {
        'a': {'tuntap_qemu_topology': 'routed_nat', 'tuntap_qemu_guests': [{'name': 'a1', 'address': '192.168.0.10/24'}]},
        'b': {'tuntap_qemu_topology': 'routed_nat', 'tuntap_qemu_guests': [{'name': 'b1', 'address': '192.168.0.10/24'}]},
    }),
    ('a routed subnet repeats behind NAT elsewhere', {
        'a': {'tuntap_qemu_topology': 'routed', 'tuntap_qemu_guests': [{'name': 'a1', 'address': '192.168.0.10/24'}]},
        'b': {'tuntap_qemu_topology': 'routed_nat', 'tuntap_qemu_guests': [{'name': 'b1', 'address': '192.168.0.10/24'}]},
    }),
    ('no guests at all', {'a': {'tuntap_qemu_topology': 'routed'}, 'b': {'tuntap_qemu_topology': 'bridged_lan',
                                                                         'tuntap_qemu_uplink_address': '10.0.0.2/24'}}),
]


@pytest.mark.parametrize('inventory', [case[1] for case in REUSE_CASES], ids=[case[0] for case in REUSE_CASES])
def test_allowed_reuse(inventory):
    plan, errors = fleet.plan_fleet(inventory)
    assert errors == []
    assert sorted(plan) == ['a', 'b']


def routed(*guests, **host_vars):
    spec = {'tuntap_qemu_topology': 'routed', 'tuntap_qemu_pool': '10.64.0.0/16',
            'tuntap_qemu_guests': list(guests)}
    spec.update(host_vars)
    return spec


# (id, inventory, {host: [guest addresses in order]})
POOL_CASES = [
    ('guests in sorted host order (string order, hv10 before hv2), then list order',
     {'hv2': routed({'name': 'a'}, {'name': 'b'}), 'hv10': routed({'name': 'c'})},
     {'hv10': ['10.64.0.2/24'], 'hv2': ['10.64.1.2/24', '10.64.2.2/24']}),
    ('explicit subnets anywhere in the fleet are skipped',
     {'hv1': routed({'name': 'a'}, {'name': 'b'}),
      'hv2': routed({'name': 'c', 'address': '10.64.0.7/23'}, tuntap_qemu_topology='routed_nat')},
     {'hv1': ['10.64.2.2/24', '10.64.3.2/24'], 'hv2': ['10.64.0.7/23']}),
    ('uplink and bridge subnets are skipped',
     {'hv1': routed({'name': 'a'}, tuntap_qemu_uplink_address='10.64.0.5/24'),
      'hv2': {'tuntap_qemu_topology': 'bridged_nat', 'tuntap_qemu_bridge_address': '10.64.1.1/24',
              'tuntap_qemu_guests': [{'name': 'b', 'address': '10.64.1.5/24'}]}},
     {'hv1': ['10.64.2.2/24'], 'hv2': ['10.64.1.5/24']}),
    ('a given gateway .2 puts the guest on .1',
     {'hv1': routed({'name': 'a', 'gateway': '10.64.0.2'})},
     {'hv1': ['10.64.0.1/24']}),
    ('bridged_nat takes the next free addresses, skipping given ones and the bridge',
     {'hv1': {'tuntap_qemu_topology': 'bridged_nat', 'tuntap_qemu_bridge_address': '192.168.0.2/24',
              'tuntap_qemu_pool': '192.168.0.0/16',
              'tuntap_qemu_guests': [{'name': 'a'}, {'name': 'b', 'address': '192.168.0.3/24'}, {'name': 'c'}]}},
     {'hv1': ['192.168.0.1/24', '192.168.0.3/24', '192.168.0.4/24']}),
    ('bridged_nat pool inside the bridge subnet narrows the range',
     {'hv1': {'tuntap_qemu_topology': 'bridged_nat', 'tuntap_qemu_bridge_address': '192.168.0.1/24',
              'tuntap_qemu_pool': '192.168.0.100/30',
              'tuntap_qemu_guests': [{'name': 'a'}, {'name': 'b'}]}},
     {'hv1': ['192.168.0.100/24', '192.168.0.101/24']}),
]


@pytest.mark.parametrize('inventory, addresses', [case[1:] for case in POOL_CASES], ids=[case[0] for case in POOL_CASES])
def test_pool_planning(inventory, addresses):
    plan, errors = fleet.plan_fleet(copy.deepcopy(inventory))
    assert errors == []
    assert dict((host, [g['address'] for g in spec['guests']]) for host, spec in plan.items()) == addresses
    # Deterministic: the same inventory in another order gives the same plan.
    again, _errors = fleet.plan_fleet(dict(reversed(list(copy.deepcopy(inventory).items()))))
    assert again == plan


def test_planned_routed_guest_gets_gateway_and_nat():
    plan, errors = fleet.plan_fleet({'hv1': routed({'name': 'a'}, tuntap_qemu_topology='routed_nat',
                                                   tuntap_qemu_uplink='wan0')})
    assert errors == []
    spec = plan['hv1']
    assert spec['taps'][0]['addresses'] == ['10.64.0.1/24']
    assert spec['guests'][0]['gateway'] == '10.64.0.1'
    assert spec['guests'][0]['derived'] == ['address', 'gateway', 'mac', 'tap']
    assert spec['nat'] == [{'source': ['10.64.0.0/24'], 'out_interface': 'wan0'}]


@pytest.mark.parametrize('address, gateway, host_side', [
    ('192.168.5.1/31', None, '192.168.5.0/31'),
    ('192.168.5.0/31', None, '192.168.5.1/31'),
    ('192.168.5.10/24', None, '192.168.5.1/24'),
    ('192.168.5.10/24', '192.168.5.200', '192.168.5.200/24'),
    ('fd00:5::10/64', None, 'fd00:5::1/64'),
])
def test_routed_host_side(address, gateway, host_side):
    entry = {'name': 'a', 'address': address}
    if gateway:
        entry['gateway'] = gateway
    plan, errors = fleet.plan_fleet({'hv1': {'tuntap_qemu_topology': 'routed', 'tuntap_qemu_guests': [entry]}})
    assert errors == []
    assert plan['hv1']['taps'][0]['addresses'] == [host_side]
    assert plan['hv1']['guests'][0]['gateway'] == host_side.split('/')[0]


def test_ipv6_guest_has_no_kernel_ip():
    plan, errors = fleet.plan_fleet({'hv1': {'tuntap_qemu_topology': 'routed',
                                             'tuntap_qemu_guests': [{'name': 'a', 'address': 'fd00:5::10/64'}]}})
    assert errors == []
    assert plan['hv1']['guests'][0]['kernel_ip'] is None
    assert 'iface eth0 inet6 static' in plan['hv1']['guests'][0]['interfaces_stanza']


def test_qemu_options_pass_through_only_when_given():
    plan, errors = fleet.plan_fleet({'hv1': {'tuntap_qemu_topology': 'routed', 'tuntap_qemu_guests': [
        {'name': 'a', 'address': '192.168.0.10/24', 'memory': '512', 'cpus': 2, 'accel': 'tcg',
         'disk': '/srv/a.qcow2', 'disk_format': 'qcow2', 'extra_args': ['-no-reboot'],
         'append': 'console=ttyS0', 'initrd': '/srv/initrd', 'kernel': '/srv/vmlinuz', 'machine': 'pc',
         'autostart': False, 'dhcp': False},
        {'name': 'b', 'address': '192.168.1.10/24'},
    ]}})
    assert errors == []
    first, second = plan['hv1']['guests']
    assert dict((key, first[key]) for key in schema.QEMU_OPTIONS) == {
        'memory': 512, 'cpus': 2, 'accel': 'tcg', 'disk': '/srv/a.qcow2', 'disk_format': 'qcow2',
        'extra_args': ['-no-reboot'], 'initrd': '/srv/initrd', 'kernel': '/srv/vmlinuz', 'machine': 'pc',
        'autostart': False,
        # what qemu_guest gets: the plan appends the kernel ip= argument (see below)
        'append': 'console=ttyS0 ip=192.168.0.10::192.168.0.1:255.255.255.0:a:eth0:off'}
    assert not set(schema.QEMU_OPTIONS) & set(second)


@pytest.mark.parametrize('entry, append', [
    ({'kernel': '/k'}, 'ip=192.168.0.10::192.168.0.1:255.255.255.0:a:eth0:off'),
    ({'kernel': '/k', 'append': 'quiet'}, 'quiet ip=192.168.0.10::192.168.0.1:255.255.255.0:a:eth0:off'),
    ({'kernel': '/k', 'append': 'ip=dhcp quiet'}, 'ip=dhcp quiet'),
    ({'append': 'quiet'}, 'quiet'),                    # no kernel: append is QEMU's only with one
    ({}, None),
    ({'kernel': '/k', 'address': 'fd00:0:0:1::10/64'}, None),   # no kernel ip= for IPv6
])
def test_the_plan_gives_qemu_guest_its_final_append(entry, append):
    # A static guest (dhcp: false, or a host without DHCP) gets the kernel ip= argument.
    guest = dict({'name': 'a', 'address': '192.168.0.10/24', 'dhcp': False}, **entry)
    plan, errors = fleet.plan_fleet({'hv1': {'tuntap_qemu_topology': 'routed', 'tuntap_qemu_guests': [guest]}})
    assert errors == []
    assert plan['hv1']['guests'][0].get('append') == append
    guest.pop('dhcp')
    plan, errors = fleet.plan_fleet({'hv1': {'tuntap_qemu_topology': 'routed', 'tuntap_qemu_dhcp': False,
                                             'tuntap_qemu_guests': [guest]}})
    assert errors == []
    assert plan['hv1']['guests'][0].get('append') == append


@pytest.mark.parametrize('entry, append', [
    ({'kernel': '/k'}, None),
    ({'kernel': '/k', 'append': 'quiet'}, 'quiet'),
])
def test_a_dhcp_guest_gets_no_kernel_ip(entry, append):
    """It asks DHCP, as a stock image does, and gets the same address as its static lease."""
    guest = dict({'name': 'a', 'address': '192.168.0.10/24'}, **entry)
    plan, errors = fleet.plan_fleet({'hv1': {'tuntap_qemu_topology': 'routed', 'tuntap_qemu_guests': [guest]}})
    assert errors == []
    entry = plan['hv1']['guests'][0]
    assert entry.get('append') == append
    assert entry['dhcp'] is True
    assert entry['kernel_ip'] == 'ip=192.168.0.10::192.168.0.1:255.255.255.0:a:eth0:off'
    assert plan['hv1']['dhcp']['networks'][0]['hosts'] == [
        {'mac': entry['mac'], 'address': '192.168.0.10', 'name': 'a', 'address6': None}]


def test_empty_fleet():
    assert fleet.plan_fleet({}) == ({}, [])


def test_readdress_plans_no_uplink_check_and_a_readdressing_bridge():
    plan, errors = fleet.plan_fleet(fleet_with(set_host('hv4', tuntap_qemu_uplink_readdress=True)))
    assert errors == []
    assert plan['hv4']['uplink_check'] is None
    assert plan['hv4']['bridge']['readdress'] is True
    assert plan['hv4']['bridge']['addresses'] == ['10.0.0.14/24']
    assert plan['hv4']['bridge']['gateway'] == '10.0.0.1'


def test_no_uplink_address_no_check():
    plan, errors = fleet.plan_fleet(fleet_with(set_host('hv1', tuntap_qemu_uplink_address=None)))
    assert errors == []
    assert plan['hv1']['uplink_check'] is None and plan['hv1']['uplink_gateway'] is None


def test_empty_uplink_network_is_none():
    """The role's default "" for tuntap_qemu_uplink_network means none, as for the gateway."""
    plan, errors = fleet.plan_fleet(fleet_with(set_host('hv4', tuntap_qemu_uplink_network='')))
    assert errors == []
    assert plan['hv4']['uplink_network'] is None


def test_empty_gateway_is_none():
    plan, errors = fleet.plan_fleet(fleet_with(set_host('hv4', tuntap_qemu_uplink_gateway='')))
    assert errors == []
    assert plan['hv4']['bridge']['gateway'] is None
    assert plan['hv4']['uplink_check']['gateway'] is None


DHCP_LAN = ("hv4: the inventory (tuntap_qemu_uplink_address dhcp) expects a DHCP lease on eth0 (or br0 after "
            "the takeover) and a DHCP client running there; nothing was changed. Correct the inventory, or "
            "start the DHCP client")


@pytest.mark.parametrize('network, guests_gateway', [
    pytest.param('10.0.0.0/24', '10.0.0.1', id='LAN subnet known: guests checked against it'),
    pytest.param(None, '10.0.0.1', id='LAN subnet unknown: guests not checked'),
])
def test_dhcp_uplink_plans_a_dhcp_bridge_and_a_lease_check(network, guests_gateway):
    plan, errors = fleet.plan_fleet(fleet_with(set_host(
        'hv4', tuntap_qemu_uplink_address='dhcp', tuntap_qemu_uplink_gateway=None,
        tuntap_qemu_uplink_network=network)))
    assert errors == []
    hv4 = plan['hv4']
    assert hv4['uplink_address'] == 'dhcp' and hv4['uplink_gateway'] is None
    assert hv4['uplink_network'] == network
    assert hv4['bridge'] == {'name': 'br0', 'addresses': [], 'ports': ['tap0', 'tap1', 'eth0'], 'uplink': 'eth0',
                             'gateway': None, 'readdress': False, 'dhcp': True, 'isolated_ports': []}
    assert hv4['uplink_check'] == {'name': 'eth0', 'bridge': 'br0', 'addresses': [], 'gateway': None,
                                   'exact': False, 'dhcp': True, 'hint': DHCP_LAN}
    # A guest's own gateway stays; none is derived from the lease.
    assert [(guest['address'], guest['gateway']) for guest in hv4['guests']] == [
        ('10.0.0.101/24', guests_gateway), ('10.0.0.102/24', None)]


def test_dhcp_guests_without_uplink_network_may_be_anywhere():
    plan, errors = fleet.plan_fleet(fleet_with(lambda inv: (
        set_host('hv4', tuntap_qemu_uplink_address='dhcp', tuntap_qemu_uplink_gateway=None)(inv),
        set_guest('hv4', 0, address='172.16.5.9/16', gateway='172.16.0.1')(inv))))
    assert errors == []
    assert plan['hv4']['guests'][0]['gateway'] == '172.16.0.1'


def test_dhcp_on_a_topology_that_keeps_the_uplink_is_only_no_check():
    plan, errors = fleet.plan_fleet(fleet_with(set_host('hv1', tuntap_qemu_uplink_address='dhcp')))
    assert errors == []
    assert plan['hv1']['uplink_address'] == 'dhcp' and plan['hv1']['uplink_check'] is None


def test_uplink_network_matching_the_static_address_is_accepted():
    plan, errors = fleet.plan_fleet(fleet_with(set_host('hv4', tuntap_qemu_uplink_network='10.0.0.0/24')))
    assert errors == []
    assert plan['hv4']['uplink_network'] == '10.0.0.0/24'
    assert plan['hv4']['bridge']['dhcp'] is False and plan['hv4']['uplink_check']['dhcp'] is False
