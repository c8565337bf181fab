# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan computation for taps and bridges over plain snapshots (no kernel)."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._links import applying, planning, reading
from ansible_collections.tuntap.qemu.plugins.module_utils._links import specs as link_specs
from ansible_collections.tuntap.qemu.plugins.module_utils._links.actions import (
    AddrAdd, AddrDel, BridgeCreate, Delete, DhcpMove, LinkSet, PortIsolate, RouteDel, RouteReplace, Solicit, Tun)


TAP_MARK = 'tuntap.qemu:tap'
BRIDGE_MARK = 'tuntap.qemu:bridge'


def link(name, ifindex, kind, **fields):
    record = {'name': name, 'ifindex': ifindex, 'kind': kind, 'mac': '02:00:00:00:00:%02x' % ifindex,
              'mtu': 1500, 'state': 'up', 'operstate': 'up', 'master_index': 0, 'master': None,
              'addresses': []}
    if kind == 'tun':
        record.update({'mode': 'tap', 'owner': None, 'group': None, 'multi_queue': False,
                       'vnet_hdr': False, 'persist': True, 'carrier': False, 'alias': TAP_MARK})
    if kind == 'bridge':
        record.update({'stp': False, 'forward_delay': 15, 'alias': BRIDGE_MARK})
    record.update(fields)
    return record


SNAPSHOT = {
    'lo': link('lo', 1, None, mtu=65536),
    'eth0': link('eth0', 2, 'veth', addresses=['10.0.0.2/24']),
    'br0': link('br0', 3, 'bridge', addresses=['192.168.0.1/24']),
    'tap0': link('tap0', 4, 'tun', owner=1000, master='br0', master_index=3),
    'tap1': link('tap1', 5, 'tun', addresses=['192.168.1.1/24']),
    'br1': link('br1', 6, 'bridge', alias=None),  # an admin's bridge: no mark
    'veth9': link('veth9', 7, 'veth', master='br1', master_index=6),
}


def tap_params(**params):
    base = {'name': None, 'names': None, 'devices': None, 'mode': 'tap', 'user': None,
            'group': None, 'multi_queue': None, 'vnet_hdr': None, 'mtu': None,
            'addresses': None, 'link_state': 'up', 'bridge': None, 'state': 'present'}
    base.update(params)
    return base


def plan_taps(params, snapshot=None):
    specs, errors = link_specs.tap_specs(tap_params(**params))
    assert errors == []
    plan = planning.LinkPlan(copy.deepcopy(snapshot or SNAPSHOT))
    for spec in specs:
        planning.plan_tap(plan, spec)
    return plan


@pytest.mark.parametrize('params, actions', [
    # a new tap: create, bring up
    ({'name': 'tap7'}, [Tun('tap7', 'tap', None, None, False, False),
                        LinkSet('tap7', {'state': 'up', 'alias': TAP_MARK})]),
    # a new tap owned by root with an address and a bridge
    ({'name': 'tap7', 'user': '0', 'addresses': ['192.168.7.1/24'], 'bridge': 'br0'},
     [Tun('tap7', 'tap', 0, None, False, False),
      LinkSet('tap7', {'master': 'br0', 'state': 'up', 'alias': TAP_MARK}),
      AddrAdd('tap7', '192.168.7.1/24')]),
    # existing and equal: nothing (owner unmanaged)
    ({'name': 'tap0'}, []),
    ({'name': 'tap0', 'user': '1000', 'bridge': 'br0'}, []),
    # owner change re-attaches
    ({'name': 'tap0', 'user': '0'}, [Tun('tap0', 'tap', 0, None, False, False)]),
    # address list is authoritative
    ({'name': 'tap1', 'addresses': ['192.168.2.1/24']},
     [AddrDel('tap1', '192.168.1.1/24'), AddrAdd('tap1', '192.168.2.1/24')]),
    ({'name': 'tap1', 'addresses': []}, [AddrDel('tap1', '192.168.1.1/24')]),
    # release from bridge, mtu, down
    ({'name': 'tap0', 'bridge': '', 'mtu': 9000, 'link_state': 'down'},
     [LinkSet('tap0', {'master': '', 'mtu': 9000, 'state': 'down'})]),
    # mode change recreates and restores the managed settings
    ({'name': 'tap1', 'mode': 'tun'},
     [Delete('tap1'), Tun('tap1', 'tun', None, None, False, False),
      LinkSet('tap1', {'state': 'up', 'alias': TAP_MARK}), AddrAdd('tap1', '192.168.1.1/24')]),
    # multi_queue change recreates
    ({'name': 'tap0', 'multi_queue': True},
     [Delete('tap0'), Tun('tap0', 'tap', 1000, None, True, False),
      LinkSet('tap0', {'master': 'br0', 'state': 'up', 'alias': TAP_MARK})]),
    ({'name': 'tap0', 'state': 'absent'}, [Delete('tap0')]),
    ({'name': 'tap9', 'state': 'absent'}, []),
])
def test_plan_tap_actions(params, actions):
    plan = plan_taps(params)
    assert plan.errors == []
    assert plan.actions == actions
    assert plan.changed == bool(actions)
    assert bool(plan.before or plan.after) == bool(actions)


