# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet plan's IPv6 (issue 13): dual-stack plans of the lab's fleet, SLAAC and static
addresses, pools of /64s, NAT66, and every bad input refused with its exact error."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import planner as fleet
from ansible_collections.tuntap.qemu.plugins.module_utils._guest import guest_config
from ansible_collections.tuntap.qemu.plugins.module_utils._guest.guest_config import stable_mac

# The lab's values (the contract): hv1 routed and hv2 routed_nat with a pool6 each, hv3
# bridged_nat with its bridge address6 and NAT66, hv4 bridged_lan (SLAAC from the LAN).
# One guest per hv1..hv3 takes its IPv6 address by SLAAC, the other has a static one.
IPV6_VARIABLES = ('tuntap_qemu_pool6', 'tuntap_qemu_bridge_address6', 'tuntap_qemu_nat6')
LAB = {
    'hv1': {
        'tuntap_qemu_topology': 'routed',
        'tuntap_qemu_uplink_address': '10.0.0.11/24',
        'tuntap_qemu_pool': '192.168.0.0/16',
        'tuntap_qemu_pool6': 'fd00:1::/56',
        'tuntap_qemu_guests': [{'name': 'vm1'}, {'name': 'vm2', 'address6': 'fd00:1:0:10::10/64'}],
    },
    'hv2': {
        'tuntap_qemu_topology': 'routed_nat',
        'tuntap_qemu_uplink_address': '10.0.0.12/24',
        'tuntap_qemu_pool': '192.168.0.0/16',
        'tuntap_qemu_pool6': 'fd00:2::/56',
        'tuntap_qemu_guests': [{'name': 'vm3'}, {'name': 'vm4', 'dhcp': False}],
    },
    'hv3': {
        'tuntap_qemu_topology': 'bridged_nat',
        'tuntap_qemu_uplink_address': '10.0.0.13/24',
        'tuntap_qemu_bridge_address': '192.168.100.1/24',
        'tuntap_qemu_pool': '192.168.100.0/24',
        'tuntap_qemu_bridge_address6': 'fd00:3::1/64',
        'tuntap_qemu_nat6': True,
        'tuntap_qemu_guests': [{'name': 'vm5'}, {'name': 'vm6', 'address6': 'fd00:3::6/64'}],
    },
    'hv4': {
        'tuntap_qemu_topology': 'bridged_lan',
        'tuntap_qemu_uplink_address': '10.0.0.14/24',
        'tuntap_qemu_guests': [{'name': 'vm7', 'address': '10.0.0.101/24'}],
    },
}

# The EUI-64 SLAAC addresses of the guests' stable MACs, worked out by hand: the MAC's
# universal/local bit flipped (52 -> 50) and ff:fe in the middle.
assert stable_mac('vm1', 0) == '52:54:00:ea:97:99'
assert stable_mac('vm3', 0) == '52:54:00:35:80:2d'
assert stable_mac('vm5', 0) == '52:54:00:15:39:a4'
VM1_SLAAC = 'fd00:1::5054:ff:feea:9799'
VM3_SLAAC = 'fd00:2::5054:ff:fe35:802d'
VM5_SLAAC = 'fd00:3::5054:ff:fe15:39a4'


def slaac_stanza(address, gateway):
    return ('auto eth0\niface eth0 inet static\n    address %s\n    gateway %s\niface eth0 inet6 auto\n'
            % (address, gateway))


def static_stanza(address, gateway, address6, gateway6):
    return ('auto eth0\niface eth0 inet static\n    address %s\n    gateway %s\n'
            'iface eth0 inet6 static\n    address %s\n    gateway %s\n' % (address, gateway, address6, gateway6))


