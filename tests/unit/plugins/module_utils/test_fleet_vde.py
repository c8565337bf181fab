# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 13, VDE: `tuntap_qemu_vde` (a VDE switch per routed / routed_nat host, its tap holding
the host side of the VDE subnet) and guest `vde: true` (on the switch, no tap) - plans and
refusals."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import planner, topologies
from ansible_collections.tuntap.qemu.plugins.module_utils._guest.guest_config import stable_mac

SOCKET = '/run/tuntap-qemu/vde/vde0.ctl'

# The lab's hv2 (contract): routed_nat, a tap guest and two guests on the switch.
HV2 = {
    'tuntap_qemu_topology': 'routed_nat',
    'tuntap_qemu_uplink_address': '10.0.0.12/24',
    'tuntap_qemu_pool': '192.168.0.0/16',
    'tuntap_qemu_vde': {'address': '192.168.20.1/24'},
    'tuntap_qemu_guests': [
        {'name': 'vm3'},
        {'name': 'vm12', 'address': '192.168.20.10/24', 'vde': True},
        {'name': 'vm13', 'address': '192.168.20.11/24', 'vde': True},
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


def host(topology, guests, uplink='10.0.0.20/24', **variables):
    values = {'tuntap_qemu_topology': topology, 'tuntap_qemu_uplink_address': uplink,
              'tuntap_qemu_guests': guests}
    if topologies.TOPOLOGIES[topology].needs_bridge_address:
        values['tuntap_qemu_bridge_address'] = '192.168.9.1/24'
    values.update(variables)
    return values


def vde_host(topology='routed', guests=None, vde=None, **variables):
    """A host with a VDE switch on 192.168.20.1/24 (vde: more keys) and `guests` (default: two on it)."""
    if guests is None:
        guests = [{'name': 'a', 'vde': True}, {'name': 'b', 'vde': True}]
    return host(topology, guests, tuntap_qemu_vde=dict({'address': '192.168.20.1/24'}, **(vde or {})), **variables)


def test_only_the_routed_topologies_take_a_switch():
    assert [name for name, rule in topologies.TOPOLOGIES.items() if rule.vde] == ['routed', 'routed_nat']


def test_the_routed_nat_plan_with_a_switch():
    spec = plan_of(hv2=HV2)['hv2']
    # The switch's tap is one more tap, with the host side; the VDE guests have none.
    assert spec['taps'] == [
        {'name': 'tap0', 'user': None, 'group': None, 'addresses': ['192.168.0.1/24']},
        {'name': 'vde0', 'user': None, 'group': None, 'addresses': ['192.168.20.1/24']}]
    assert spec['vde'] == {'tap': 'vde0', 'socket': SOCKET, 'group': None, 'mode': '0700'}
    assert spec['bridge'] is None
    assert spec['forwarding'] is True
    # The VDE subnet is one more NAT source.
    assert spec['nat'] == [{'source': ['192.168.0.0/24'], 'out_interface': 'eth0'},
                           {'source': ['192.168.20.0/24'], 'out_interface': 'eth0'}]
    # One more DHCP network: the switch's tap, with a lease for each VDE guest.
    assert spec['dhcp']['networks'][1] == {
        'interface': 'vde0', 'address': '192.168.20.1/24', 'address6': None, 'range': None,
        'hosts': [{'mac': stable_mac('vm12', 0), 'address': '192.168.20.10', 'name': 'vm12', 'address6': None},
                  {'mac': stable_mac('vm13', 0), 'address': '192.168.20.11', 'name': 'vm13', 'address6': None}]}
    assert [network['interface'] for network in spec['dhcp']['networks']] == ['tap0', 'vde0']
    assert [(guest['name'], guest['tap'], guest['vde'], guest['isolated'], guest['address'], guest['gateway'])
            for guest in spec['guests']] == [
        ('vm3', 'tap0', None, False, '192.168.0.2/24', '192.168.0.1'),
        ('vm12', None, SOCKET, False, '192.168.20.10/24', '192.168.20.1'),
        ('vm13', None, SOCKET, False, '192.168.20.11/24', '192.168.20.1')]
    vm12 = spec['guests'][1]
    assert sorted(vm12['derived']) == ['gateway', 'mac']
    # The guest-side stanza and kernel argument of a VDE guest are those of any static guest.
    assert vm12['interfaces_stanza'] == ('auto eth0\niface eth0 inet static\n    address 192.168.20.10/24\n'
                                         '    gateway 192.168.20.1\n')
    assert vm12['kernel_ip'] == 'ip=192.168.20.10::192.168.20.1:255.255.255.0:vm12:eth0:off'


def test_the_routed_plan_with_a_switch_has_no_nat():
    spec = plan_of(hv1=vde_host('routed'))['hv1']
    assert spec['nat'] == []
    assert spec['taps'] == [{'name': 'vde0', 'user': None, 'group': None, 'addresses': ['192.168.20.1/24']}]
    assert [(guest['address'], guest['tap'], guest['vde']) for guest in spec['guests']] == [
        ('192.168.20.2/24', None, SOCKET), ('192.168.20.3/24', None, SOCKET)]
    assert spec['forwarding_families'] == ['ipv4']


def test_the_summary_of_a_vde_guest():
    lines = planner.summary(plan_of(hv2=HV2))
    assert lines[1] == ('hv2 routed_nat: vm12 on vde0 (VDE), mac %s, 192.168.20.10/24 via 192.168.20.1'
                        % stable_mac('vm12', 0))


@pytest.mark.parametrize('given, planned', [
    # From .2, skipping the host side and the given addresses.
    ([None, None, None], ['192.168.20.2/24', '192.168.20.3/24', '192.168.20.4/24']),
    ([None, '192.168.20.2/24', None], ['192.168.20.3/24', '192.168.20.2/24', '192.168.20.4/24']),
])
def test_vde_guests_without_an_address_get_the_next_free_one(given, planned):
    guests = [dict({'name': 'g%d' % index, 'vde': True}, **({'address': address} if address else {}))
              for index, address in enumerate(given)]
    # No tuntap_qemu_pool needed: the VDE subnet is the pool.
    spec = plan_of(hv1=vde_host('routed', guests))['hv1']
    assert [guest['address'] for guest in spec['guests']] == planned
    assert [('address' in guest['derived']) for guest in spec['guests']] == [address is None for address in given]


def test_a_host_side_other_than_dot_one_is_skipped_and_dot_one_comes_last():
    guests = [{'name': 'g%d' % index, 'vde': True} for index in range(3)]
    spec = plan_of(hv1=vde_host('routed', guests, {'address': '192.168.20.2/29'}))['hv1']
    assert [guest['address'] for guest in spec['guests']] == ['192.168.20.3/29', '192.168.20.4/29', '192.168.20.5/29']
    guests = [{'name': 'g%d' % index, 'vde': True} for index in range(5)]
    spec = plan_of(hv1=vde_host('routed', guests, {'address': '192.168.20.2/29'}))['hv1']
    assert spec['guests'][-1]['address'] == '192.168.20.1/29'
    guests.append({'name': 'g5', 'vde': True})
    assert errors_of(hv1=vde_host('routed', guests, {'address': '192.168.20.2/29'})) == [
        'hv1: tuntap_qemu_guests[5].address: no free address left in the VDE switch subnet 192.168.20.0/29 '
        '(tuntap_qemu_vde.address)']


def test_the_pool_plans_tap_subnets_around_the_switch():
    guests = [{'name': 'a'}, {'name': 'b', 'vde': True}, {'name': 'c'}]
    spec = plan_of(hv1=vde_host('routed', guests, {'address': '192.168.20.1/24'},
                                tuntap_qemu_pool='192.168.20.0/22'))['hv1']
    assert [guest['address'] for guest in spec['guests']] == ['192.168.21.2/24', '192.168.20.2/24', '192.168.22.2/24']
    assert [(tap['name'], tap['addresses']) for tap in spec['taps']] == [
        ('tap0', ['192.168.21.1/24']), ('tap2', ['192.168.22.1/24']), ('vde0', ['192.168.20.1/24'])]


def test_a_switch_without_guests_is_still_planned():
    spec = plan_of(hv2=vde_host('routed_nat', []))['hv2']
    assert spec['vde'] == {'tap': 'vde0', 'socket': SOCKET, 'group': None, 'mode': '0700'}
    assert spec['taps'] == [{'name': 'vde0', 'user': None, 'group': None, 'addresses': ['192.168.20.1/24']}]
    assert spec['nat'] == [{'source': ['192.168.20.0/24'], 'out_interface': 'eth0'}]
    # Nothing to serve, nothing to advertise.
    assert spec['dhcp'] is None


@pytest.mark.parametrize('vde, variables, expected', [
    ({'group': 'kvm'}, {}, {'tap': 'vde0', 'socket': SOCKET, 'group': 'kvm', 'mode': '0770'}),
    # The group defaults to the host's tuntap_qemu_guest_group.
    ({}, {'tuntap_qemu_guest_group': 'qemu'}, {'tap': 'vde0', 'socket': SOCKET, 'group': 'qemu', 'mode': '0770'}),
    ({'group': 'kvm'}, {'tuntap_qemu_guest_group': 'qemu'},
     {'tap': 'vde0', 'socket': SOCKET, 'group': 'kvm', 'mode': '0770'}),
    ({'tap': 'vswitch1'}, {'tuntap_qemu_vde_runtime_dir': '/srv/lab/vde-run/hv1'},
     {'tap': 'vswitch1', 'socket': '/srv/lab/vde-run/hv1/vswitch1.ctl', 'group': None, 'mode': '0700'}),
])
def test_the_switch_parameters(vde, variables, expected):
    spec = plan_of(hv1=vde_host('routed', None, vde, **variables))['hv1']
    assert spec['vde'] == expected
    assert spec['taps'][-1]['name'] == expected['tap']
    assert [guest['vde'] for guest in spec['guests']] == [expected['socket']] * 2
    assert spec['dhcp']['networks'][0]['interface'] == expected['tap']


def test_ipv6_on_the_switch():
    guests = [{'name': 'a', 'vde': True}, {'name': 'b', 'vde': True, 'dhcp': False},
              {'name': 'c', 'vde': True, 'address6': 'fd00:20::30/64'}]
    spec = plan_of(hv2=vde_host('routed_nat', guests, {'address6': 'fd00:20::1/64'}, tuntap_qemu_nat6=True))['hv2']
    assert spec['taps'] == [{'name': 'vde0', 'user': None, 'group': None,
                             'addresses': ['192.168.20.1/24', 'fd00:20::1/64']}]
    assert spec['forwarding_families'] == ['ipv4', 'ipv6']
    assert spec['nat'] == [{'source': ['192.168.20.0/24'], 'out_interface': 'eth0'},
                           {'source': ['fd00:20::/64'], 'out_interface': 'eth0'}]
    slaac = str(__import__('netaddr').EUI(stable_mac('a', 0)).ipv6(__import__('netaddr').IPAddress('fd00:20::')))
    # Served: SLAAC from the host's advertisements; static (dhcp: false): the next free from ::2.
    assert [(guest['address6'], guest['gateway6'], guest['slaac']) for guest in spec['guests']] == [
        (slaac + '/64', 'fd00:20::1', True), ('fd00:20::2/64', 'fd00:20::1', False),
        ('fd00:20::30/64', 'fd00:20::1', False)]
    network = spec['dhcp']['networks'][0]
    assert (network['interface'], network['address6']) == ('vde0', 'fd00:20::1/64')
    assert [entry['name'] for entry in network['hosts']] == ['a', 'c']


def test_without_address6_vde_guests_are_ipv4_only_beside_routed_64s():
    guests = [{'name': 'a'}, {'name': 'b', 'vde': True}]
    spec = plan_of(hv1=vde_host('routed', guests, tuntap_qemu_pool='192.168.0.0/16',
                                tuntap_qemu_pool6='fd00:1::/56'))['hv1']
    assert [guest['address6'] for guest in spec['guests']][1] is None
    assert spec['guests'][0]['address6'].startswith('fd00:1::')


def test_vde_subnets_may_repeat_on_routed_nat_hosts():
    plan = plan_of(hv2=vde_host('routed_nat'), hv3=vde_host('routed_nat', [
        {'name': 'c', 'vde': True}], uplink='10.0.0.21/24'))
    assert plan['hv2']['vde'] == plan['hv3']['vde']


@pytest.mark.parametrize('topology', ['routed', 'bridged_nat'])
@pytest.mark.parametrize('empty', [None, {}, ''])
def test_an_empty_tuntap_qemu_vde_is_no_switch(topology, empty):
    spec = plan_of(hv=host(topology, [], tuntap_qemu_vde=empty))['hv']
    assert spec['vde'] is None
    assert spec['taps'] == []


def test_forwards_to_a_vde_guest_behind_nat():
    guests = [{'name': 'a', 'vde': True, 'forwards': [{'port': 2201, 'guest_port': 22}]}]
    spec = plan_of(hv2=vde_host('routed_nat', guests))['hv2']
    assert spec['port_forwards'] == [{'port': 2201, 'protocol': 'tcp', 'destination': '192.168.20.2',
                                      'destination_port': 22, 'source': None}]


NO_SWITCH = ("hv: tuntap_qemu_guests[0].vde: true, but the host has no VDE switch; set tuntap_qemu_vde")


@pytest.mark.parametrize('variables, errors', [
    pytest.param(host('routed', [{'name': 'a', 'vde': True}]), [NO_SWITCH], id='vde guest without a switch'),
    pytest.param(host('routed_nat', [{'name': 'a', 'address': '192.168.20.10/24', 'vde': True}]), [NO_SWITCH],
                 id='vde guest with an address without a switch'),
    pytest.param(host('bridged_nat', [{'name': 'a', 'vde': True}]),
                 ['hv: tuntap_qemu_guests[0].vde: true, but bridged_nat has no VDE switch; a VDE switch is for '
                  'routed and routed_nat'], id='vde guest on bridged_nat'),
    pytest.param(host('bridged_nat', [], tuntap_qemu_vde={'address': '192.168.20.1/24'}),
                 ["hv: tuntap_qemu_vde: is given, but bridged_nat has no routed guest network for a VDE switch's "
                  'tap (its guests share a bridge); a VDE switch is for routed and routed_nat'],
                 id='tuntap_qemu_vde on bridged_nat'),
    pytest.param(host('bridged_lan', [], uplink='10.0.0.20/24', tuntap_qemu_vde={'address': '192.168.20.1/24'}),
                 ["hv: tuntap_qemu_vde: is given, but bridged_lan has no routed guest network for a VDE switch's "
                  'tap (its guests share a bridge); a VDE switch is for routed and routed_nat'],
                 id='tuntap_qemu_vde on bridged_lan'),
    pytest.param(host('isolated', [{'name': 'a', 'address': '192.168.9.10/24', 'vde': True}],
                      tuntap_qemu_vde={'address': '192.168.20.1/24'}),
                 ["hv: tuntap_qemu_vde: is given, but isolated has no routed guest network for a VDE switch's "
                  'tap (its guests share a bridge); a VDE switch is for routed and routed_nat',
                  'hv: tuntap_qemu_guests[0].vde: true, but isolated has no VDE switch; a VDE switch is for routed '
                  'and routed_nat'], id='tuntap_qemu_vde and a vde guest on isolated'),
    pytest.param(vde_host('routed', [{'name': 'a', 'vde': True, 'isolated': True}]),
                 ['hv: tuntap_qemu_guests[0].isolated: true, but the guest is on the VDE switch (vde: true), which '
                  'has no isolated ports; give one of them'], id='isolated and vde'),
    pytest.param(vde_host('routed', [{'name': 'a', 'vde': 'yes'}]),
                 ["hv: tuntap_qemu_guests[0].vde: 'yes' is not true or false",
                  # Not on the switch then: a routed guest without an address or a pool.
                  'hv: tuntap_qemu_guests[0].address: missing; give ADDRESS/PREFIX such as 192.168.0.10/24, or set '
                  'tuntap_qemu_pool to plan one'], id='vde not a boolean'),
    pytest.param(vde_host('routed', [{'name': 'a', 'vde': True, 'tap': 'tap5'}]),
                 ["hv: tuntap_qemu_guests[0].tap: 'tap5' is given, but the guest is on the VDE switch (vde: true), "
                  "whose tap is the host's; leave it out"], id='vde guest with a tap'),
    pytest.param(vde_host('routed', [{'name': 'a', 'address': '192.168.21.10/24', 'vde': True}]),
                 ["hv: tuntap_qemu_guests[0].address: '192.168.21.10/24' is outside the VDE switch subnet "
                  '192.168.20.0/24 (tuntap_qemu_vde.address)'], id='vde guest outside the VDE subnet'),
    pytest.param(vde_host('routed', [{'name': 'a', 'address': '192.168.20.10/25', 'vde': True}]),
                 ["hv: tuntap_qemu_guests[0].address: '192.168.20.10/25' has prefix /25 but the VDE switch subnet "
                  'is 192.168.20.0/24 (tuntap_qemu_vde.address)'], id='vde guest with another prefix'),
    pytest.param(vde_host('routed', [{'name': 'a', 'address': '192.168.20.1/24', 'vde': True}]),
                 ["hv: tuntap_qemu_guests[0].address: '192.168.20.1/24' is the VDE switch address, the host side "
                  '(tuntap_qemu_vde.address)'], id='vde guest on the switch address'),
    pytest.param(vde_host('routed', [{'name': 'a', 'address': '192.168.20.10/24', 'gateway': '192.168.20.254',
                                      'vde': True}]),
                 ["hv: tuntap_qemu_guests[0].gateway: '192.168.20.254' is not the host side; VDE guests route "
                  'through the VDE switch address 192.168.20.1 (tuntap_qemu_vde.address)'], id='vde guest gateway'),
    pytest.param(vde_host('routed', [{'name': 'a', 'address': '192.168.20.10/24', 'vde': True},
                                     {'name': 'b', 'address': '192.168.20.10/24', 'vde': True}]),
                 ["hv: tuntap_qemu_guests[1].address: '192.168.20.10/24' is also used by a on this host"],
                 id='vde guests with one address'),
    pytest.param(vde_host('routed', [{'name': 'a', 'vde': True, 'address6': 'fd00:20::5/64'}]),
                 ["hv: tuntap_qemu_guests[0].address6: 'fd00:20::5/64' is given, but the VDE switch has no IPv6 "
                  'address; set tuntap_qemu_vde.address6'], id='vde guest address6 without the switch address6'),
    pytest.param(vde_host('routed', [{'name': 'a', 'vde': True, 'address6': 'fd00:21::5/64'}],
                          {'address6': 'fd00:20::1/64'}),
                 ["hv: tuntap_qemu_guests[0].address6: 'fd00:21::5/64' is outside the VDE switch network "
                  'fd00:20::/64 (tuntap_qemu_vde.address6)'], id='vde guest address6 outside the switch /64'),
    pytest.param(vde_host('routed', [{'name': 'a', 'address': '192.168.20.10/24'}]),
                 ["hv: tuntap_qemu_guests[0].address: '192.168.20.10/24' is in 192.168.20.0/24, which overlaps "
                  '192.168.20.0/24 of the VDE switch (tuntap_qemu_vde) on this host; each routed guest has a '
                  'subnet of its own (a guest on the VDE switch has vde: true)'],
                 id='VDE subnet overlapping a tap guest subnet'),
    pytest.param(vde_host('routed', [], {'address': '10.0.0.200/16'}),
                 ["hv: tuntap_qemu_vde.address: '10.0.0.200/16' is in 10.0.0.0/16, which overlaps the uplink "
                  'subnet 10.0.0.0/24 (tuntap_qemu_uplink_address)'], id='VDE subnet overlapping the uplink'),
    pytest.param(vde_host('routed_nat', [], {'address6': 'fd00:10::99/64'},
                          tuntap_qemu_uplink_address6='fd00:10::20/64'),
                 ["hv: tuntap_qemu_vde.address6: 'fd00:10::99/64' is in fd00:10::/64, which overlaps the uplink "
                  'subnet fd00:10::/64 (tuntap_qemu_uplink_address6)'], id='VDE IPv6 overlapping the uplink'),
    pytest.param(vde_host('routed', [], {'address': '192.168.20.1'}),
                 ["hv: tuntap_qemu_vde.address: '192.168.20.1' is not an interface address; write ADDRESS/PREFIX, "
                  'for example 192.168.0.1/24 or fd00::1/64'], id='vde address without a prefix'),
    pytest.param(vde_host('routed', [], {'address': '192.168.20.1/32'}),
                 ["hv: tuntap_qemu_vde.address: '192.168.20.1/32' leaves no room for guests beside the host side; "
                  'give a subnet such as /24'], id='vde address a /32'),
    pytest.param(vde_host('routed', [], {'address': '192.168.20.255/24'}),
                 ["hv: tuntap_qemu_vde.address: '192.168.20.255/24' is the network or broadcast address of "
                  '192.168.20.0/24'], id='vde address the broadcast address'),
    pytest.param(vde_host('routed', [], {'address': 'fd00:20::1/64'}),
                 ["hv: tuntap_qemu_vde.address: 'fd00:20::1/64' is not an IPv4 address; write ADDRESS/PREFIX such "
                  'as 192.168.20.1/24'], id='vde address IPv6'),
    pytest.param(vde_host('routed', [], {'address': '192.168.20.0/24'}),
                 ["hv: tuntap_qemu_vde.address: '192.168.20.0/24' is the network address of its subnet, not a host "
                  'address; did you mean 192.168.20.1/24?'], id='vde address the network address'),
    pytest.param(vde_host('routed', [], {'address': '192.168.20.1/31'}),
                 ["hv: tuntap_qemu_vde.address: '192.168.20.1/31' leaves no room for guests beside the host side; "
                  'give a subnet such as /24'], id='vde address a /31'),
    pytest.param(host('routed', [], tuntap_qemu_vde={'tap': 'vde1'}),
                 ["hv: tuntap_qemu_vde.address: missing; the host side of the VDE subnet on the switch's tap, with "
                  "its prefix, such as 192.168.20.1/24 (the VDE guests' gateway)"], id='vde without address'),
    pytest.param(host('routed', [], tuntap_qemu_vde='192.168.20.1/24'),
                 ["hv: tuntap_qemu_vde: '192.168.20.1/24' is not a mapping such as {address: 192.168.20.1/24}"],
                 id='vde not a mapping'),
    pytest.param(vde_host('routed', [], {'adress': '192.168.20.1/24'}),
                 ["hv: tuntap_qemu_vde: unknown key 'adress'; it takes address, address6, tap, group"],
                 id='vde unknown key'),
    pytest.param(vde_host('routed', [], {'address6': 'fd00:20::1/80'}),
                 ["hv: tuntap_qemu_vde.address6: 'fd00:20::1/80' is a /80, but the host advertises the VDE network "
                  'for SLAAC (tuntap_qemu_dhcp), which needs exactly /64'], id='vde address6 /80 advertised'),
    pytest.param(vde_host('routed', [], {'address6': '192.168.21.1/24'}),
                 ["hv: tuntap_qemu_vde.address6: '192.168.21.1/24' is not an IPv6 address; write ADDRESS/PREFIX "
                  'such as fd00:1::10/64'], id='vde address6 IPv4'),
    pytest.param(vde_host('routed', [], {'tap': 'eth0'}),
                 ["hv: tuntap_qemu_vde.tap: 'eth0' is also the uplink (tuntap_qemu_uplink)"], id='vde tap the uplink'),
    pytest.param(vde_host('routed', [{'name': 'a', 'address': '192.168.30.10/24', 'tap': 'vde0'}]),
                 ["hv: tuntap_qemu_guests[0].tap: 'vde0' is also the tap of the VDE switch (tuntap_qemu_vde.tap) on "
                  'this host'], id='guest tap the switch tap'),
    pytest.param(vde_host('routed', [], {'tap': 'a/b'}),
                 ["hv: tuntap_qemu_vde.tap: interface name 'a/b' contains '/'; names may not contain '/', ':' or "
                  'whitespace'],
                 id='vde tap not an interface name'),
    pytest.param(vde_host('routed', [], tuntap_qemu_vde_runtime_dir='run/vde'),
                 ["hv: tuntap_qemu_vde_runtime_dir: 'run/vde' is not an absolute path"], id='runtime dir relative'),
])
def test_refused(variables, errors):
    assert errors_of(hv=variables) == errors


def test_a_routed_vde_subnet_is_unique_across_the_routed_hosts():
    errors = errors_of(
        hv1=host('routed', [{'name': 'a', 'address': '192.168.20.10/24'}]),
        hv2=vde_host('routed', [{'name': 'b', 'vde': True}], uplink='10.0.0.21/24'))
    assert errors == ["hv2: tuntap_qemu_vde.address: '192.168.20.1/24' is in 192.168.20.0/24, which overlaps "
                      '192.168.20.0/24 of hv1 a; routed guest subnets are routed on the LAN and unique across the '
                      'fleet (routed_nat ones may repeat on other hosts)']
    # Two routed switches on one subnet, the same.
    errors = errors_of(hv1=vde_host('routed', [{'name': 'a', 'vde': True}]),
                       hv2=vde_host('routed', [{'name': 'b', 'vde': True}], uplink='10.0.0.21/24'))
    assert errors == ["hv2: tuntap_qemu_vde.address: '192.168.20.1/24' is in 192.168.20.0/24, which overlaps "
                      '192.168.20.0/24 of hv1 the VDE switch (tuntap_qemu_vde); routed guest subnets are routed on '
                      'the LAN and unique across the fleet (routed_nat ones may repeat on other hosts)']


def test_another_routed_hosts_pool_skips_a_routed_vde_subnet():
    plan = plan_of(hv1=vde_host('routed', [], {'address': '192.168.0.1/24'}),
                   hv2=host('routed', [{'name': 'c'}], uplink='10.0.0.21/24', tuntap_qemu_pool='192.168.0.0/16'))
    assert plan['hv2']['guests'][0]['address'] == '192.168.1.2/24'


def test_a_vde_ipv6_network_is_unique_across_the_fleet():
    errors = errors_of(
        hv1=host('routed', [{'name': 'a', 'address': '192.168.30.10/24', 'address6': 'fd00:20::10/64'}]),
        hv2=vde_host('routed_nat', [], {'address6': 'fd00:20::1/64'}, uplink='10.0.0.21/24'))
    assert errors == ["hv2: tuntap_qemu_vde.address6: 'fd00:20::1/64' is in fd00:20::/64, which overlaps "
                      'fd00:20::/64 of hv1 a; IPv6 guest networks are unique across the fleet']


def test_a_vde_ipv6_network_is_no_tap_guest_network_of_its_host():
    guests = [{'name': 'a', 'address': '192.168.30.10/24', 'address6': 'fd00:20::10/64'}]
    assert errors_of(hv1=vde_host('routed', guests, {'address6': 'fd00:20::1/64'})) == [
        "hv1: tuntap_qemu_guests[0].address6: 'fd00:20::10/64' is in fd00:20::/64, which overlaps fd00:20::/64 of "
        'the VDE switch of hv1; IPv6 guest networks are unique across the fleet']
    # A pool6 plans the tap guests' /64s around it.
    spec = plan_of(hv1=vde_host('routed', [{'name': 'a', 'address': '192.168.30.10/24'}], {'address6': 'fd00:20::1/64'},
                                tuntap_qemu_pool6='fd00:20::/63'))['hv1']
    assert spec['taps'][0]['addresses'] == ['192.168.30.1/24', 'fd00:20:0:1::1/64']


def test_every_vde_error_of_the_fleet_at_once():
    errors = errors_of(
        hv1=host('routed', [{'name': 'a', 'vde': True}]),
        hv2=host('bridged_nat', [], uplink='10.0.0.21/24', tuntap_qemu_vde={'address': '192.168.20.1/24'}),
        hv3=vde_host('routed_nat', [{'name': 'b', 'vde': True, 'isolated': True}], uplink='10.0.0.22/24'))
    assert [error.split(':')[:2] for error in errors] == [
        ['hv1', ' tuntap_qemu_guests[0].vde'], ['hv2', ' tuntap_qemu_vde'], ['hv3', ' tuntap_qemu_guests[0].isolated']]