def test_batch_only_missing_device_is_changed():
    plan = plan_taps({'names': ['tap0', 'tap1', 'tap2'], 'bridge': 'br0'})
    assert list(plan.changed_names) == ['tap1', 'tap2']
    assert plan.before == {'tap1': dict((f, SNAPSHOT['tap1'][f]) for f in planning.TAP_FIELDS),
                           'tap2': None}
    assert plan.after['tap2']['master'] == 'br0'


def test_devices_inherit_top_level_options():
    specs, errors = link_specs.tap_specs(tap_params(
        user='0', mtu=1400, devices=[{'name': 'tap0'}, {'name': 'tap1', 'mtu': 9000, 'user': None}]))
    assert errors == []
    assert [(s['name'], s['owner'], s['mtu']) for s in specs] == [('tap0', 0, 1400), ('tap1', 0, 9000)]


@pytest.mark.parametrize('params, message', [
    ({'name': 'a-very-long-tap-name'}, "name: interface name 'a-very-long-tap-name' is 20 bytes long"),
    ({'names': ['tap0', 'bad/name']}, "names[1]: interface name 'bad/name' contains '/'"),
    ({'names': ['tap0', 'tap0']}, "names[1]: 'tap0' is listed twice (also at names[0])"),
    ({'devices': [{'name': 'tap0'}, {'name': 'tap 1'}]}, "devices[1].name: interface name 'tap 1'"),
    ({'devices': [{'name': 'tap0', 'addresses': ['10.0.0.0/24']}]},
     "devices[0].addresses[0]: '10.0.0.0/24' is the network address"),
    ({'name': 'tap0', 'user': 'no-such-user-xyz'}, "user: unknown user 'no-such-user-xyz'"),
    ({'name': 'tap0', 'group': 'no-such-group-xyz'}, "group: unknown group 'no-such-group-xyz'"),
    ({'name': 'tap0', 'mtu': 20}, 'mtu: MTU 20 is outside 68-65535'),
    ({'name': 'tap0', 'bridge': 'tap0'}, "bridge: 'tap0' is the tap itself"),
])
def test_tap_spec_errors(params, message):
    _specs, errors = link_specs.tap_specs(tap_params(**params))
    assert any(message in error for error in errors), errors


@pytest.mark.parametrize('params, message', [
    ({'name': 'eth0'}, "name: a link named 'eth0' already exists and is a veth, not a tap/tun device"),
    ({'name': 'br0', 'state': 'absent'}, "a link named 'br0' already exists and is a bridge"),
    ({'name': 'tap7', 'bridge': 'nobr'}, "bridge: bridge 'nobr' does not exist"),
    ({'name': 'tap7', 'bridge': 'eth0'}, "bridge: 'eth0' is a veth, not a bridge"),
    ({'devices': [{'name': 'tap7'}, {'name': 'lo'}]},
     "devices[1].name: a link named 'lo' already exists and is a physical device"),
])
def test_plan_tap_errors(params, message):
    specs, errors = link_specs.tap_specs(tap_params(**params))
    assert errors == []
    plan = planning.LinkPlan(copy.deepcopy(SNAPSHOT))
    for spec in specs:
        planning.plan_tap(plan, spec)
    assert any(message in error for error in plan.errors), plan.errors


def bridge_params(**params):
    base = {'name': 'br0', 'state': 'present', 'ports': None, 'exclusive': False,
            'move_ports': False, 'stp': None, 'forward_delay': None, 'mtu': None,
            'link_state': 'up', 'addresses': None, 'uplink': None}
    base.update(params)
    return base


def plan_bridge(**params):
    spec, errors = link_specs.bridge_spec(bridge_params(**params))
    assert errors == []
    plan = planning.LinkPlan(copy.deepcopy(SNAPSHOT))
    planning.plan_bridge(plan, spec)
    return plan