IPV6_OF_GUESTS = {
    # name: (address6, gateway6, slaac, 'address6' in derived, interfaces_stanza)
    'vm1': (VM1_SLAAC + '/64', 'fd00:1::1', True, True, slaac_stanza('192.168.0.2/24', '192.168.0.1')),
    'vm2': ('fd00:1:0:10::10/64', 'fd00:1:0:10::1', False, False,
            static_stanza('192.168.1.2/24', '192.168.1.1', 'fd00:1:0:10::10/64', 'fd00:1:0:10::1')),
    'vm3': (VM3_SLAAC + '/64', 'fd00:2::1', True, True, slaac_stanza('192.168.2.2/24', '192.168.2.1')),
    # dhcp: false - not served, so a static ::2 in its /64 (the tap is still advertised).
    'vm4': ('fd00:2:0:1::2/64', 'fd00:2:0:1::1', False, True,
            static_stanza('192.168.3.2/24', '192.168.3.1', 'fd00:2:0:1::2/64', 'fd00:2:0:1::1')),
    'vm5': (VM5_SLAAC + '/64', 'fd00:3::1', True, True, slaac_stanza('192.168.100.2/24', '192.168.100.1')),
    'vm6': ('fd00:3::6/64', 'fd00:3::1', False, False,
            static_stanza('192.168.100.3/24', '192.168.100.1', 'fd00:3::6/64', 'fd00:3::1')),
}


def lab_plan():
    plan, errors = fleet.plan_fleet(copy.deepcopy(LAB))
    assert errors == []
    return plan


def ipv4_only(inventory):
    inventory = copy.deepcopy(inventory)
    for variables in inventory.values():
        for name in IPV6_VARIABLES:
            variables.pop(name, None)
        for guest in variables['tuntap_qemu_guests']:
            guest.pop('address6', None)
    return inventory


def test_the_lab_fleet_plans_its_ipv6_networks():
    plan = lab_plan()
    assert [tap['addresses'] for tap in plan['hv1']['taps']] == [
        ['192.168.0.1/24', 'fd00:1::1/64'], ['192.168.1.1/24', 'fd00:1:0:10::1/64']]
    # vm4 gets the pool's second /64: fd00:2::/64 is vm3's.
    assert [tap['addresses'] for tap in plan['hv2']['taps']] == [
        ['192.168.2.1/24', 'fd00:2::1/64'], ['192.168.3.1/24', 'fd00:2:0:1::1/64']]
    assert [tap['addresses'] for tap in plan['hv3']['taps']] == [[], []]
    assert plan['hv3']['bridge']['addresses'] == ['192.168.100.1/24', 'fd00:3::1/64']
    assert plan['hv4']['bridge']['addresses'] == ['10.0.0.14/24']
    assert [plan[host]['forwarding_families'] for host in ('hv1', 'hv2', 'hv3', 'hv4')] == [
        ['ipv4', 'ipv6'], ['ipv4', 'ipv6'], ['ipv4', 'ipv6'], ['ipv4']]


def test_the_lab_fleet_masquerades_ipv6_only_with_nat6():
    plan = lab_plan()
    assert plan['hv1']['nat'] == []
    # routed_nat without nat6: its /64s are routed, only IPv4 is masqueraded.
    assert plan['hv2']['nat'] == [{'source': ['192.168.2.0/24'], 'out_interface': 'eth0'},
                                  {'source': ['192.168.3.0/24'], 'out_interface': 'eth0'}]
    assert plan['hv3']['nat'] == [{'source': ['192.168.100.0/24'], 'out_interface': 'eth0'},
                                  {'source': ['fd00:3::/64'], 'out_interface': 'eth0'}]


def test_the_summary_shows_the_ipv6_addresses():
    lines = fleet.summary(lab_plan())
    assert lines[:2] == [
        'hv1 routed: vm1 on tap0, mac 52:54:00:ea:97:99, 192.168.0.2/24 via 192.168.0.1, '
        'fd00:1::5054:ff:feea:9799/64 (SLAAC) via fd00:1::1',
        'hv1 routed: vm2 on tap1, mac %s, 192.168.1.2/24 via 192.168.1.1, fd00:1:0:10::10/64 via fd00:1:0:10::1'
        % stable_mac('vm2', 0)]
    assert lines[-1] == 'hv4 bridged_lan: vm7 on tap0, mac %s, 10.0.0.101/24 via no gateway' % stable_mac('vm7', 0)


