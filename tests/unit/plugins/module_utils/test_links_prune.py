# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ownership and pruning of links (issue 10): the mark, which links a prune picks, the
warnings for taps held open, the bridged_lan exit's order; tun_holders over a fake /proc."""

from __future__ import annotations

import copy
import os

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._links import (
    marks, planning, pruning, tun_holders)
from ansible_collections.tuntap.qemu.plugins.module_utils._links import specs as link_specs
from ansible_collections.tuntap.qemu.plugins.module_utils._links.actions import (
    AddrAdd, AddrDel, Delete, LinkSet, RouteReplace)
from ansible_collections.tuntap.qemu.plugins.module_utils._links.tun_holders import Holder

TAP = 'tuntap.qemu:tap'
BRIDGE = 'tuntap.qemu:bridge'


def link(name, ifindex, kind, **fields):
    record = {'name': name, 'ifindex': ifindex, 'kind': kind, 'mac': '02:00:00:00:00:%02x' % ifindex,
              'mtu': 1500, 'state': 'up', 'operstate': 'up', 'master_index': 0, 'master': None,
              'addresses': [], 'alias': None}
    if kind == 'tun':
        record.update({'mode': 'tap', 'owner': None, 'group': None, 'multi_queue': False,
                       'vnet_hdr': False, 'persist': True, 'carrier': False})
    if kind == 'bridge':
        record.update({'stp': False, 'forward_delay': 0})
    record.update(fields)
    return record


DEFAULT = {'family': 4, 'dst': 'default', 'gateway': '10.0.0.1', 'metric': None, 'proto': 3,
           'scope': 0, 'onlink': True}

# A host converged before: our br-lan took over eth0, our taps tap0..tap3, our br-old;
# the admin's tap7 (unmarked), br-admin (unmarked) and a tun of someone else's alias.
SNAPSHOT = {
    'lo': link('lo', 1, None),
    'eth0': link('eth0', 2, 'veth', master='br-lan', master_index=3),
    'br-lan': link('br-lan', 3, 'bridge', alias='tuntap.qemu:bridge uplink=eth0',
                   addresses=['10.0.0.2/24', 'fd00:10::2/64']),
    'tap0': link('tap0', 4, 'tun', alias=TAP, master='br-lan', master_index=3),
    'tap1': link('tap1', 5, 'tun', alias=TAP, addresses=['192.168.1.1/24']),
    'tap2': link('tap2', 6, 'tun', alias=TAP, carrier=True),
    'tap3': link('tap3', 7, 'tun', alias=TAP),
    'tap7': link('tap7', 8, 'tun', carrier=True),
    'tun9': link('tun9', 9, 'tun', mode='tun', alias='vpn of the admin'),
    'br-old': link('br-old', 10, 'bridge', alias=BRIDGE),
    'br-admin': link('br-admin', 11, 'bridge'),
    'tap5': link('tap5', 12, 'tun', alias=TAP, master='br-old', master_index=10),
    'veth5': link('veth5', 13, 'veth', master='br-old', master_index=10),
}


@pytest.mark.parametrize('alias, mark', [
    (None, None),
    ('', None),
    ('vpn of the admin', None),
    ('tuntap.qemuX', None),
    ('tuntap.qemu', marks.Mark('')),
    ('tuntap.qemu:tap', marks.Mark('tap')),
    ('tuntap.qemu:bridge', marks.Mark('bridge')),
    ('tuntap.qemu:bridge uplink=eth0', marks.Mark('bridge', 'eth0')),
    ('tuntap.qemu:bridge uplink=eth0 dhcp', marks.Mark('bridge', 'eth0', True)),
    ('tuntap.qemu:bridge dhcp', marks.Mark('bridge')),      # dhcp means nothing without an uplink
    ('tuntap.qemu:vm1', marks.Mark('vm1')),
])
def test_parse_mark(alias, mark):
    assert marks.parse_mark(alias) == mark


