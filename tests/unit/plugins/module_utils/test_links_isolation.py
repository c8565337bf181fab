# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""bridge_port isolated_ports (issue 13: per-guest isolation, the kernel's BR_ISOLATED) over
plain snapshots: the spec checks, the planned PortIsolate actions and the bridge's view."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._links import applying, converge, planning, reading
from ansible_collections.tuntap.qemu.plugins.module_utils._links import specs as link_specs
from ansible_collections.tuntap.qemu.plugins.module_utils._links.actions import (
    BridgeCreate, LinkSet, PortIsolate)

BRIDGE_MARK = 'tuntap.qemu:bridge'


def link(name, ifindex, kind, **fields):
    record = {'name': name, 'ifindex': ifindex, 'kind': kind, 'mac': '02:00:00:00:00:%02x' % ifindex,
              'mtu': 1500, 'state': 'up', 'operstate': 'up', 'master_index': 0, 'master': None,
              'addresses': [], 'alias': None}
    if kind == 'bridge':
        record.update({'stp': False, 'forward_delay': 0, 'alias': BRIDGE_MARK})
    record.update(fields)
    return record


def port(name, ifindex, master, isolated=False, kind='tun'):
    """A port of `master`, as rtnl_snapshot reads it: with `isolated`."""
    return link(name, ifindex, kind, master=master, master_index=3 if master == 'br0' else 9,
                isolated=isolated)


# br0: tap0 isolated, tap1 not; tap2 free; tap3 isolated on br1; eth0 a free uplink.
SNAPSHOT = {
    'lo': link('lo', 1, None, mtu=65536),
    'eth0': link('eth0', 2, 'veth', addresses=['10.0.0.2/24']),
    'br0': link('br0', 3, 'bridge', addresses=['192.168.0.1/24']),
    'tap0': port('tap0', 4, 'br0', isolated=True),
    'tap1': port('tap1', 5, 'br0'),
    'tap2': link('tap2', 6, 'tun'),
    'br1': link('br1', 9, 'bridge'),
    'tap3': port('tap3', 10, 'br1', isolated=True),
}


def bridge_params(**params):
    base = {'name': 'br0', 'state': 'present', 'ports': None, 'exclusive': False,
            'move_ports': False, 'stp': False, 'forward_delay': 0, 'mtu': None,
            'link_state': 'up', 'addresses': None, 'uplink': None, 'isolated_ports': None}
    base.update(params)
    return base


def plan_bridge(snapshot=None, **params):
    spec, errors = link_specs.bridge_spec(bridge_params(**params))
    assert errors == []
    plan = planning.LinkPlan(copy.deepcopy(snapshot or SNAPSHOT))
    planning.plan_bridge(plan, spec)
    assert plan.errors == []
    return plan


@pytest.mark.parametrize('params, actions, isolated_after', [
    pytest.param({'ports': ['tap0', 'tap1']}, [], ['tap0'], id='not given: left as it is'),
    pytest.param({'ports': ['tap0', 'tap1'], 'isolated_ports': ['tap0']}, [], ['tap0'],
                 id='as it is: nothing'),
    pytest.param({'ports': ['tap0', 'tap1'], 'isolated_ports': ['tap0', 'tap1']},
                 [PortIsolate('tap1', True)], ['tap0', 'tap1'], id='one more isolated'),
    pytest.param({'ports': ['tap0', 'tap1'], 'isolated_ports': []},
                 [PortIsolate('tap0', False)], [], id='[]: the isolation ends'),
    pytest.param({'ports': ['tap1'], 'isolated_ports': []}, [], ['tap0'],
                 id='a port not in ports keeps its isolation'),
    pytest.param({'ports': ['tap0', 'tap1', 'tap2'], 'isolated_ports': ['tap0', 'tap2']},
                 [LinkSet('tap2', {'master': 'br0'}), PortIsolate('tap2', True)], ['tap0', 'tap2'],
                 id='a new port is isolated after it is enslaved'),
    pytest.param({'ports': ['tap1', 'tap2'], 'isolated_ports': ['tap2'], 'exclusive': True},
                 [LinkSet('tap2', {'master': 'br0'}), LinkSet('tap0', {'master': ''}),
                  PortIsolate('tap2', True)], ['tap2'],
                 id='exclusive: a released port takes its flag along'),
    pytest.param({'ports': ['tap0', 'tap3'], 'move_ports': True, 'isolated_ports': ['tap0', 'tap3']},
                 [LinkSet('tap3', {'master': 'br0'}), PortIsolate('tap3', True)], ['tap0', 'tap3'],
                 id='a port moved from an isolated place joins without the flag'),
    pytest.param({'ports': ['tap0', 'tap3'], 'move_ports': True, 'isolated_ports': ['tap0']},
                 [LinkSet('tap3', {'master': 'br0'})], ['tap0'],
                 id='moved, not to be isolated: nothing to clear'),
])
def test_plan_isolation(params, actions, isolated_after):
    plan = plan_bridge(**params)
    assert plan.actions == actions
    if actions:
        assert plan.before['br0']['isolated_ports'] == ['tap0']
        assert plan.after['br0']['isolated_ports'] == isolated_after
    else:
        assert plan.changed is False and plan.before == {} and plan.after == {}