def test_routed_nat_with_nat6_masquerades_each_64():
    inventory = copy.deepcopy(LAB)
    inventory['hv2']['tuntap_qemu_nat6'] = True
    plan, errors = fleet.plan_fleet(inventory)
    assert errors == []
    assert plan['hv2']['nat'] == [{'source': ['192.168.2.0/24'], 'out_interface': 'eth0'},
                                  {'source': ['192.168.3.0/24'], 'out_interface': 'eth0'},
                                  {'source': ['fd00:2::/64'], 'out_interface': 'eth0'},
                                  {'source': ['fd00:2:0:1::/64'], 'out_interface': 'eth0'}]


def test_the_lab_fleet_advertises_its_ipv6_networks_and_names_the_guests():
    plan = lab_plan()
    assert plan['hv1']['dhcp']['networks'] == [
        {'interface': 'tap0', 'address': '192.168.0.1/24', 'address6': 'fd00:1::1/64', 'range': None,
         'hosts': [{'mac': stable_mac('vm1', 0), 'address': '192.168.0.2', 'name': 'vm1', 'address6': VM1_SLAAC}]},
        {'interface': 'tap1', 'address': '192.168.1.1/24', 'address6': 'fd00:1:0:10::1/64', 'range': None,
         'hosts': [{'mac': stable_mac('vm2', 0), 'address': '192.168.1.2', 'name': 'vm2',
                    'address6': 'fd00:1:0:10::10'}]}]
    # vm4 is static (dhcp: false): no lease and no name, but its tap is advertised.
    assert plan['hv2']['dhcp']['networks'] == [
        {'interface': 'tap0', 'address': '192.168.2.1/24', 'address6': 'fd00:2::1/64', 'range': None,
         'hosts': [{'mac': stable_mac('vm3', 0), 'address': '192.168.2.2', 'name': 'vm3', 'address6': VM3_SLAAC}]},
        {'interface': 'tap1', 'address': '192.168.3.1/24', 'address6': 'fd00:2:0:1::1/64', 'range': None,
         'hosts': []}]
    assert plan['hv3']['dhcp']['networks'] == [
        {'interface': 'br0', 'address': '192.168.100.1/24', 'address6': 'fd00:3::1/64', 'range': None,
         'hosts': [{'mac': stable_mac('vm5', 0), 'address': '192.168.100.2', 'name': 'vm5', 'address6': VM5_SLAAC},
                   {'mac': stable_mac('vm6', 0), 'address': '192.168.100.3', 'name': 'vm6', 'address6': 'fd00:3::6'}]}]
    assert plan['hv4']['dhcp'] is None


@pytest.mark.parametrize('host, index, name', [
    ('hv1', 0, 'vm1'), ('hv1', 1, 'vm2'), ('hv2', 0, 'vm3'), ('hv2', 1, 'vm4'), ('hv3', 0, 'vm5'), ('hv3', 1, 'vm6'),
])
def test_the_lab_guests_ipv6(host, index, name):
    entry = lab_plan()[host]['guests'][index]
    address6, gateway6, slaac, derived, stanza = IPV6_OF_GUESTS[name]
    assert entry['name'] == name
    assert (entry['address6'], entry['ip6'], entry['gateway6'], entry['slaac']) == (
        address6, address6.split('/')[0], gateway6, slaac)
    assert ('address6' in entry['derived']) is derived
    assert entry['interfaces_stanza'] == stanza


def test_a_bridged_lan_guest_has_no_ipv6_of_the_plan():
    entry = lab_plan()['hv4']['guests'][0]
    assert (entry['address6'], entry['ip6'], entry['gateway6'], entry['slaac']) == (None, None, None, False)
    assert entry['interfaces_stanza'] == 'auto eth0\niface eth0 inet static\n    address 10.0.0.101/24\n'


def _without_ipv6(plan):
    """The plan with every IPv6 value set back to what an IPv4-only plan says."""
    plan = copy.deepcopy(plan)
    for spec in plan.values():
        spec['forwarding_families'] = ['ipv4']
        for tap in spec['taps']:
            tap['addresses'] = [address for address in tap['addresses'] if ':' not in address]
        if spec['bridge'] is not None:
            spec['bridge']['addresses'] = [address for address in spec['bridge']['addresses'] if ':' not in address]
        spec['nat'] = [entry for entry in spec['nat'] if ':' not in entry['source'][0]]
        if spec['dhcp'] is not None:
            spec['dhcp']['networks'] = [network for network in spec['dhcp']['networks']
                                        if network['hosts'] or network['range']]
            for network in spec['dhcp']['networks']:
                network['address6'] = None
                for item in network['hosts']:
                    item['address6'] = None
        for guest in spec['guests']:
            guest.update(address6=None, ip6=None, gateway6=None, slaac=False)
            guest['derived'] = [key for key in guest['derived'] if key != 'address6']
            guest['interfaces_stanza'] = guest['interfaces_stanza'].split('iface eth0 inet6')[0]
    return plan