@pytest.mark.parametrize('text', ['tuntap.qemu:tap', 'tuntap.qemu:bridge', 'tuntap.qemu:bridge uplink=eth0',
                                  'tuntap.qemu:bridge uplink=eth0 dhcp'])
def test_marks_round_trip(text):
    assert marks.parse_mark(text).text() == text


def test_mark_texts():
    assert marks.tap_mark() == TAP
    assert marks.bridge_mark() == BRIDGE
    assert marks.bridge_mark('eth0') == 'tuntap.qemu:bridge uplink=eth0'
    assert marks.bridge_mark('eth0', dhcp=True) == 'tuntap.qemu:bridge uplink=eth0 dhcp'
    assert marks.bridge_mark(None, dhcp=True) == BRIDGE
    assert marks.mark_dhcp({'alias': 'tuntap.qemu:bridge uplink=eth0 dhcp'}) is True
    assert marks.mark_dhcp({'alias': 'tuntap.qemu:bridge uplink=eth0'}) is False


@pytest.mark.parametrize('listed, candidates', [
    ([], ['tap0', 'tap1', 'tap2', 'tap3', 'tap5']),
    (['tap0', 'tap1'], ['tap2', 'tap3', 'tap5']),
    (['tap0', 'tap1', 'tap2', 'tap3', 'tap5'], []),
    # listing the admin's tap7 adopts it; not listing it never makes it a candidate
    (['tap7'], ['tap0', 'tap1', 'tap2', 'tap3', 'tap5']),
])
def test_tap_candidates_are_only_our_unlisted_taps(listed, candidates):
    assert pruning.tap_candidates(SNAPSHOT, listed) == candidates


def tap_prune(listed, holders=None, snapshot=None):
    plan = planning.LinkPlan(copy.deepcopy(snapshot or SNAPSHOT))
    pruning.plan_tap_prune(plan, listed, holders or {})
    return plan


@pytest.mark.parametrize('listed, holders, removed, in_use', [
    # tap2 has carrier: held by a process outside this namespace
    (['tap0'], {}, ['tap1', 'tap3', 'tap5'], ['tap2']),
    # tun_holders found a QEMU on tap3
    (['tap0'], {'tap3': [Holder(4242, 'qemu-system-x86')]}, ['tap1', 'tap5'], ['tap2', 'tap3']),
    (['tap0', 'tap1', 'tap3', 'tap5'], {}, [], ['tap2']),
    (['tap0', 'tap1', 'tap2', 'tap3', 'tap5'], {}, [], []),
])
def test_tap_prune_removes_unheld_marked_taps_and_warns_for_held_ones(listed, holders, removed, in_use):
    plan = tap_prune(listed, holders)
    assert plan.errors == []
    assert plan.actions == [Delete(name) for name in removed]
    assert plan.removed == removed
    assert [item['name'] for item in plan.in_use] == in_use
    assert len(plan.warnings) == len(in_use)
    assert sorted(plan.before) == removed
    assert all(plan.after[name] is None for name in removed)
    assert plan.changed == bool(removed)


def test_held_tap_warning_names_pid_and_command():
    plan = tap_prune(['tap0', 'tap1', 'tap5'], {'tap3': [Holder(4242, 'qemu-system-x86')]})
    assert plan.actions == []
    assert plan.in_use == [{'name': 'tap2', 'holders': []},
                           {'name': 'tap3', 'holders': [{'pid': 4242, 'comm': 'qemu-system-x86'}]}]
    assert 'PID 4242 (qemu-system-x86) holds it open; left alone' in plan.warnings[1]
    assert 'tap3 carries the tuntap.qemu mark' in plan.warnings[1]
    assert 'outside this network namespace (the device has carrier)' in plan.warnings[0]


def test_removed_tap_diff_shows_its_addresses():
    plan = tap_prune(['tap0', 'tap2', 'tap3', 'tap5'])
    assert plan.before['tap1']['addresses'] == ['192.168.1.1/24']
    assert plan.before['tap1']['alias'] == TAP


