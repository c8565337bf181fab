# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 13, isolated networks: the `isolated` topology (a bridge of the host's, DHCP, no NAT,
forwarding off) and guest `isolated: true` (an isolated bridge port) - plans and refusals."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import planner, topologies
from ansible_collections.tuntap.qemu.plugins.module_utils._guest.guest_config import stable_mac

# The lab's hv5 (contract): vm9 not isolated, vm10 and vm11 isolated.
HV5 = {
    'tuntap_qemu_topology': 'isolated',
    'tuntap_qemu_uplink_address': '10.0.0.15/24',
    'tuntap_qemu_uplink_address6': 'fd00:10::15/64',
    'tuntap_qemu_bridge_address': '192.168.9.1/24',
    'tuntap_qemu_bridge_address6': 'fd00:5::1/64',
    'tuntap_qemu_guests': [
        {'name': 'vm9', 'address': '192.168.9.10/24'},
        {'name': 'vm10', 'address': '192.168.9.11/24', 'isolated': True},
        {'name': 'vm11', 'address': '192.168.9.12/24', 'isolated': True},
    ],
}


def plan_of(**hosts):
    plan, errors = planner.plan_fleet(copy.deepcopy(hosts))
    assert errors == []
    return plan


def errors_of(**hosts):
    plan, errors = planner.plan_fleet(copy.deepcopy(hosts))
    assert plan is None
    return errors


def host(topology, guests, **variables):
    """A host of `topology` with what it needs (uplink, bridge address where it has a bridge)."""
    values = {'tuntap_qemu_topology': topology, 'tuntap_qemu_uplink_address': '10.0.0.20/24',
              'tuntap_qemu_guests': guests}
    if topologies.TOPOLOGIES[topology].needs_bridge_address:
        values['tuntap_qemu_bridge_address'] = '192.168.9.1/24'
    values.update(variables)
    return values


def test_the_isolated_topology_is_a_rule_object():
    rule = topologies.TOPOLOGIES['isolated']
    assert (rule.bridge, rule.nat, rule.forwarding, rule.dhcp, rule.forwards) == (
        topologies.INTERNAL, False, False, True, False)
    assert rule.shares_bridge and not rule.vde


def test_the_isolated_host_plan():
    spec = plan_of(hv5=HV5)['hv5']
    assert spec['topology'] == 'isolated'
    assert spec['forwarding'] is False
    # Forwarding off: no IPv6 family either, though the bridge has a /64.
    assert spec['forwarding_families'] == ['ipv4']
    assert spec['nat'] == []
    assert spec['vde'] is None
    assert spec['port_forwards'] == []
    assert spec['taps'] == [{'name': tap, 'user': None, 'group': None, 'addresses': []}
                            for tap in ('tap0', 'tap1', 'tap2')]
    assert spec['bridge'] == {'name': 'br0', 'addresses': ['192.168.9.1/24', 'fd00:5::1/64'],
                              'ports': ['tap0', 'tap1', 'tap2'], 'uplink': None, 'gateway': None,
                              'readdress': False, 'dhcp': False, 'isolated_ports': ['tap1', 'tap2']}
    # The uplink is the host's own: checked (not exact), never taken over.
    assert spec['uplink_check']['exact'] is False
    assert spec['uplink_change']['takeover'] is False
    # The host serves DHCP, DNS and router advertisements on the bridge.
    assert spec['dhcp']['networks'] == [{
        'interface': 'br0', 'address': '192.168.9.1/24', 'address6': 'fd00:5::1/64', 'range': None,
        'hosts': [{'mac': stable_mac(name, 0), 'address': address, 'name': name,
                   'address6': guest['ip6']}
                  for name, address, guest in zip(('vm9', 'vm10', 'vm11'), ('192.168.9.10', '192.168.9.11', '192.168.9.12'),
                                                  spec['guests'])]}]
    assert [(guest['name'], guest['tap'], guest['gateway'], guest['gateway6'], guest['slaac'], guest['isolated'],
             guest['vde']) for guest in spec['guests']] == [
        ('vm9', 'tap0', '192.168.9.1', 'fd00:5::1', True, False, None),
        ('vm10', 'tap1', '192.168.9.1', 'fd00:5::1', True, True, None),
        ('vm11', 'tap2', '192.168.9.1', 'fd00:5::1', True, True, None)]


def test_isolated_guests_get_pool_addresses_in_the_bridge_subnet():
    spec = plan_of(hv5=host('isolated', [{'name': 'a'}, {'name': 'b', 'address': '192.168.9.2/24'}, {'name': 'c'}],
                            tuntap_qemu_pool='192.168.9.0/24', tuntap_qemu_pool6='fd00:5::/56',
                            tuntap_qemu_dhcp=False))['hv5']
    assert [guest['address'] for guest in spec['guests']] == ['192.168.9.3/24', '192.168.9.2/24', '192.168.9.4/24']
    # Without DHCP (no router advertisements): static IPv6 addresses from ::2 of the pool's first /64.
    assert spec['bridge']['addresses'] == ['192.168.9.1/24', 'fd00:5::1/64']
    assert [guest['address6'] for guest in spec['guests']] == ['fd00:5::2/64', 'fd00:5::3/64', 'fd00:5::4/64']
    assert spec['dhcp'] is None


def test_the_isolated_summary():
    assert planner.summary(plan_of(hv5=HV5))[1].startswith(
        'hv5 isolated: vm10 on tap1, mac %s, 192.168.9.11/24 via 192.168.9.1, ' % stable_mac('vm10', 0))


