# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""uplink_check: the host's uplink compared with the inventory before anything changes."""

from __future__ import annotations

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._links import dhcp_client, uplink_check


def link(name, kind, addresses=(), master=None):
    return {'name': name, 'kind': kind, 'addresses': list(addresses), 'master': master}


ROUTE = {'family': 4, 'dst': 'default', 'gateway': '10.44.0.1', 'metric': None, 'proto': 3,
         'scope': 0, 'onlink': True}
STATIC = {'family': 4, 'dst': '10.9.0.0/16', 'gateway': '10.44.0.2', 'metric': None, 'proto': 4,
          'scope': 0, 'onlink': False}
BEFORE = {'eth0': link('eth0', None, ['10.44.0.50/24'])}
AFTER = {'eth0': link('eth0', None, [], master='br0'), 'br0': link('br0', 'bridge', ['10.44.0.50/24'])}
TWO = {'eth0': link('eth0', None, ['10.44.0.50/24', '10.44.0.51/24'])}


def spec(**values):
    base = {'name': 'eth0', 'bridge': None, 'addresses': None, 'gateway': None, 'exact': False}
    base.update(values)
    return base


@pytest.mark.parametrize('snapshot, bridge, holder', [
    (BEFORE, None, 'eth0'),
    (BEFORE, 'br0', 'eth0'),
    (AFTER, 'br0', 'br0'),
    (AFTER, None, 'br0'),
    (AFTER, 'br1', 'eth0'),
    ({}, None, None),
])
def test_lan_holder(snapshot, bridge, holder):
    assert uplink_check.lan_holder(snapshot, 'eth0', bridge) == holder


@pytest.mark.parametrize('snapshot, routes, values', [
    (BEFORE, [ROUTE], {'addresses': ['10.44.0.50/24']}),
    (BEFORE, [ROUTE], {'addresses': ['10.44.0.50/24'], 'gateway': '10.44.0.1', 'exact': True}),
    (AFTER, [ROUTE], {'bridge': 'br0', 'addresses': ['10.44.0.50/24'], 'gateway': '10.44.0.1', 'exact': True}),
    (TWO, [ROUTE, STATIC], {'addresses': ['10.44.0.51/24']}),   # NAT topologies: one of them
    (BEFORE, [], {'addresses': ['10.44.0.50/24'], 'exact': True}),
    (BEFORE, [ROUTE], {}),
])
def test_matching_uplinks_pass(snapshot, routes, values):
    facts, errors = uplink_check.check_uplink(snapshot, routes, spec(**values))
    assert errors == []
    assert facts['exists'] is True


@pytest.mark.parametrize('snapshot, routes, values, message', [
    (BEFORE, [ROUTE], {'addresses': ['10.45.0.50/24'], 'gateway': '10.45.0.1'},
     'eth0 holds 10.44.0.50/24, not 10.45.0.50/24'),
    (BEFORE, [ROUTE], {'addresses': ['10.45.0.50/24'], 'gateway': '10.45.0.1'},
     'the default route of eth0 is via 10.44.0.1, not 10.45.0.1'),
    (BEFORE, [ROUTE], {'addresses': ['10.44.0.50/25']}, 'eth0 holds 10.44.0.50/24, not 10.44.0.50/25'),
    (AFTER, [ROUTE], {'bridge': 'br0', 'addresses': ['10.45.0.50/24'], 'exact': True},
     'eth0 (through the bridge br0, which holds its addresses) holds 10.44.0.50/24, not 10.45.0.50/24'),
    (TWO, [ROUTE], {'addresses': ['10.44.0.50/24'], 'gateway': '10.44.0.1', 'exact': True},
     'eth0 also holds 10.44.0.51/24, which would move to the bridge now but not come back at boot'),
    (BEFORE, [ROUTE, STATIC], {'addresses': ['10.44.0.50/24'], 'gateway': '10.44.0.1', 'exact': True},
     'eth0 has the route(s) 10.9.0.0/16 via 10.44.0.2, which would move to the bridge now but not come '
     'back at boot'),
    (BEFORE, [ROUTE], {'addresses': ['10.44.0.50/24'], 'exact': True},
     'eth0 has the default route via 10.44.0.1, which would move to the bridge now but not come back at '
     'boot without the gateway'),
    (BEFORE, [], {'gateway': '10.44.0.1'}, 'eth0 has no IPv4 default route, but the gateway is 10.44.0.1'),
    ({}, [], {'addresses': ['10.44.0.50/24']}, 'eth0: no such interface on this host'),
])
def test_mismatches_are_errors(snapshot, routes, values, message):
    _facts, errors = uplink_check.check_uplink(snapshot, routes, spec(**values))
    assert message in errors, errors