def tap_params(**params):
    base = {'name': None, 'names': None, 'devices': None, 'mode': 'tap', 'user': None,
            'group': None, 'multi_queue': None, 'vnet_hdr': None, 'mtu': None,
            'addresses': None, 'link_state': 'up', 'bridge': None, 'state': 'present'}
    base.update(params)
    return base


@pytest.mark.parametrize('name, actions', [
    # the admin's tap7, listed: the inventory says it is ours now
    ('tap7', [LinkSet('tap7', {'alias': TAP})]),
    ('tap3', []),
    ('tap9', None),
])
def test_a_listed_tap_gets_the_mark_once(name, actions):
    specs, errors = link_specs.tap_specs(tap_params(name=name))
    assert errors == []
    plan = planning.LinkPlan(copy.deepcopy(SNAPSHOT))
    planning.plan_tap(plan, specs[0])
    if actions is None:  # a new tap: created with the mark
        assert LinkSet(name, {'state': 'up', 'alias': TAP}) in plan.actions
    else:
        assert plan.actions == actions


def bridge_params(**params):
    base = {'name': 'br-lan', 'state': 'present', 'ports': None, 'exclusive': False,
            'move_ports': False, 'stp': None, 'forward_delay': None, 'mtu': None,
            'link_state': 'up', 'addresses': None, 'uplink': None, 'gateway': None,
            'readdress': False}
    base.update(params)
    return base


def plan_bridge(snapshot=None, removal_routes=None, **params):
    spec, errors = link_specs.bridge_spec(bridge_params(**params))
    assert errors == []
    spec['removal_routes'] = removal_routes or {}
    plan = planning.LinkPlan(copy.deepcopy(snapshot or SNAPSHOT))
    planning.plan_bridge(plan, spec)
    return plan


@pytest.mark.parametrize('params, alias', [
    # the mark keeps the uplink that is still a port when a call names no uplink
    ({}, None),
    ({'uplink': 'eth0'}, None),
    ({'ports': ['tap0'], 'exclusive': True}, BRIDGE),
    ({'name': 'br-admin'}, BRIDGE),
    ({'name': 'br-new'}, BRIDGE),
])
def test_bridge_mark(params, alias):
    plan = plan_bridge(**params)
    assert plan.errors == []
    changes = [action.changes.get('alias') for action in plan.actions
               if isinstance(action, LinkSet) and 'alias' in action.changes]
    assert changes == ([alias] if alias else [])


@pytest.mark.parametrize('keep, candidates', [
    ([], ['br-lan', 'br-old']),
    (['br-lan'], ['br-old']),
    (['br-admin'], ['br-lan', 'br-old']),
])
def test_bridge_candidates_are_only_ours(keep, candidates):
    assert pruning.bridge_candidates(SNAPSHOT, keep) == candidates


def test_bridge_prune_removes_our_other_bridge_and_leaves_the_admins():
    plan = planning.LinkPlan(copy.deepcopy(SNAPSHOT))
    pruning.plan_bridge_prune(plan, ['br-lan'], {})
    assert plan.errors == []
    assert plan.actions == [Delete('br-old')]
    assert plan.removed == ['br-old']
    assert plan.before['br-old']['ports'] == ['tap5', 'veth5']
    assert plan.after == {'br-old': None}


def test_leaving_bridged_lan_gives_the_uplink_its_addresses_and_routes_back_in_order():
    plan = planning.LinkPlan(copy.deepcopy(SNAPSHOT))
    pruning.plan_bridge_prune(plan, [], {'br-lan': [DEFAULT]})
    assert plan.errors == []
    assert plan.actions == [
        # the uplink holds the addresses before it leaves the bridge ...
        AddrAdd('eth0', '10.0.0.2/24'),
        AddrAdd('eth0', 'fd00:10::2/64', nodad=True),
        LinkSet('eth0', {'master': ''}),
        # ... the routes move with a replace, the bridge's addresses (and their prefix
        # routes towards a bridge without ports) go at once, the bridge itself last
        RouteReplace('eth0', DEFAULT),
        AddrDel('br-lan', '10.0.0.2/24'),
        AddrDel('br-lan', 'fd00:10::2/64'),
        Delete('br-lan'),
        Delete('br-old'),
    ]
    assert plan.removed == ['br-lan', 'br-old']
    assert plan.before['eth0'] == {'addresses': [], 'routes': []}
    assert plan.after['eth0'] == {'addresses': ['10.0.0.2/24', 'fd00:10::2/64'],
                                  'routes': ['default via 10.0.0.1 onlink']}


