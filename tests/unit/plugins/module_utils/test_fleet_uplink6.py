# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""tuntap_qemu_uplink_address6 (issue 13): the uplink's static IPv6 address in the plan's
uplink check (exact for bridged_lan, whose bridge takes it over and persists it), in
bridged_lan's bridge addresses, kept out of the guests' IPv6 networks; every bad input
refused with its exact error."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import planner as fleet

UPLINK6 = 'tuntap_qemu_uplink_address6'


def host(topology, **variables):
    """A host of `topology` with the lab's hv1 uplink (10.0.0.11/24, fd00:10::11/64)."""
    values = {'tuntap_qemu_topology': topology, 'tuntap_qemu_uplink_address': '10.0.0.11/24',
              UPLINK6: 'fd00:10::11/64', 'tuntap_qemu_guests': []}
    if topology == 'bridged_nat':
        values['tuntap_qemu_bridge_address'] = '192.168.100.1/24'
    values.update(variables)
    return dict((key, value) for key, value in values.items() if value is not None)


def hint(addresses, exact):
    text = 'hv1: the inventory (tuntap_qemu_uplink_address %s' % addresses[0]
    if len(addresses) > 1:
        text += ', tuntap_qemu_uplink_address6 %s' % addresses[1]
    text += ') is not what the host holds; nothing was changed. Correct the inventory'
    if exact:
        text += ', or set tuntap_qemu_uplink_readdress: true to change the host\'s address on purpose'
    return text


def check(addresses, exact, bridge=None):
    return {'name': 'eth0', 'bridge': bridge, 'addresses': addresses, 'gateway': None, 'exact': exact,
            'dhcp': False, 'hint': hint(addresses, exact)}


DUAL = ['10.0.0.11/24', 'fd00:10::11/64']
LEASE_AND_STATIC6 = {
    'name': 'eth0', 'bridge': None, 'addresses': ['fd00:10::11/64'], 'gateway': None, 'exact': False,
    'dhcp': False,
    'hint': 'hv1: the inventory (tuntap_qemu_uplink_address6 fd00:10::11/64) is not what the host holds; '
            'nothing was changed. Correct the inventory',
}
LAN_BRIDGE = {'name': 'br0', 'addresses': DUAL, 'ports': ['eth0'], 'uplink': 'eth0', 'gateway': None,
              'readdress': False, 'dhcp': False, 'isolated_ports': []}

# (id, host variables, uplink_check, bridge)
PLANS = [
    ('routed: checked beside the IPv4 address', host('routed'), check(DUAL, False), None),
    ('routed_nat', host('routed_nat'), check(DUAL, False), None),
    ('bridged_nat: checked, not on the internal bridge', host('bridged_nat'), check(DUAL, False),
     {'name': 'br0', 'addresses': ['192.168.100.1/24'], 'ports': [], 'uplink': None, 'gateway': None,
      'readdress': False, 'dhcp': False, 'isolated_ports': []}),
    ('bridged_lan: exact, moved to the bridge', host('bridged_lan'), check(DUAL, True, bridge='br0'), LAN_BRIDGE),
    ('bridged_lan readdressed: the bridge takes both', host('bridged_lan', tuntap_qemu_uplink_readdress=True),
     None, dict(LAN_BRIDGE, readdress=True)),
    ('normalized', host('routed', tuntap_qemu_uplink_address6='FD00:10:0::0011/64'), check(DUAL, False), None),
    ('without it: IPv4 only, as before', host('bridged_lan', tuntap_qemu_uplink_address6=None),
     check(['10.0.0.11/24'], True, bridge='br0'), dict(LAN_BRIDGE, addresses=['10.0.0.11/24'])),
    ('empty is none', host('routed', tuntap_qemu_uplink_address6=''), check(['10.0.0.11/24'], False), None),
    ('beside a DHCP lease: only the static IPv6 address is checked',
     host('routed_nat', tuntap_qemu_uplink_address='dhcp'), LEASE_AND_STATIC6, None),
    ('a DHCP lease without it: nothing checked',
     host('routed_nat', tuntap_qemu_uplink_address='dhcp', tuntap_qemu_uplink_address6=None), None, None),
]