@pytest.mark.parametrize('topology, ports, isolated_ports', [
    ('bridged_nat', ['tap0', 'tap1', 'tap2'], ['tap0', 'tap2']),
    ('isolated', ['tap0', 'tap1', 'tap2'], ['tap0', 'tap2']),
    # The uplink is a port, never an isolated one.
    ('bridged_lan', ['tap0', 'tap1', 'tap2', 'eth0'], ['tap0', 'tap2']),
])
def test_guest_isolation_on_the_bridged_topologies(topology, ports, isolated_ports):
    prefix = '10.0.0' if topology == 'bridged_lan' else '192.168.9'
    guests = [{'name': 'a', 'address': '%s.30/24' % prefix, 'isolated': True},
              {'name': 'b', 'address': '%s.31/24' % prefix, 'isolated': False},
              {'name': 'c', 'address': '%s.32/24' % prefix, 'isolated': True}]
    spec = plan_of(hv=host(topology, guests))['hv']
    assert spec['bridge']['ports'] == ports
    assert spec['bridge']['isolated_ports'] == isolated_ports
    assert [guest['isolated'] for guest in spec['guests']] == [True, False, True]


def test_isolated_ports_are_sorted_taps_and_empty_without_isolated_guests():
    guests = [{'name': 'a', 'address': '192.168.9.30/24', 'tap': 'vnet9', 'isolated': True},
              {'name': 'b', 'address': '192.168.9.31/24', 'tap': 'vnet1', 'isolated': True}]
    assert plan_of(hv=host('bridged_nat', guests))['hv']['bridge']['isolated_ports'] == ['vnet1', 'vnet9']
    for guest in guests:
        del guest['isolated']
    assert plan_of(hv=host('bridged_nat', guests))['hv']['bridge']['isolated_ports'] == []


@pytest.mark.parametrize('variables, error', [
    pytest.param(host('routed', [{'name': 'a', 'address': '192.168.30.10/24', 'isolated': True}]),
                 'hv: tuntap_qemu_guests[0].isolated: true, but routed guests have a tap and a subnet of their '
                 'own, so they reach each other only through the host; isolation is for guests that share a '
                 'bridge (bridged_nat, bridged_lan and isolated)', id='isolated guest on routed'),
    pytest.param(host('routed_nat', [{'name': 'a', 'address': '192.168.30.10/24', 'isolated': True}]),
                 'hv: tuntap_qemu_guests[0].isolated: true, but routed_nat guests have a tap and a subnet of their '
                 'own, so they reach each other only through the host; isolation is for guests that share a '
                 'bridge (bridged_nat, bridged_lan and isolated)', id='isolated guest on routed_nat'),
    pytest.param(host('bridged_nat', [{'name': 'a', 'address': '192.168.9.10/24', 'isolated': 'yes'}]),
                 "hv: tuntap_qemu_guests[0].isolated: 'yes' is not true or false", id='isolated not a boolean'),
    pytest.param(host('isolated', [], tuntap_qemu_nat6=True, tuntap_qemu_bridge_address6='fd00:5::1/64'),
                 'hv: tuntap_qemu_nat6: true, but isolated guests are not behind NAT (the host does not route '
                 'them: they never leave it); NAT66 is for routed_nat and bridged_nat', id='nat6 on isolated'),
    pytest.param(host('isolated', [{'name': 'a', 'address': '192.168.9.10/24', 'forwards': [{'port': 2201}]}]),
                 'hv: tuntap_qemu_guests[0].forwards[0]: isolated guests are not behind NAT, and the host does '
                 'not route to them: they never leave it; port forwards need routed_nat or bridged_nat',
                 id='forwards on isolated'),
    pytest.param(host('isolated', [{'name': 'a', 'address': '192.168.9.10/24'}], tuntap_qemu_bridge_address=None),
                 "hv: tuntap_qemu_bridge_address: missing; isolated needs the guests' gateway on the bridge with "
                 'its prefix, such as 192.168.0.1/24', id='isolated without a bridge address'),
    pytest.param(host('isolated', [{'name': 'a', 'address': '192.168.10.10/24'}]),
                 "hv: tuntap_qemu_guests[0].address: '192.168.10.10/24' is outside the bridge subnet "
                 '192.168.9.0/24 (tuntap_qemu_bridge_address)', id='isolated guest outside the bridge subnet'),
    pytest.param(host('isolated', [{'name': 'a', 'address': '192.168.9.10/24', 'gateway': '192.168.9.254'}]),
                 "hv: tuntap_qemu_guests[0].gateway: '192.168.9.254' is not the host side; isolated guests route "
                 'through the bridge address 192.168.9.1 (tuntap_qemu_bridge_address)', id='isolated gateway'),
    pytest.param(host('isolated', [], tuntap_qemu_vde={'address': '192.168.20.1/24'}),
                 "hv: tuntap_qemu_vde: is given, but isolated has no routed guest network for a VDE switch's tap "
                 '(its guests share a bridge); a VDE switch is for routed and routed_nat', id='vde on isolated'),
])
def test_refused(variables, error):
    assert errors_of(hv=variables) == [error]


def test_every_isolation_error_of_the_fleet_at_once():
    errors = errors_of(
        hv1=host('routed', [{'name': 'a', 'address': '192.168.30.10/24', 'isolated': True}]),
        hv5=host('isolated', [{'name': 'b', 'address': '192.168.9.10/24', 'forwards': [{'port': 22}]}],
                 tuntap_qemu_nat6=True, tuntap_qemu_uplink_address='10.0.0.21/24'))
    assert [error.split(':')[:2] for error in errors] == [
        ['hv1', ' tuntap_qemu_guests[0].isolated'], ['hv5', ' tuntap_qemu_nat6'],
        ['hv5', ' tuntap_qemu_guests[0].forwards[0]']]