def test_state_absent_of_a_bridged_lan_bridge_gives_the_uplink_back_too():
    plan = plan_bridge(state='absent', removal_routes={'br-lan': [DEFAULT]})
    assert plan.actions[:3] == [AddrAdd('eth0', '10.0.0.2/24'), AddrAdd('eth0', 'fd00:10::2/64', nodad=True),
                                LinkSet('eth0', {'master': ''})]
    assert plan.actions[-1] == Delete('br-lan')


@pytest.mark.parametrize('change, message', [
    (lambda snapshot: snapshot.pop('eth0'),
     "br-lan: the bridge took over the uplink 'eth0' (its mark says so), which no longer exists"),
    (lambda snapshot: snapshot['eth0'].update(master='br-admin', master_index=11),
     "br-lan: its uplink 'eth0' is now a port of 'br-admin'"),
])
def test_a_bridge_whose_uplink_cannot_take_its_addresses_back_is_refused(change, message):
    snapshot = copy.deepcopy(SNAPSHOT)
    change(snapshot)
    plan = planning.LinkPlan(snapshot)
    pruning.plan_bridge_prune(plan, [], {'br-lan': [DEFAULT]})
    assert any(error.startswith(message) for error in plan.errors), plan.errors
    assert 'br-lan' not in plan.removed


# ---------------------------------------------------------------- tun_holders

@pytest.fixture
def fake_proc(tmp_path, monkeypatch):
    """A /proc with our namespace, a QEMU on tap3 (and a non-tun fd), a process in another
    namespace holding a tap3 of its own, and a process without tun fds."""
    namespace = tmp_path / 'net-ns'
    namespace.write_text('')
    other_namespace = tmp_path / 'other-ns'
    other_namespace.write_text('')

    def process(pid, comm, ns, fds):
        base = tmp_path / 'proc' / str(pid)
        (base / 'ns').mkdir(parents=True)
        (base / 'fd').mkdir()
        (base / 'fdinfo').mkdir()
        os.symlink(str(ns), str(base / 'ns' / 'net'))
        (base / 'comm').write_text(comm + '\n')
        for fd, (target, iff) in enumerate(fds, start=3):
            os.symlink(target, str(base / 'fd' / str(fd)))
            info = 'pos:\t0\nflags:\t02\nmnt_id:\t25\n'
            if iff:
                info += 'iff:\t%s\n' % iff
            (base / 'fdinfo' / str(fd)).write_text(info)

    process('self', 'ansible', namespace, [])
    process(4242, 'qemu-system-x86', namespace, [('/dev/null', None), ('/dev/net/tun', 'tap3')])
    process(5151, 'qemu-other', other_namespace, [('/dev/net/tun', 'tap3')])
    process(6000, 'sshd', namespace, [('socket:[1234]', None)])
    process(7000, 'python3', namespace, [('/dev/net/tun', 'tap4'), ('/dev/net/tun', 'tap5')])
    monkeypatch.setattr(tun_holders, 'PROC', str(tmp_path / 'proc'))


def test_read_holders_finds_tun_fds_of_this_namespace_only(fake_proc):
    assert tun_holders.read_holders(['tap3', 'tap4', 'tap9']) == {
        'tap3': [Holder(4242, 'qemu-system-x86')],
        'tap4': [Holder(7000, 'python3')],
    }
    assert tun_holders.read_holders([]) == {}