@pytest.mark.parametrize('params, actions', [
    ({}, []),
    ({'ports': ['tap0']}, []),
    ({'ports': ['tap1']}, [LinkSet('tap1', {'master': 'br0'})]),
    ({'ports': ['tap1'], 'exclusive': True},
     [LinkSet('tap1', {'master': 'br0'}), LinkSet('tap0', {'master': ''})]),
    ({'ports': [], 'exclusive': True}, [LinkSet('tap0', {'master': ''})]),
    ({'stp': True, 'forward_delay': 4}, [LinkSet('br0', {'stp': True, 'forward_delay': 4})]),
    ({'addresses': ['192.168.0.1/24', 'fd00::1/64']}, [AddrAdd('br0', 'fd00::1/64')]),
    ({'name': 'br5', 'addresses': ['192.168.5.1/24'], 'forward_delay': 0, 'ports': ['tap1']},
     [BridgeCreate('br5', {'forward_delay': 0}), LinkSet('br5', {'state': 'up', 'alias': BRIDGE_MARK}),
      AddrAdd('br5', '192.168.5.1/24'), LinkSet('tap1', {'master': 'br5'})]),
    ({'ports': ['veth9'], 'move_ports': True}, [LinkSet('veth9', {'master': 'br0'})]),
    ({'state': 'absent'}, [Delete('br0')]),
    ({'name': 'br9', 'state': 'absent'}, []),
])
def test_plan_bridge_actions(params, actions):
    plan = plan_bridge(**params)
    assert plan.errors == []
    assert plan.actions == actions


@pytest.mark.parametrize('params, message', [
    ({'ports': ['nosuch']}, "ports[0]: port 'nosuch' does not exist"),
    ({'ports': ['tap1', 'veth9']},
     "ports[1]: 'veth9' is already a port of bridge 'br1'; set move_ports=true"),
    ({'ports': ['br1']}, "ports[0]: 'br1' is a bridge"),
    ({'ports': ['br0']}, "ports[0]: 'br0' is the bridge itself"),
    ({'name': 'eth0'}, "name: a link named 'eth0' already exists and is a veth, not a bridge"),
])
def test_plan_bridge_errors(params, message):
    plan = plan_bridge(**params)
    assert plan.actions == []
    assert any(message in error for error in plan.errors), plan.errors


@pytest.mark.parametrize('params, message', [
    ({'name': 'br/0'}, "name: interface name 'br/0' contains '/'"),
    ({'ports': ['tap0', 'tap0']}, "ports[1]: 'tap0' is listed twice"),
    ({'ports': ['x' * 16]}, 'ports[0]: interface name'),
    ({'forward_delay': 31}, 'forward_delay: 31 seconds is outside 0-30'),
    ({'forward_delay': 1, 'stp': True}, 'forward_delay: 1 seconds is below 2'),
    ({'addresses': ['192.168.0.1']}, "addresses[0]: '192.168.0.1' is not an interface address"),
])
def test_bridge_spec_errors(params, message):
    _spec, errors = link_specs.bridge_spec(bridge_params(**params))
    assert any(message in error for error in errors), errors


def test_tap_can_join_bridge_created_in_same_plan():
    plan = planning.LinkPlan(copy.deepcopy(SNAPSHOT))
    spec, _errors = link_specs.bridge_spec(bridge_params(name='br5'))
    planning.plan_bridge(plan, spec)
    specs, _errors = link_specs.tap_specs(tap_params(name='tap7', bridge='br5'))
    planning.plan_tap(plan, specs[0])
    assert plan.errors == []
    assert LinkSet('tap7', {'master': 'br5', 'state': 'up', 'alias': TAP_MARK}) in plan.actions


DEFAULT_ROUTE = {'family': 4, 'dst': 'default', 'gateway': '10.0.0.1', 'metric': 5, 'proto': 3, 'scope': 0}


def test_uplink_takeover_moves_addresses_and_routes_in_a_safe_order():
    spec, errors = link_specs.bridge_spec(bridge_params(name='br5', uplink='eth0', ports=['tap1'], forward_delay=0))
    assert errors == [] and spec['ports'] == ['tap1', 'eth0']
    spec['uplink_routes'] = [DEFAULT_ROUTE]
    plan = planning.LinkPlan(copy.deepcopy(SNAPSHOT))
    planning.plan_bridge(plan, spec)
    assert plan.errors == []
    assert plan.actions == [
        BridgeCreate('br5', {'forward_delay': 0, 'mac': SNAPSHOT['eth0']['mac']}),
        LinkSet('br5', {'state': 'up', 'alias': 'tuntap.qemu:bridge uplink=eth0'}),
        AddrAdd('br5', '10.0.0.2/24'),
        LinkSet('eth0', {'master': 'br5'}),
        LinkSet('tap1', {'master': 'br5'}),
        RouteReplace('br5', DEFAULT_ROUTE),
        AddrDel('eth0', '10.0.0.2/24'),
    ]
    assert plan.before['eth0'] == {'addresses': ['10.0.0.2/24'], 'routes': ['default via 10.0.0.1 metric 5']}
    assert plan.after['eth0'] == {'addresses': [], 'routes': []}