def test_ipv6_adds_to_the_ipv4_plan_and_changes_nothing_of_it():
    plan = lab_plan()
    ipv4_plan, errors = fleet.plan_fleet(ipv4_only(LAB))
    assert errors == []
    assert _without_ipv6(plan) == ipv4_plan
    assert plan != ipv4_plan


def test_the_pool_skips_the_networks_the_inventory_names():
    """hv1's pool: fd00:1::/64 is given to vm2 (and fd00:1:0:1::/64 to a guest of hv2), so
    vm1 and vm3 get the next free ones, in sorted host order and list order."""
    inventory = {
        'hv1': {'tuntap_qemu_topology': 'routed', 'tuntap_qemu_pool': '192.168.0.0/16',
                'tuntap_qemu_pool6': 'fd00:1::/56', 'tuntap_qemu_dhcp': False,
                'tuntap_qemu_guests': [{'name': 'vm1'}, {'name': 'vm2', 'address6': 'fd00:1::10/64'},
                                       {'name': 'vm3'}]},
        'hv2': {'tuntap_qemu_topology': 'routed_nat', 'tuntap_qemu_pool': '192.168.0.0/16',
                'tuntap_qemu_guests': [{'name': 'vm4', 'address6': 'fd00:1:0:1::4/64'}]},
    }
    plan, errors = fleet.plan_fleet(inventory)
    assert errors == []
    assert [guest['address6'] for guest in plan['hv1']['guests']] == [
        'fd00:1:0:2::2/64', 'fd00:1::10/64', 'fd00:1:0:3::2/64']
    # Without the host's DHCP server nothing is advertised: static ::2, and no dhcp entry.
    assert [guest['slaac'] for guest in plan['hv1']['guests']] == [False, False, False]
    assert plan['hv1']['dhcp'] is None
    # A host without pool6 plans no IPv6; a given address6 is its own /64 with ::1 on the host side.
    assert plan['hv2']['taps'][0]['addresses'] == ['192.168.3.1/24', 'fd00:1:0:1::1/64']
    assert plan['hv2']['forwarding_families'] == ['ipv4', 'ipv6']


def test_a_network_that_is_not_advertised_may_be_any_prefix():
    plan, errors = fleet.plan_fleet({'hv1': {
        'tuntap_qemu_topology': 'routed', 'tuntap_qemu_dhcp': False,
        'tuntap_qemu_guests': [{'name': 'vm1', 'address': '192.168.0.10/24', 'address6': 'fd00:1::10/80'}]}})
    assert errors == []
    assert plan['hv1']['taps'][0]['addresses'] == ['192.168.0.1/24', 'fd00:1::1/80']
    assert plan['hv1']['guests'][0]['gateway6'] == 'fd00:1::1'


def test_bridged_nat_takes_its_bridge_64_from_the_pool_and_plans_static_addresses_from_2():
    plan, errors = fleet.plan_fleet({'hv3': {
        'tuntap_qemu_topology': 'bridged_nat', 'tuntap_qemu_bridge_address': '192.168.100.1/24',
        'tuntap_qemu_pool': '192.168.100.0/24', 'tuntap_qemu_pool6': 'fd00:7::/48', 'tuntap_qemu_dhcp': False,
        'tuntap_qemu_guests': [{'name': 'vm5', 'address6': 'fd00:7::2/64'}, {'name': 'vm6'}, {'name': 'vm7'}]}})
    assert errors == []
    spec = plan['hv3']
    assert spec['bridge']['addresses'] == ['192.168.100.1/24', 'fd00:7::1/64']
    assert [guest['address6'] for guest in spec['guests']] == ['fd00:7::2/64', 'fd00:7::3/64', 'fd00:7::4/64']
    assert [guest['gateway6'] for guest in spec['guests']] == ['fd00:7::1'] * 3
    # nat6 is off by default: the bridge /64 is routed.
    assert spec['nat'] == [{'source': ['192.168.100.0/24'], 'out_interface': 'eth0'}]