@pytest.mark.parametrize('variables, uplink_check, bridge', [case[1:] for case in PLANS],
                         ids=[case[0] for case in PLANS])
def test_the_uplink_address6_in_the_plan(variables, uplink_check, bridge):
    plan, errors = fleet.plan_fleet({'hv1': copy.deepcopy(variables)})
    assert errors == []
    assert plan['hv1']['uplink_check'] == uplink_check
    assert plan['hv1']['bridge'] == bridge
    # It is the host's LAN address, not a guest network: nothing else of the plan changes.
    without = copy.deepcopy(variables)
    without.pop(UPLINK6, None)
    other, errors = fleet.plan_fleet({'hv1': without})
    assert errors == []
    for key in ('uplink_check', 'bridge'):
        del plan['hv1'][key], other['hv1'][key]
    assert plan == other


def test_pools_skip_the_uplinks_ipv6_subnet():
    inventory = {
        'hv1': host('routed', tuntap_qemu_pool='192.168.0.0/16', tuntap_qemu_pool6='fd00:10::/56',
                    tuntap_qemu_guests=[{'name': 'vm1'}]),
        # Another host's uplink in the same LAN /64 (it is shared), and one in the pool's
        # next /64: both are skipped.
        'hv2': host('routed_nat', tuntap_qemu_uplink_address='10.0.0.12/24',
                    tuntap_qemu_uplink_address6='fd00:10:0:1::12/64'),
    }
    plan, errors = fleet.plan_fleet(inventory)
    assert errors == []
    assert plan['hv1']['taps'][0]['addresses'] == ['192.168.0.1/24', 'fd00:10:0:2::1/64']
    assert plan['hv1']['guests'][0]['gateway6'] == 'fd00:10:0:2::1'