def test_a_new_bridge_isolates_after_enslaving():
    plan = plan_bridge(name='br5', ports=['tap2', 'eth0'], uplink=None, isolated_ports=['tap2'])
    assert plan.actions == [
        BridgeCreate('br5', {'forward_delay': 0}),
        LinkSet('br5', {'state': 'up', 'alias': BRIDGE_MARK}),
        LinkSet('eth0', {'master': 'br5'}),
        LinkSet('tap2', {'master': 'br5'}),
        PortIsolate('tap2', True),
    ]
    assert plan.before == {'br5': None}
    assert plan.after['br5']['isolated_ports'] == ['tap2']


def test_the_uplink_can_stay_unisolated_in_a_takeover():
    """bridged_lan: the uplink is a port the call adds; isolating the guests leaves it alone."""
    spec, errors = link_specs.bridge_spec(bridge_params(name='br5', uplink='eth0', ports=['tap2'],
                                                        isolated_ports=['tap2']))
    assert errors == []
    spec['uplink_routes'] = []
    plan = planning.LinkPlan(copy.deepcopy(SNAPSHOT))
    planning.plan_bridge(plan, spec)
    assert plan.errors == []
    assert [action for action in plan.actions if isinstance(action, PortIsolate)] == [PortIsolate('tap2', True)]
    assert plan.actions.index(PortIsolate('tap2', True)) > plan.actions.index(LinkSet('tap2', {'master': 'br5'}))


def test_an_admin_isolated_uplink_is_cleared():
    snapshot = dict(SNAPSHOT, eth0=dict(SNAPSHOT['eth0'], master='br0', master_index=3, isolated=True))
    plan = plan_bridge(snapshot, ports=['tap0', 'eth0'], isolated_ports=['tap0'])
    assert plan.actions == [PortIsolate('eth0', False)]


@pytest.mark.parametrize('params, message', [
    ({'ports': ['tap0'], 'isolated_ports': ['tap1']},
     "isolated_ports[0]: 'tap1' is not in ports; only a port this call makes a port of the bridge "
     "can be isolated (ports: tap0)"),
    ({'isolated_ports': ['tap0']}, "isolated_ports[0]: 'tap0' is not in ports; only a port this "
                                   "call makes a port of the bridge can be isolated (ports: none given)"),
    ({'ports': ['tap0'], 'uplink': 'eth0', 'isolated_ports': ['tap0', 'eth0']},
     "isolated_ports[1]: 'eth0' is the uplink; the uplink is never isolated"),
    ({'ports': ['tap0'], 'isolated_ports': ['tap0', 'tap0']},
     "isolated_ports[1]: 'tap0' is listed twice (also at isolated_ports[0])"),
    ({'ports': ['tap0'], 'isolated_ports': ['tap/0']}, "isolated_ports[0]: interface name 'tap/0'"),
    ({'state': 'absent', 'isolated_ports': ['tap0']},
     'isolated_ports: tap0 given with state=absent'),
])
def test_isolated_ports_errors(params, message):
    _spec, errors = link_specs.bridge_spec(bridge_params(**params))
    assert any(message in error for error in errors), errors


@pytest.mark.parametrize('params', [
    {'state': 'absent', 'isolated_ports': []},
    {'ports': [], 'isolated_ports': []},
    {'ports': ['tap0', 'eth0'], 'isolated_ports': ['eth0']},  # eth0 no uplink here: a port like any
])
def test_isolated_ports_accepted(params):
    spec, errors = link_specs.bridge_spec(bridge_params(**params))
    assert errors == []
    assert spec['isolated_ports'] == (None if params.get('state') == 'absent' else params['isolated_ports'])


def test_views_and_facts():
    assert reading.isolated_ports_of(SNAPSHOT, 'br0') == ['tap0']
    assert reading.isolated_ports_of(SNAPSHOT, 'br1') == ['tap3']
    assert planning.bridge_view(SNAPSHOT, 'br0')['isolated_ports'] == ['tap0']
    # a port's own facts leave the flag out (tap_device); the bridge's carry isolated_ports
    assert 'isolated' not in reading.device_facts(SNAPSHOT, 'tap0')


def test_check_mode_prediction_shows_the_isolated_ports():
    plan = plan_bridge(ports=['tap0', 'tap1'], isolated_ports=['tap1'])
    assert plan.actions == [PortIsolate('tap0', False), PortIsolate('tap1', True)]
    facts = reading.device_facts(converge.predicted(plan), 'br0')
    assert facts['isolated_ports'] == ['tap1']
    assert facts['ports'] == ['tap0', 'tap1']


def test_port_isolate_describes_itself():
    assert PortIsolate('tap0', True).describe() == 'isolating the bridge port'
    assert PortIsolate('tap0', False).describe() == 'ending the isolation of the bridge port'


class RecordingNetlink:
    """Stands for pyroute2's IPRoute: records the requests apply_plan() sends."""

    def __init__(self):
        self.calls = []

    def brport(self, command, **kwargs):
        self.calls.append(('brport', command, kwargs))

    def link(self, command, **kwargs):
        self.calls.append(('link', command, kwargs))


def test_apply_sends_the_port_flag_after_the_enslaving(monkeypatch):
    monkeypatch.setattr(applying.netlink, 'errors', lambda: (OSError,))
    plan = plan_bridge(ports=['tap0', 'tap1', 'tap2'], isolated_ports=['tap2'])
    ipr = RecordingNetlink()
    applying.apply_plan(ipr, plan)
    assert ipr.calls == [
        ('link', 'set', {'index': 6, 'master': 3}),
        ('brport', 'set', {'index': 4, 'isolated': 0}),
        ('brport', 'set', {'index': 6, 'isolated': 1}),
    ]