def test_a_bridged_nat_guest_served_by_dhcp_but_dhcp_false_is_static():
    inventory = copy.deepcopy(LAB)
    inventory['hv3']['tuntap_qemu_guests'] = [{'name': 'vm5', 'dhcp': False}, {'name': 'vm6'}]
    plan, errors = fleet.plan_fleet(inventory)
    assert errors == []
    assert [(guest['address6'], guest['slaac']) for guest in plan['hv3']['guests']] == [
        ('fd00:3::2/64', False), ('fd00:3::5054:ff:fe25:c41/64', True)]


def test_the_inet6_stanzas():
    network, errors = guest_config.guest_network('g', '192.168.0.2/24', '192.168.0.1')
    assert errors == []
    network6, errors = guest_config.guest_network('g', 'fd00:1::2/64', 'fd00:1::1')
    assert errors == []
    assert guest_config.render_interfaces_stanza(network, inet6=dict(network6, slaac=False)) == static_stanza(
        '192.168.0.2/24', '192.168.0.1', 'fd00:1::2/64', 'fd00:1::1')
    assert guest_config.render_interfaces_stanza(network, inet6=dict(network6, slaac=True)) == slaac_stanza(
        '192.168.0.2/24', '192.168.0.1')
    assert guest_config.render_interfaces_stanza(network) == (
        'auto eth0\niface eth0 inet static\n    address 192.168.0.2/24\n    gateway 192.168.0.1\n')


def test_the_plan_is_the_same_with_debians_python_and_netaddr():
    """Debian's /usr/bin/python3 (netaddr 0.8.0) plans the lab fleet exactly as this one."""
    python = '/usr/bin/python3'
    if not os.path.exists(python) or os.path.abspath(sys.executable) == python:
        pytest.skip('no second Python to compare with')
    if subprocess.call([python, '-c', 'import netaddr'], stderr=subprocess.DEVNULL) != 0:
        pytest.skip('%s has no netaddr' % python)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(fleet.__file__)))))))
    script = ('import json, sys\n'
              'from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import planner\n'
              'print(json.dumps(planner.plan_fleet(json.loads(sys.stdin.read()))))\n')
    output = subprocess.run([python, '-c', script], input=json.dumps(LAB), stdout=subprocess.PIPE, check=True,
                            env=dict(os.environ, PYTHONPATH=os.path.dirname(root)), universal_newlines=True).stdout
    assert json.loads(output) == [lab_plan(), []]


def routed(**variables):
    host = {'tuntap_qemu_topology': 'routed', 'tuntap_qemu_pool': '192.168.0.0/16',
            'tuntap_qemu_guests': [{'name': 'vm1'}]}
    host.update(variables)
    return host


def bridged(**variables):
    host = {'tuntap_qemu_topology': 'bridged_nat', 'tuntap_qemu_bridge_address': '192.168.100.1/24',
            'tuntap_qemu_pool': '192.168.100.0/24', 'tuntap_qemu_bridge_address6': 'fd00:3::1/64',
            'tuntap_qemu_guests': [{'name': 'vm5'}]}
    host.update(variables)
    return host


def lan(**variables):
    host = {'tuntap_qemu_topology': 'bridged_lan', 'tuntap_qemu_uplink_address': '10.0.0.14/24',
            'tuntap_qemu_guests': [{'name': 'vm7', 'address': '10.0.0.101/24'}]}
    host.update(variables)
    return host