def test_uplink_takeover_done_is_unchanged():
    snapshot = copy.deepcopy(SNAPSHOT)
    snapshot['br5'] = link('br5', 8, 'bridge', addresses=['10.0.0.2/24'], forward_delay=0,
                           alias='tuntap.qemu:bridge uplink=eth0')
    snapshot['eth0'].update(addresses=[], master='br5', master_index=8)
    snapshot['tap1'].update(master='br5', master_index=8)
    spec, _errors = link_specs.bridge_spec(bridge_params(name='br5', uplink='eth0', ports=['tap1'], forward_delay=0))
    spec['uplink_routes'] = []
    plan = planning.LinkPlan(snapshot)
    planning.plan_bridge(plan, spec)
    assert (plan.errors, plan.actions) == ([], [])


# ---------------------------------------------------------------- a LAN with SLAAC (issue 13)

SLAAC = 'fd00:10::a4ed:5eff:fe0c:623d/64'
TEMPORARY = 'fd00:10::49e7:38a:650d:e9d2/64'
RA_PREFIX = {'family': 6, 'dst': 'fd00:10::/64', 'gateway': None, 'metric': 256, 'proto': 2,
             'scope': 0, 'onlink': False}
RA_DEFAULT = {'family': 6, 'dst': 'default', 'gateway': 'fe80::1', 'metric': 1024, 'proto': 9,
              'scope': 0, 'onlink': False}
STATIC6 = 'fd00:10::11/64'


def slaac_snapshot(static6=False):
    snapshot = copy.deepcopy(SNAPSHOT)
    snapshot['eth0']['autoconf'] = {SLAAC: 'slaac', TEMPORARY: 'temporary'}
    if static6:
        snapshot['eth0']['addresses'] = sorted(snapshot['eth0']['addresses'] + [STATIC6])
    return snapshot


def slaac_takeover(snapshot, ra_routes=(RA_PREFIX, RA_DEFAULT), bridge_routes=(), **params):
    spec, errors = link_specs.bridge_spec(bridge_params(name='br5', uplink='eth0', ports=['tap1'],
                                                        forward_delay=0, **params))
    assert errors == []
    spec['uplink_routes'] = [DEFAULT_ROUTE]
    spec['uplink_ra_routes'] = list(ra_routes)
    spec['bridge_routes'] = list(bridge_routes)
    plan = planning.LinkPlan(snapshot)
    planning.plan_bridge(plan, spec)
    return plan


def test_takeover_lets_the_kernels_slaac_addresses_and_ra_routes_go_and_solicits():
    plan = slaac_takeover(slaac_snapshot(), addresses=['10.0.0.2/24'], gateway='10.0.0.1')
    assert plan.errors == []
    assert plan.actions == [
        BridgeCreate('br5', {'forward_delay': 0, 'mac': SNAPSHOT['eth0']['mac']}),
        LinkSet('br5', {'state': 'up', 'alias': 'tuntap.qemu:bridge uplink=eth0'}),
        AddrAdd('br5', '10.0.0.2/24'),
        LinkSet('eth0', {'master': 'br5'}),
        LinkSet('tap1', {'master': 'br5'}),
        RouteReplace('br5', DEFAULT_ROUTE),
        AddrDel('eth0', TEMPORARY, gone_ok=True),   # before the SLAAC address it was made from
        AddrDel('eth0', SLAAC, gone_ok=True),       # before a static address of its prefix
        AddrDel('eth0', '10.0.0.2/24'),
        RouteDel('eth0', RA_PREFIX),
        RouteDel('eth0', RA_DEFAULT),
        Solicit('br5'),
    ]
    assert not any(isinstance(action, AddrAdd) and ':' in action.address for action in plan.actions)
    assert plan.after['br5']['addresses'] == ['10.0.0.2/24']
    assert plan.before['eth0']['autoconf'] == {'addresses': [TEMPORARY, SLAAC],
                                               'routes': ['fd00:10::/64 metric 256',
                                                          'default via fe80::1 metric 1024']}
    assert plan.after['eth0']['autoconf'] == {'addresses': [], 'routes': []}


def test_takeover_moves_a_static_ipv6_address_beside_slaac():
    plan = slaac_takeover(slaac_snapshot(static6=True), addresses=['10.0.0.2/24', STATIC6],
                          gateway='10.0.0.1')
    assert plan.errors == []
    assert AddrAdd('br5', STATIC6) in plan.actions
    assert AddrDel('eth0', STATIC6) in plan.actions
    # the static address goes after the SLAAC one of its prefix, and takes its prefix route along
    assert plan.actions.index(AddrDel('eth0', SLAAC, gone_ok=True)) < plan.actions.index(AddrDel('eth0', STATIC6))
    assert plan.actions.index(AddrAdd('br5', STATIC6)) < plan.actions.index(LinkSet('eth0', {'master': 'br5'}))
    assert plan.after['br5']['addresses'] == ['10.0.0.2/24', STATIC6]


def test_takeover_of_an_uplink_without_ipv6_router_does_not_solicit():
    plan = slaac_takeover(copy.deepcopy(SNAPSHOT), ra_routes=())
    assert not any(isinstance(action, (Solicit, RouteDel)) for action in plan.actions)