BAD = [
    ('not IPv6', {'hv1': host('routed', tuntap_qemu_uplink_address6='10.0.0.11/24')},
     "hv1: tuntap_qemu_uplink_address6: '10.0.0.11/24' is not an IPv6 address; write ADDRESS/PREFIX such as "
     "fd00:1::10/64"),
    ('without prefix', {'hv1': host('routed', tuntap_qemu_uplink_address6='fd00:10::11')},
     "hv1: tuntap_qemu_uplink_address6: 'fd00:10::11' is not an interface address; write ADDRESS/PREFIX, "
     "for example 192.168.0.1/24 or fd00::1/64"),
    ('link-local', {'hv1': host('routed', tuntap_qemu_uplink_address6='fe80::11/64')},
     "hv1: tuntap_qemu_uplink_address6: 'fe80::11/64' is not a global or unique local address; the kernel "
     "makes the uplink's link-local address itself"),
    ('the network address', {'hv1': host('bridged_lan', tuntap_qemu_uplink_address6='fd00:10::/64')},
     "hv1: tuntap_qemu_uplink_address6: 'fd00:10::/64' is the network address of its subnet, not a host "
     "address; did you mean fd00:10::1/64?"),
    ('with a DHCP lease on bridged_lan', {'hv1': host('bridged_lan', tuntap_qemu_uplink_address='dhcp')},
     "hv1: tuntap_qemu_uplink_address6: 'fd00:10::11/64' is given with tuntap_qemu_uplink_address: dhcp, but "
     "bridged_lan moves the DHCP client to the bridge, whose lease takes no static address beside it; leave "
     "it out (the bridge takes its IPv6 address by SLAAC from the LAN's router)"),
    ('used by two hosts', {'hv1': host('routed'), 'hv2': host('routed_nat', tuntap_qemu_uplink_address='10.0.0.12/24')},
     "hv2: tuntap_qemu_uplink_address6: 'fd00:10::11/64' is also used by hv1 (tuntap_qemu_uplink_address6); "
     "addresses on the LAN are unique across the fleet"),
    ('a routed guest network in the uplink subnet',
     {'hv1': host('routed', tuntap_qemu_guests=[{'name': 'vm1', 'address': '192.168.1.10/24',
                                                 'address6': 'fd00:10::10/64'}])},
     "hv1: tuntap_qemu_guests[0].address6: 'fd00:10::10/64' is in fd00:10::/64, which overlaps the uplink's "
     "IPv6 subnet fd00:10::/64 (tuntap_qemu_uplink_address6)"),
    ('a routed_nat guest network around the uplink subnet (NAT66 or not)',
     {'hv1': host('routed_nat', tuntap_qemu_nat6=True,
                  tuntap_qemu_guests=[{'name': 'vm1', 'address': '192.168.1.10/24', 'address6': 'fd00::10/16',
                                       'dhcp': False}])},
     "hv1: tuntap_qemu_guests[0].address6: 'fd00::10/16' is in fd00::/16, which overlaps the uplink's "
     "IPv6 subnet fd00:10::/64 (tuntap_qemu_uplink_address6)"),
    ('an IPv6-only routed guest in the uplink subnet',
     {'hv1': host('routed', tuntap_qemu_guests=[{'name': 'vm1', 'address': 'fd00:10::10/64'}])},
     "hv1: tuntap_qemu_guests[0].address: 'fd00:10::10/64' is in fd00:10::/64, which overlaps the uplink "
     "subnet fd00:10::/64 (tuntap_qemu_uplink_address6)"),
    ('the bridge /64 in the uplink subnet', {'hv1': host('bridged_nat', tuntap_qemu_bridge_address6='fd00:10::1/64')},
     "hv1: tuntap_qemu_bridge_address6: fd00:10::1/64 overlaps the uplink's IPv6 subnet fd00:10::/64 "
     "(tuntap_qemu_uplink_address6)"),
    ('the bridge /64 from a pool in the uplink subnet', {'hv1': host('bridged_nat', tuntap_qemu_pool6='fd00:10::/56')},
     "hv1: tuntap_qemu_pool6: fd00:10::1/64 overlaps the uplink's IPv6 subnet fd00:10::/64 "
     "(tuntap_qemu_uplink_address6)"),
]


@pytest.mark.parametrize('inventory, error', [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_a_bad_uplink_address6_is_refused_with_its_error(inventory, error):
    plan, errors = fleet.plan_fleet(copy.deepcopy(inventory))
    assert plan is None
    assert errors == [error]


def test_every_uplink_address6_error_of_the_fleet_at_once():
    plan, errors = fleet.plan_fleet({
        'hv1': host('routed', tuntap_qemu_uplink_address6='fe80::11/64'),
        'hv2': host('bridged_lan', tuntap_qemu_uplink_address='dhcp', tuntap_qemu_uplink_address6='fd00:10::12/64'),
        'hv3': host('bridged_nat', tuntap_qemu_uplink_address='10.0.0.13/24', tuntap_qemu_uplink_address6='fd00:3::13/64',
                    tuntap_qemu_bridge_address6='fd00:3::1/64'),
    })
    assert plan is None
    assert errors == [
        "hv1: tuntap_qemu_uplink_address6: 'fe80::11/64' is not a global or unique local address; the kernel "
        "makes the uplink's link-local address itself",
        "hv2: tuntap_qemu_uplink_address6: 'fd00:10::12/64' is given with tuntap_qemu_uplink_address: dhcp, but "
        "bridged_lan moves the DHCP client to the bridge, whose lease takes no static address beside it; leave "
        "it out (the bridge takes its IPv6 address by SLAAC from the LAN's router)",
        "hv3: tuntap_qemu_bridge_address6: fd00:3::1/64 overlaps the uplink's IPv6 subnet fd00:3::/64 "
        "(tuntap_qemu_uplink_address6)",
    ]