LAN_SLAAC = "but bridged_lan guests take their IPv6 addresses by SLAAC from the LAN's router; leave it out"
BAD = [
    ('address6 not IPv6', {'hv1': routed(tuntap_qemu_guests=[{'name': 'vm1', 'address6': '192.168.9.1/24'}])},
     "hv1: tuntap_qemu_guests[0].address6: '192.168.9.1/24' is not an IPv6 address; write ADDRESS/PREFIX "
     "such as fd00:1::10/64"),
    ('address6 without prefix', {'hv1': routed(tuntap_qemu_guests=[{'name': 'vm1', 'address6': 'fd00:1::10'}])},
     "hv1: tuntap_qemu_guests[0].address6: 'fd00:1::10' is not an interface address; write ADDRESS/PREFIX, "
     "for example 192.168.0.1/24 or fd00::1/64"),
    ('a /80 for SLAAC (routed)', {'hv1': routed(tuntap_qemu_guests=[{'name': 'vm1', 'address6': 'fd00:1::10/80'}])},
     "hv1: tuntap_qemu_guests[0].address6: 'fd00:1::10/80' is a /80, but the host advertises the tap's network "
     "for SLAAC (tuntap_qemu_dhcp), which needs exactly /64"),
    ('a /80 for SLAAC (bridge)', {'hv3': bridged(tuntap_qemu_bridge_address6='fd00:3::1/80')},
     "hv3: tuntap_qemu_bridge_address6: 'fd00:3::1/80' is a /80, but the host advertises the bridge network "
     "for SLAAC (tuntap_qemu_dhcp), which needs exactly /64"),
    ('address6 the host side', {'hv1': routed(tuntap_qemu_guests=[{'name': 'vm1', 'address6': 'fd00:1::1/64'}])},
     "hv1: tuntap_qemu_guests[0].address6: 'fd00:1::1/64' is ::1 of its network, which the host side of the "
     "tap takes"),
    ('address6 beside an IPv6 address',
     {'hv1': routed(tuntap_qemu_guests=[{'name': 'vm1', 'address': 'fd00:5::10/64', 'address6': 'fd00:1::10/64'}])},
     "hv1: tuntap_qemu_guests[0].address6: 'fd00:1::10/64' is given, but address 'fd00:5::10/64' is IPv6 "
     "already; a dual-stack guest has its IPv4 address in address"),
    ('pool6 not IPv6', {'hv1': routed(tuntap_qemu_pool6='10.0.0.0/8')},
     "hv1: tuntap_qemu_pool6: '10.0.0.0/8' cannot hold IPv6 /64 networks; give an IPv6 network of prefix /64 "
     "or shorter, such as fd00:1::/56"),
    ('pool6 prefix over 64', {'hv1': routed(tuntap_qemu_pool6='fd00:1::/80')},
     "hv1: tuntap_qemu_pool6: 'fd00:1::/80' cannot hold IPv6 /64 networks; give an IPv6 network of prefix /64 "
     "or shorter, such as fd00:1::/56"),
    ('pool6 full', {'hv1': routed(tuntap_qemu_pool6='fd00:1::/64', tuntap_qemu_guests=[{'name': 'vm1'}, {'name': 'vm2'}])},
     'hv1: tuntap_qemu_guests[1].address6: tuntap_qemu_pool6 fd00:1::/64 has no free /64 subnet left'),
    ('pool6 overlapping another host\'s',
     {'hv1': routed(tuntap_qemu_pool6='fd00:1::/56'),
      'hv2': routed(tuntap_qemu_pool6='fd00::/16', tuntap_qemu_guests=[{'name': 'vm2'}])},
     'hv2: tuntap_qemu_pool6: fd00::/16 overlaps tuntap_qemu_pool6 fd00:1::/56 of hv1; IPv6 pools are unique '
     'across the fleet'),
    ('guest networks overlapping across hosts',
     {'hv1': routed(tuntap_qemu_guests=[{'name': 'vm1', 'address6': 'fd00:9::10/64'}]),
      'hv2': routed(tuntap_qemu_topology='routed_nat', tuntap_qemu_guests=[{'name': 'vm2', 'address6': 'fd00:9::20/64'}])},
     "hv2: tuntap_qemu_guests[0].address6: 'fd00:9::20/64' is in fd00:9::/64, which overlaps fd00:9::/64 of hv1 "
     "vm1; IPv6 guest networks are unique across the fleet"),
    ('guest networks overlapping on a host',
     {'hv1': routed(tuntap_qemu_guests=[{'name': 'vm1', 'address6': 'fd00:9::10/64'},
                                        {'name': 'vm2', 'address6': 'fd00:9::20/64'}])},
     "hv1: tuntap_qemu_guests[1].address6: 'fd00:9::20/64' is in fd00:9::/64, which overlaps fd00:9::/64 of hv1 "
     "vm1; IPv6 guest networks are unique across the fleet"),
    ('a guest network overlapping an IPv6-only guest\'s',
     {'hv1': routed(tuntap_qemu_guests=[{'name': 'vm1', 'address': 'fd00:9::10/64'}]),
      'hv2': routed(tuntap_qemu_guests=[{'name': 'vm2', 'address6': 'fd00:9::20/64'}])},
     "hv2: tuntap_qemu_guests[0].address6: 'fd00:9::20/64' is in fd00:9::/64, which overlaps fd00:9::/64 of hv1 "
     "vm1; IPv6 guest networks are unique across the fleet"),
    ('a routed guest network overlapping a bridge',
     {'hv1': routed(tuntap_qemu_guests=[{'name': 'vm1', 'address6': 'fd00:3::10/64'}]), 'hv3': bridged()},
     "hv3: tuntap_qemu_bridge_address6: 'fd00:3::1/64' is in fd00:3::/64, which overlaps fd00:3::/64 of hv1 vm1; "
     "IPv6 guest networks are unique across the fleet"),
    ('two bridges with one /64 (NAT does not matter)',
     {'hv3': bridged(tuntap_qemu_nat6=True), 'hv4': bridged(tuntap_qemu_guests=[{'name': 'vm6'}])},
     "hv4: tuntap_qemu_bridge_address6: 'fd00:3::1/64' is in fd00:3::/64, which overlaps fd00:3::/64 of the "
     "bridge of hv3; IPv6 guest networks are unique across the fleet"),
    ('duplicate address6 (bridge)',
     {'hv3': bridged(tuntap_qemu_guests=[{'name': 'vm5', 'address6': 'fd00:3::5/64'},
                                         {'name': 'vm6', 'address6': 'fd00:3::5/64'}])},
     "hv3: tuntap_qemu_guests[1].address6: 'fd00:3::5/64' is also used by vm5 on this host"),
    ('duplicate address6 (routed)',
     {'hv1': routed(tuntap_qemu_guests=[{'name': 'vm1', 'address6': 'fd00:9::10/64'},
                                        {'name': 'vm2', 'address6': 'fd00:9::10/64'}])},
     "hv1: tuntap_qemu_guests[1].address6: 'fd00:9::10/64' is also used by vm1 on this host"),
    ('address6 outside the bridge /64', {'hv3': bridged(tuntap_qemu_guests=[{'name': 'vm5', 'address6': 'fd00:4::5/64'}])},
     "hv3: tuntap_qemu_guests[0].address6: 'fd00:4::5/64' is outside the bridge network fd00:3::/64 "
     "(tuntap_qemu_bridge_address6)"),
    ('address6 with another prefix than the bridge',
     {'hv3': bridged(tuntap_qemu_guests=[{'name': 'vm5', 'address6': 'fd00:3::5/80'}])},
     "hv3: tuntap_qemu_guests[0].address6: 'fd00:3::5/80' has prefix /80 but the bridge network is fd00:3::/64 "
     "(tuntap_qemu_bridge_address6)"),
    ('address6 the bridge address6', {'hv3': bridged(tuntap_qemu_guests=[{'name': 'vm5', 'address6': 'fd00:3::1/64'}])},
     "hv3: tuntap_qemu_guests[0].address6: 'fd00:3::1/64' is the bridge's IPv6 address, the host side "
     "(tuntap_qemu_bridge_address6)"),
    ('address6 the first /64 of the pool the bridge takes',
     {'hv3': bridged(tuntap_qemu_bridge_address6=None, tuntap_qemu_pool6='fd00:7::/56',
                     tuntap_qemu_guests=[{'name': 'vm5', 'address6': 'fd00:7::1/64'}])},
     "hv3: tuntap_qemu_guests[0].address6: 'fd00:7::1/64' is the bridge's IPv6 address, the host side "
     "(tuntap_qemu_pool6)"),
    ('bridge_address6 not IPv6', {'hv3': bridged(tuntap_qemu_bridge_address6='192.168.7.1/24')},
     "hv3: tuntap_qemu_bridge_address6: '192.168.7.1/24' is not an IPv6 address; write ADDRESS/PREFIX such as "
     "fd00:1::10/64"),
    ('address6 on a bridge without IPv6',
     {'hv3': bridged(tuntap_qemu_bridge_address6=None, tuntap_qemu_guests=[{'name': 'vm5', 'address6': 'fd00:3::5/64'}])},
     "hv3: tuntap_qemu_guests[0].address6: 'fd00:3::5/64' is given, but the bridge has no IPv6 address; set "
     "tuntap_qemu_bridge_address6 (or tuntap_qemu_pool6)"),
    ('bridge_address6 on routed', {'hv1': routed(tuntap_qemu_bridge_address6='fd00:1::1/64')},
     "hv1: tuntap_qemu_bridge_address6: 'fd00:1::1/64' is given, but routed has no bridge of its own; the IPv6 "
     "address of each tap comes from tuntap_qemu_pool6 or the guest's address6"),
    ('pool6 on bridged_lan', {'hv4': lan(tuntap_qemu_pool6='fd00:4::/56')},
     "hv4: tuntap_qemu_pool6: 'fd00:4::/56' is given, " + LAN_SLAAC),
    ('bridge_address6 on bridged_lan', {'hv4': lan(tuntap_qemu_bridge_address6='fd00:4::1/64')},
     "hv4: tuntap_qemu_bridge_address6: 'fd00:4::1/64' is given, " + LAN_SLAAC),
    ('nat6 on bridged_lan', {'hv4': lan(tuntap_qemu_nat6=True)},
     'hv4: tuntap_qemu_nat6: true is given, ' + LAN_SLAAC),
    ('address6 on bridged_lan',
     {'hv4': lan(tuntap_qemu_guests=[{'name': 'vm7', 'address': '10.0.0.101/24', 'address6': 'fd00:10::101/64'}])},
     "hv4: tuntap_qemu_guests[0].address6: 'fd00:10::101/64' is given, " + LAN_SLAAC),
    ('nat6 on routed', {'hv1': routed(tuntap_qemu_nat6=True)},
     'hv1: tuntap_qemu_nat6: true, but routed guests are not behind NAT (their /64s are routed); NAT66 is for '
     'routed_nat and bridged_nat'),
    ('nat6 not a boolean', {'hv1': routed(tuntap_qemu_topology='routed_nat', tuntap_qemu_nat6='yes')},
     "hv1: tuntap_qemu_nat6: 'yes' is not true or false"),
]