def test_takeover_done_with_slaac_on_the_bridge_is_unchanged():
    snapshot = copy.deepcopy(SNAPSHOT)
    snapshot['br5'] = link('br5', 8, 'bridge', addresses=['10.0.0.2/24'], forward_delay=0,
                           alias='tuntap.qemu:bridge uplink=eth0', autoconf={SLAAC: 'slaac'})
    snapshot['eth0'].update(addresses=[], master='br5', master_index=8)
    snapshot['tap1'].update(master='br5', master_index=8)
    plan = slaac_takeover(snapshot, ra_routes=(), bridge_routes=[DEFAULT_ROUTE], addresses=['10.0.0.2/24'],
                          gateway='10.0.0.1')
    assert (plan.errors, plan.actions) == ([], [])


def test_a_port_still_holding_slaac_lets_it_go():
    snapshot = copy.deepcopy(SNAPSHOT)
    snapshot['br5'] = link('br5', 8, 'bridge', addresses=['10.0.0.2/24'], forward_delay=0,
                           alias='tuntap.qemu:bridge uplink=eth0', autoconf={SLAAC: 'slaac'})
    snapshot['eth0'].update(addresses=[], master='br5', master_index=8, autoconf={SLAAC: 'slaac'})
    snapshot['tap1'].update(master='br5', master_index=8)
    plan = slaac_takeover(snapshot, ra_routes=(RA_DEFAULT,))
    assert plan.actions == [AddrDel('eth0', SLAAC, gone_ok=True), RouteDel('eth0', RA_DEFAULT), Solicit('br5')]


def test_give_back_leaves_the_bridges_slaac_and_solicits_on_the_uplink():
    snapshot = copy.deepcopy(SNAPSHOT)
    snapshot['br5'] = link('br5', 8, 'bridge', addresses=['10.0.0.2/24', STATIC6], forward_delay=0,
                           alias='tuntap.qemu:bridge uplink=eth0',
                           autoconf={SLAAC: 'slaac', TEMPORARY: 'temporary'})
    snapshot['eth0'].update(addresses=[], master='br5', master_index=8)
    plan = planning.LinkPlan(snapshot)
    assert planning.remove_bridge(plan, 'br5', [DEFAULT_ROUTE]) is True
    assert plan.actions == [
        AddrAdd('eth0', '10.0.0.2/24'),
        AddrAdd('eth0', STATIC6, nodad=True),
        LinkSet('eth0', {'master': ''}),
        RouteReplace('eth0', DEFAULT_ROUTE),
        AddrDel('br5', '10.0.0.2/24'),
        AddrDel('br5', STATIC6),
        Solicit('eth0'),
        Delete('br5'),
    ]


def test_give_back_without_slaac_does_not_solicit():
    snapshot = copy.deepcopy(SNAPSHOT)
    snapshot['br5'] = link('br5', 8, 'bridge', addresses=['10.0.0.2/24'], forward_delay=0,
                           alias='tuntap.qemu:bridge uplink=eth0')
    snapshot['eth0'].update(addresses=[], master='br5', master_index=8)
    plan = planning.LinkPlan(snapshot)
    planning.remove_bridge(plan, 'br5', [])
    assert not any(isinstance(action, Solicit) for action in plan.actions)


@pytest.mark.parametrize('route, text', [
    (DEFAULT_ROUTE, 'default via 10.0.0.1 metric 5'),
    ({'family': 6, 'dst': 'fd01::/64', 'gateway': None, 'metric': None, 'proto': 4, 'scope': 0}, 'fd01::/64'),
])
def test_describe_route(route, text):
    assert reading.describe_route(route) == text


def test_uplink_errors():
    _spec, errors = link_specs.bridge_spec(bridge_params(uplink='br0'))
    assert "uplink: 'br0' is the bridge itself" in errors
    _spec, errors = link_specs.bridge_spec(bridge_params(uplink='eth 0'))
    assert any(error.startswith("uplink: interface name 'eth 0'") for error in errors)


@pytest.mark.parametrize('cidr, kwargs', [
    ('192.168.0.1/24', {'address': '192.168.0.1', 'prefixlen': 24, 'broadcast': '192.168.0.255'}),
    ('10.0.0.14/8', {'address': '10.0.0.14', 'prefixlen': 8, 'broadcast': '10.255.255.255'}),
    ('10.0.0.0/31', {'address': '10.0.0.0', 'prefixlen': 31}),
    ('10.0.0.5/32', {'address': '10.0.0.5', 'prefixlen': 32}),
    ('fd00::1/64', {'address': 'fd00::1', 'prefixlen': 64}),
])
def test_address_kwargs_set_the_ipv4_broadcast(cidr, kwargs):
    assert applying.address_kwargs(cidr) == kwargs