def test_facts_say_what_the_host_holds():
    facts, _errors = uplink_check.check_uplink(AFTER, [ROUTE], spec(bridge='br0'))
    assert facts == {'name': 'eth0', 'exists': True, 'holder': 'br0', 'master': 'br0',
                     'addresses': ['10.44.0.50/24'], 'autoconf': [], 'gateway': '10.44.0.1',
                     'routes': ['default via 10.44.0.1 onlink']}


def slaac(record, static6=()):
    """`record` as it is on a LAN whose router advertises fd00:10::/64: the kernel's SLAAC
    address and a temporary one (the snapshot's autoconf), and maybe static IPv6 ones."""
    return dict(record, addresses=sorted(record['addresses'] + list(static6)),
                autoconf={'fd00:10::a4ed:5eff:fe0c:623d/64': 'slaac',
                          'fd00:10::49e7:38a:650d:e9d2/64': 'temporary'})


SLAAC_BEFORE = {'eth0': slaac(BEFORE['eth0'])}
SLAAC_AFTER = {'eth0': AFTER['eth0'], 'br0': slaac(AFTER['br0'])}


@pytest.mark.parametrize('snapshot, values', [
    pytest.param(SLAAC_BEFORE, {}, id='uplink'),
    pytest.param(SLAAC_AFTER, {'bridge': 'br0'}, id='through the bridge'),
])
def test_an_exact_check_leaves_the_kernels_slaac_addresses_out(snapshot, values):
    facts, errors = uplink_check.check_uplink(snapshot, [ROUTE], spec(
        addresses=['10.44.0.50/24'], gateway='10.44.0.1', exact=True, **values), {})
    assert errors == []
    assert facts['addresses'] == ['10.44.0.50/24']
    assert facts['autoconf'] == ['fd00:10::49e7:38a:650d:e9d2/64', 'fd00:10::a4ed:5eff:fe0c:623d/64']


def test_a_static_ipv6_address_beside_slaac_is_still_counted():
    snapshot = {'eth0': slaac(BEFORE['eth0'], ['fd00:10::11/64'])}
    _facts, errors = uplink_check.check_uplink(snapshot, [ROUTE], spec(
        addresses=['10.44.0.50/24'], gateway='10.44.0.1', exact=True), {})
    assert errors == ['eth0 also holds fd00:10::11/64, which would move to the bridge now but not '
                      'come back at boot']
    _facts, errors = uplink_check.check_uplink(snapshot, [ROUTE], spec(
        addresses=['10.44.0.50/24', 'fd00:10::11/64'], gateway='10.44.0.1', exact=True), {})
    assert errors == []


def test_a_port_with_stale_slaac_addresses_alone_lets_the_bridge_hold_the_lan():
    snapshot = {'eth0': slaac(AFTER['eth0']), 'br0': AFTER['br0']}
    assert uplink_check.lan_holder(snapshot, 'eth0', 'br0') == 'br0'


@pytest.mark.parametrize('params, message', [
    ({'name': 'eth/0'}, "name: interface name 'eth/0' contains '/'"),
    ({'name': 'eth0', 'addresses': ['10.0.0.1']}, "addresses[0]: '10.0.0.1' is not an interface address"),
    ({'name': 'eth0', 'gateway': 'fd00::1'}, "gateway: 'fd00::1' is not an IPv4 address"),
    ({'name': 'eth0', 'gateway': 'x'}, "gateway: 'x' is not an IP address"),
])
def test_spec_errors(params, message):
    errors = uplink_check.spec_errors(params)
    assert any(error.startswith(message) for error in errors), errors