@pytest.mark.parametrize('inventory, error', [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_ipv6_input_is_refused_with_its_error(inventory, error):
    plan, errors = fleet.plan_fleet(copy.deepcopy(inventory))
    assert plan is None
    assert errors == [error]


def test_every_ipv6_error_of_the_fleet_at_once():
    plan, errors = fleet.plan_fleet({
        'hv1': routed(tuntap_qemu_nat6=True, tuntap_qemu_guests=[
            {'name': 'vm1', 'address6': 'fd00:1::10/80'}, {'name': 'vm2', 'address6': 'fd00:1::1/64'}]),
        'hv3': bridged(tuntap_qemu_guests=[{'name': 'vm5', 'address6': 'fd00:4::5/64'}]),
        'hv4': lan(tuntap_qemu_pool6='fd00:4::/56'),
    })
    assert plan is None
    assert errors == [
        'hv1: tuntap_qemu_nat6: true, but routed guests are not behind NAT (their /64s are routed); NAT66 is '
        'for routed_nat and bridged_nat',
        "hv1: tuntap_qemu_guests[0].address6: 'fd00:1::10/80' is a /80, but the host advertises the tap's "
        "network for SLAAC (tuntap_qemu_dhcp), which needs exactly /64",
        "hv1: tuntap_qemu_guests[1].address6: 'fd00:1::1/64' is ::1 of its network, which the host side of the "
        "tap takes",
        "hv3: tuntap_qemu_guests[0].address6: 'fd00:4::5/64' is outside the bridge network fd00:3::/64 "
        "(tuntap_qemu_bridge_address6)",
        "hv4: tuntap_qemu_pool6: 'fd00:4::/56' is given, " + LAN_SLAAC,
    ]