ONLINK_DEFAULT = dict(DEFAULT_ROUTE, metric=None, onlink=True)


def takeover(snapshot=None, uplink_routes=(), bridge_routes=(), **params):
    spec, errors = link_specs.bridge_spec(bridge_params(name='br5', uplink='eth0', ports=['tap1'],
                                                        forward_delay=0, **params))
    assert errors == []
    spec['uplink_routes'] = list(uplink_routes)
    spec['bridge_routes'] = list(bridge_routes)
    plan = planning.LinkPlan(copy.deepcopy(snapshot or SNAPSHOT))
    planning.plan_bridge(plan, spec)
    return plan


def test_takeover_with_the_inventory_address_and_gateway_moves_the_onlink_route():
    plan = takeover(uplink_routes=[ONLINK_DEFAULT], addresses=['10.0.0.2/24'], gateway='10.0.0.1')
    assert plan.errors == []
    assert RouteReplace('br5', ONLINK_DEFAULT) in plan.actions
    assert plan.after['br5']['addresses'] == ['10.0.0.2/24']
    assert plan.after['br5']['routes'] == ['default via 10.0.0.1 onlink']


@pytest.mark.parametrize('params, routes, message', [
    # issue 14: the inventory names another subnet than the uplink really has.
    ({'addresses': ['10.45.0.50/24'], 'gateway': '10.45.0.1'}, [ONLINK_DEFAULT],
     'uplink: eth0 holds 10.0.0.2/24, not 10.45.0.50/24'),
    ({'addresses': ['10.0.0.2/24'], 'gateway': '10.0.0.9'}, [ONLINK_DEFAULT],
     'the default route of eth0 is via 10.0.0.1, not 10.0.0.9'),
    ({'addresses': ['10.0.0.2/24']}, [ONLINK_DEFAULT],
     'eth0 has the default route via 10.0.0.1, which would move to the bridge now but not come back'),
    ({'addresses': ['10.0.0.2/24'], 'gateway': '10.0.0.1'}, [],
     'eth0 has no IPv4 default route, but the gateway is 10.0.0.1'),
    ({'addresses': ['10.0.0.2/24'], 'gateway': '10.0.0.1'},
     [ONLINK_DEFAULT, {'family': 4, 'dst': '10.9.0.0/16', 'gateway': '10.0.0.3', 'metric': None, 'proto': 4, 'scope': 0}],
     'eth0 has the route(s) 10.9.0.0/16 via 10.0.0.3, which would move'),
])
def test_takeover_refuses_what_the_inventory_does_not_hold(params, routes, message):
    plan = takeover(uplink_routes=routes, **params)
    assert plan.actions == []
    assert any(message in error for error in plan.errors), plan.errors
    assert all(error.endswith("nothing was changed (readdress=true changes the host's address on purpose)")
               for error in plan.errors)


def test_takeover_check_reads_the_bridge_once_it_holds_the_addresses():
    snapshot = copy.deepcopy(SNAPSHOT)
    snapshot['br5'] = link('br5', 8, 'bridge', addresses=['10.0.0.2/24'], forward_delay=0,
                           alias='tuntap.qemu:bridge uplink=eth0')
    snapshot['eth0'].update(addresses=[], master='br5', master_index=8)
    snapshot['tap1'].update(master='br5', master_index=8)
    plan = takeover(snapshot, bridge_routes=[ONLINK_DEFAULT], addresses=['10.0.0.2/24'], gateway='10.0.0.1')
    assert (plan.errors, plan.actions) == ([], [])
    plan = takeover(snapshot, bridge_routes=[ONLINK_DEFAULT], addresses=['10.45.0.50/24'])
    assert plan.actions == []
    assert any('eth0 (through the bridge br5, which holds its addresses) holds 10.0.0.2/24, not 10.45.0.50/24'
               in error for error in plan.errors), plan.errors


def test_readdress_gives_the_bridge_the_requested_address_on_purpose():
    plan = takeover(uplink_routes=[ONLINK_DEFAULT], addresses=['10.45.0.50/24'], gateway='10.45.0.1',
                    readdress=True)
    assert plan.errors == []
    new_default = {'family': 4, 'dst': 'default', 'gateway': '10.45.0.1', 'metric': None,
                   'proto': reading.RTPROT_BOOT, 'scope': 0, 'onlink': False}
    assert plan.actions[-3:] == [LinkSet('tap1', {'master': 'br5'}), RouteReplace('br5', new_default),
                                 AddrDel('eth0', '10.0.0.2/24')]
    assert AddrAdd('br5', '10.45.0.50/24') in plan.actions
    assert AddrAdd('br5', '10.0.0.2/24') not in plan.actions