# ---------------------------------------------------------------- DHCP uplinks (issue 11)

def leased(record, address='10.44.0.50/24', valid=3599):
    return dict(record, dynamic={address: {'valid': valid, 'preferred': valid}})


DHCLIENT = dhcp_client.Client(812, ('/sbin/dhclient', '-4', '-v', '-pf', '/run/dhclient.eth0.pid', 'eth0'),
                              'dhclient', '/run/dhclient.eth0.pid', None)
LEASE_BEFORE = {'eth0': leased(BEFORE['eth0'])}
LEASE_AFTER = {'eth0': AFTER['eth0'], 'br0': leased(AFTER['br0'])}


@pytest.mark.parametrize('snapshot, clients, holder', [
    pytest.param(LEASE_BEFORE, {'eth0': [DHCLIENT]}, 'eth0', id='lease and client on the uplink'),
    pytest.param(LEASE_AFTER, {'br0': [DHCLIENT]}, 'br0', id='lease and client on the bridge after the takeover'),
])
def test_dhcp_lease_passes(snapshot, clients, holder):
    facts, errors = uplink_check.check_uplink(snapshot, [ROUTE], spec(bridge='br0', dhcp=True, addresses=[]),
                                              clients)
    assert errors == []
    assert facts['holder'] == holder and facts['lease'] == '10.44.0.50/24'
    assert facts['dhcp_client']['pid'] == 812 and facts['dhcp_client']['program'] == 'dhclient'


@pytest.mark.parametrize('snapshot, clients, messages', [
    pytest.param(BEFORE, {'eth0': [DHCLIENT]}, ['eth0 holds 10.44.0.50/24, no DHCP lease'], id='static address'),
    pytest.param(LEASE_BEFORE, {}, ['no DHCP client (dhclient, dhcpcd, udhcpc) runs on eth0'], id='no client'),
    pytest.param(LEASE_AFTER, {'br0': []}, ['no DHCP client (dhclient, dhcpcd, udhcpc) runs on br0'],
                 id='client still on the port'),
    pytest.param({'eth0': link('eth0', None, [])}, {},
                 ['eth0 holds no address, no DHCP lease', 'no DHCP client'], id='nothing'),
    pytest.param({}, {}, ['eth0: no such interface'], id='no uplink'),
])
def test_dhcp_lease_missing_fails(snapshot, clients, messages):
    _facts, errors = uplink_check.check_uplink(snapshot, [], spec(bridge='br0', dhcp=True), clients)
    assert len(errors) == len(messages), errors
    for message, error in zip(messages, errors):
        assert error.startswith(message), (message, error)


@pytest.mark.parametrize('snapshot, clients, message', [
    pytest.param(LEASE_BEFORE, {'eth0': [DHCLIENT]},
                 'eth0 holds 10.44.0.50/24 as a DHCP lease (dhclient pid 812); set tuntap_qemu_uplink_address: dhcp',
                 id='lease and client'),
    pytest.param(LEASE_BEFORE, {},
                 'eth0 holds 10.44.0.50/24 as a DHCP lease; set tuntap_qemu_uplink_address: dhcp', id='lease only'),
    pytest.param(BEFORE, {'eth0': [DHCLIENT]},
                 'eth0 has a DHCP client (dhclient pid 812); set tuntap_qemu_uplink_address: dhcp', id='client only'),
])
def test_exact_static_check_refuses_a_lease(snapshot, clients, message):
    _facts, errors = uplink_check.check_uplink(
        snapshot, [ROUTE], spec(addresses=['10.44.0.50/24'], gateway='10.44.0.1', exact=True), clients)
    assert errors == [message]


def test_a_lease_is_not_refused_by_a_check_that_keeps_the_uplink():
    _facts, errors = uplink_check.check_uplink(LEASE_BEFORE, [ROUTE], spec(addresses=['10.44.0.50/24']),
                                               {'eth0': [DHCLIENT]})
    assert errors == []


def test_dhcp_with_addresses_is_a_bad_request():
    assert uplink_check.spec_errors(spec(dhcp=True, addresses=['10.44.0.50/24'])) == [
        'dhcp: a lease is checked, not addresses or gateway; give neither']