@pytest.mark.parametrize('params, message', [
    ({'gateway': '10.0.0.1'}, "gateway: '10.0.0.1' needs uplink"),
    ({'uplink': 'eth0', 'gateway': 'fd00::1'}, "gateway: 'fd00::1' is not an IPv4 address"),
    ({'uplink': 'eth0', 'gateway': 'router'}, "gateway: 'router' is not an IP address"),
    ({'uplink': 'eth0', 'readdress': True}, 'readdress: needs uplink and addresses'),
])
def test_takeover_spec_errors(params, message):
    _spec, errors = link_specs.bridge_spec(bridge_params(**params))
    assert any(message in error for error in errors), errors


def test_describe_route_onlink():
    assert reading.describe_route(ONLINK_DEFAULT) == 'default via 10.0.0.1 onlink'


def test_stp_off_goes_in_a_request_before_a_short_forward_delay():
    snapshot = copy.deepcopy(SNAPSHOT)
    snapshot['br0'].update({'stp': True, 'forward_delay': 4})
    spec, errors = link_specs.bridge_spec(bridge_params(stp=False, forward_delay=0))
    assert errors == []
    plan = planning.LinkPlan(snapshot)
    planning.plan_bridge(plan, spec)
    assert plan.actions == [LinkSet('br0', {'stp': False}), LinkSet('br0', {'forward_delay': 0})]


def test_the_actions_docstring_lists_every_kind():
    from ansible_collections.tuntap.qemu.plugins.module_utils._links import actions
    kinds = (AddrAdd, AddrDel, BridgeCreate, Delete, DhcpMove, LinkSet, PortIsolate, RouteDel, RouteReplace,
             Solicit, Tun)
    assert all('%s(' % kind.__name__ in actions.__doc__ for kind in kinds)
    assert sorted(kind.__name__ for kind in kinds) == sorted(
        name for name, value in vars(actions).items()
        if isinstance(value, type) and value.__module__ == actions.__name__)


# ---------------------------------------------------------------- DHCP uplinks (issue 11)

from ansible_collections.tuntap.qemu.plugins.module_utils._links import dhcp_client  # noqa: E402

LEASE = {'valid': 3599, 'preferred': 3000}
ETH0_CLIENT = dhcp_client.Client(700, ('dhclient', '-4', '-v', '-i', '-pf', '/run/dhclient.eth0.pid', '-lf',
                                       '/var/lib/dhcp/dhclient.eth0.leases', 'eth0'),
                                 'dhclient', '/run/dhclient.eth0.pid', '/var/lib/dhcp/dhclient.eth0.leases')
BR5_CLIENT = dhcp_client.Client(701, ('dhclient', '-4', '-v', '-i', '-pf', '/run/dhclient.br5.pid', 'br5'),
                                'dhclient', '/run/dhclient.br5.pid')


def dhcp_snapshot(moved=False):
    snapshot = copy.deepcopy(SNAPSHOT)
    if not moved:
        snapshot['eth0']['dynamic'] = {'10.0.0.2/24': LEASE}
        return snapshot
    snapshot['br5'] = link('br5', 8, 'bridge', addresses=['10.0.0.2/24'], forward_delay=0,
                           alias='tuntap.qemu:bridge uplink=eth0 dhcp', dynamic={'10.0.0.2/24': LEASE})
    snapshot['eth0'].update(addresses=[], master='br5', master_index=8)
    snapshot['tap1'].update(master='br5', master_index=8)
    return snapshot


def dhcp_takeover(snapshot, clients, **params):
    spec, errors = link_specs.bridge_spec(bridge_params(name='br5', uplink='eth0', ports=['tap1'],
                                                        forward_delay=0, dhcp=True, **params))
    assert errors == []
    spec['uplink_routes'] = [DEFAULT_ROUTE] if snapshot['eth0']['addresses'] else []
    spec['bridge_routes'] = []
    plan = planning.LinkPlan(snapshot)
    plan.dhcp_clients = clients
    planning.plan_bridge(plan, spec)
    return plan


def test_dhcp_takeover_moves_the_lease_with_its_lifetime_then_the_client(monkeypatch):
    monkeypatch.setenv('TUNTAP_QEMU_DHCLIENT', 'dhclient')
    plan = dhcp_takeover(dhcp_snapshot(), {'eth0': [ETH0_CLIENT], 'br5': []}, addresses=[])
    assert plan.errors == []
    assert plan.actions == [
        BridgeCreate('br5', {'forward_delay': 0, 'mac': SNAPSHOT['eth0']['mac']}),
        LinkSet('br5', {'state': 'up', 'alias': 'tuntap.qemu:bridge uplink=eth0 dhcp'}),
        AddrAdd('br5', '10.0.0.2/24', valid=3599, preferred=3000),
        LinkSet('eth0', {'master': 'br5'}),
        LinkSet('tap1', {'master': 'br5'}),
        RouteReplace('br5', DEFAULT_ROUTE),
        AddrDel('eth0', '10.0.0.2/24'),
        # after eth0 let go of the lease: its client's STOP finds nothing to flush
        DhcpMove('br5', 'eth0', (ETH0_CLIENT,), start=True),
    ]
    diff = plan.diff()
    assert diff['before']['dhcp_client'] == {'on': 'eth0', 'clients': [' '.join(ETH0_CLIENT.argv)]}
    assert diff['after']['dhcp_client'] == {'on': 'br5', 'clients': [' '.join(
        dhcp_client.ifupdown_dhclient_argv('br5'))]}


@pytest.mark.parametrize('clients, actions', [
    pytest.param({'eth0': [], 'br5': [BR5_CLIENT]}, [], id='moved: client on the bridge alone - unchanged'),
    pytest.param({'eth0': [ETH0_CLIENT], 'br5': [BR5_CLIENT]}, [DhcpMove('br5', 'eth0', (ETH0_CLIENT,), start=False)],
                 id='a client left on the port is stopped, none started'),
    pytest.param({'eth0': [], 'br5': []}, [DhcpMove('br5', 'eth0', (), start=True)],
                 id='no client anywhere: one is started on the bridge'),
])
def test_dhcp_takeover_done(clients, actions):
    plan = dhcp_takeover(dhcp_snapshot(moved=True), clients)
    assert (plan.errors, plan.actions) == ([], actions)


def test_dhcp_skips_the_static_check_a_static_request_refuses_the_lease():
    plan = dhcp_takeover(dhcp_snapshot(), {'eth0': [ETH0_CLIENT]})
    assert plan.errors == []
    spec, _errors = link_specs.bridge_spec(bridge_params(
        name='br5', uplink='eth0', ports=['tap1'], forward_delay=0, addresses=['10.0.0.2/24'], gateway='10.0.0.1'))
    spec['uplink_routes'] = [DEFAULT_ROUTE]
    plan = planning.LinkPlan(dhcp_snapshot())
    plan.dhcp_clients = {'eth0': [ETH0_CLIENT]}
    planning.plan_bridge(plan, spec)
    assert plan.actions == []
    assert plan.errors == ['uplink: eth0 holds 10.0.0.2/24 as a DHCP lease (dhclient pid 700); set '
                           'tuntap_qemu_uplink_address: dhcp; nothing was changed (readdress=true changes '
                           "the host's address on purpose)"]


@pytest.mark.parametrize('params, message', [
    ({'dhcp': True}, 'dhcp: needs uplink'),
    ({'dhcp': True, 'uplink': 'eth0', 'addresses': ['10.0.0.2/24']}, "dhcp: the bridge takes the uplink's lease"),
    ({'dhcp': True, 'uplink': 'eth0', 'gateway': '10.0.0.1'}, 'dhcp: the lease gives the router'),
    ({'dhcp': True, 'uplink': 'eth0', 'readdress': True}, 'dhcp: readdress changes static addresses'),
])
def test_dhcp_spec_errors(params, message):
    _spec, errors = link_specs.bridge_spec(bridge_params(**params))
    assert any(message in error for error in errors), errors


def test_leaving_a_dhcp_bridge_gives_the_lease_and_the_client_back(monkeypatch):
    monkeypatch.setenv('TUNTAP_QEMU_DHCLIENT', 'dhclient')
    plan = planning.LinkPlan(dhcp_snapshot(moved=True))
    plan.dhcp_clients = {'br5': [BR5_CLIENT], 'eth0': []}
    assert planning.remove_bridge(plan, 'br5', [ONLINK_DEFAULT]) is True
    assert plan.actions == [
        AddrAdd('eth0', '10.0.0.2/24', valid=3599, preferred=3000),
        LinkSet('eth0', {'master': ''}),
        RouteReplace('eth0', ONLINK_DEFAULT),
        AddrDel('br5', '10.0.0.2/24'),
        DhcpMove('eth0', 'br5', (BR5_CLIENT,), start=True),
        Delete('br5'),
    ]
    assert plan.diff()['after']['dhcp_client']['on'] == 'eth0'


def test_a_static_bridge_gives_back_without_a_client_move():
    snapshot = dhcp_snapshot(moved=True)
    snapshot['br5'].update(alias='tuntap.qemu:bridge uplink=eth0', dynamic={})
    plan = planning.LinkPlan(snapshot)
    planning.remove_bridge(plan, 'br5', [])
    assert not any(isinstance(action, DhcpMove) for action in plan.actions)
    assert AddrAdd('eth0', '10.0.0.2/24') in plan.actions


def test_lifetime_kwargs_for_both_pyroute2_versions():
    assert applying.lifetime_kwargs(3599, 3000) == {
        'valid': 3599, 'preferred': 3000, 'cacheinfo': {'valid': 3599, 'preferred': 3000}}
    assert applying.lifetime_kwargs(10, 20)['preferred'] == 10
