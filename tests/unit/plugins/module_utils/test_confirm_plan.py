# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollback plan of confirmed_change (_confirm/rollback_plan.py): pure, table-driven."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._confirm import rollback_plan
from ansible_collections.tuntap.qemu.plugins.module_utils._confirm.snapshot import (
    Address, DhcpClient, Link, Route, SavedFile, Snapshot, client_interface, client_pidfile)

MAC = '52:54:00:12:34:56'
DEFAULT = Route(4, 'default', '10.0.0.1', None, 3, 0, True)
DEFAULT6 = Route(6, 'default', 'fe80::1', 1024, 3, 0, False)
DHCLIENT = ['/sbin/dhclient', '-4', '-v', '-i', '-pf', '/run/dhclient.%s.pid', '-lf',
            '/var/lib/dhcp/dhclient.%s.leases', '-I', '-df', '/var/lib/dhcp/dhclient6.%s.leases',
            '%s']
MARK = 'tuntap.qemu:bridge uplink=eth0'


def dhclient(ifname, pid=100):
    argv = [word.replace('%s', ifname) for word in DHCLIENT]
    return DhcpClient(ifname, pid, argv, '/run/dhclient.%s.pid' % ifname)


def uplink(**changes):
    base = Link('eth0', True, MAC, None, None, 'up',
                addresses=[Address('10.0.0.2/24'), Address('2001:db8::2/64')],
                routes=[DEFAULT, DEFAULT6])
    return dataclasses.replace(base, **changes)


def taken_over():
    """Shape (b): eth0 a port of br0, which holds the addresses and routes."""
    return Snapshot(
        1000.0, Link('eth0', True, MAC, 'br0', None, 'up'),
        Link('br0', True, MAC, None, MARK, 'up', addresses=[Address('10.0.0.2/24')],
             ports=['eth0', 'tap0', 'tap1'], routes=[DEFAULT]),
        dhcp=[dhclient('br0')])


def texts(steps):
    return [step.text for step in steps]


def argvs(steps):
    return [step.argv for step in steps if step.kind == 'ip']


def index_of(steps, fragment):
    matches = [number for number, step in enumerate(steps) if fragment in step.text]
    assert matches, '%r not in %s' % (fragment, texts(steps))
    return matches[0]


# ---------------------------------------------------------------- shape (a): undo a takeover

TAKEOVER_CASES = [
    # id, before, expected steps (text fragments, in this order), fragments that must not appear
    ('new bridge, static', Snapshot(1000.0, uplink(), Link('br0')),
     ['br0 stops', 'eth0 gets 10.0.0.2/24, 2001:db8::2/64', 'eth0 is up', 'eth0 leaves br0',
      'route default via 10.0.0.1 onlink moves to eth0',
      'route default via fe80::1 metric 1024 moves to eth0', 'br0 loses its addresses',
      'br0 is deleted'],
     ['runs again', 'alias']),
    ('new bridge, dhclient on eth0', Snapshot(1000.0, uplink(), Link('br0'), dhcp=[dhclient('eth0')]),
     ['DHCP client on br0 stops', 'eth0 gets', 'eth0 leaves br0', 'br0 is deleted',
      'DHCP client on eth0 runs again: /sbin/dhclient -4 -v -i -pf /run/dhclient.eth0.pid'],
     []),
    ('bridge of ours existed with taps', Snapshot(
        1000.0, uplink(), Link('br0', True, '02:00:00:00:00:01', None, 'tuntap.qemu:bridge', 'up',
                               addresses=[Address('192.168.0.1/24')], ports=['tap0'])),
     ['eth0 gets', 'eth0 leaves br0', 'moves to eth0', 'br0 holds exactly 192.168.0.1/24',
      'tap0 is a port of br0 again', "br0 has the alias 'tuntap.qemu:bridge' again"],
     ['deleted']),
    ('uplink without addresses (already a bare port elsewhere)', Snapshot(
        1000.0, uplink(addresses=[], routes=[], master='admin0'), Link('br0')),
     ['eth0 is a port of admin0 again', 'br0 is deleted'],
     ['eth0 gets', 'leaves']),
    ('uplink down', Snapshot(1000.0, uplink(state='down'), Link('br0')),
     ['eth0 gets', 'eth0 leaves br0', 'br0 is deleted'],
     ['eth0 is up']),
]


@pytest.mark.parametrize('before, expected, absent',
                         [case[1:] for case in TAKEOVER_CASES], ids=[case[0] for case in TAKEOVER_CASES])
def test_undo_takeover(before, expected, absent):
    steps = rollback_plan.plan_rollback(before, rollback_plan.after_change(before))
    positions = [index_of(steps, fragment) for fragment in expected]
    assert positions == sorted(positions), texts(steps)
    for fragment in absent:
        assert not [text for text in texts(steps) if fragment in text], texts(steps)


def test_undo_takeover_reachability_order():
    """As give_back: addresses on the uplink before it leaves the bridge, routes after the
    release, the bridge's addresses after the routes, the deletion last."""
    before = Snapshot(1000.0, uplink(), Link('br0'))
    steps = rollback_plan.plan_rollback(before, rollback_plan.after_change(before))
    kinds = ['dhcp_stop', 'addresses', 'ip', 'ip', 'ip', 'ip', 'addresses', 'ip']
    assert [step.kind for step in steps] == kinds
    assert steps[1].dev == 'eth0' and not steps[1].exact
    assert steps[6].dev == 'br0' and steps[6].exact and steps[6].addresses == []
    assert steps[6].tolerate == [rollback_plan.MISSING_DEVICE]  # never created: fine
    assert steps[7].argv == ['link', 'delete', 'dev', 'br0']
    assert steps[7].tolerate == [rollback_plan.MISSING_DEVICE]


def test_route_argv():
    assert argvs(rollback_plan.plan_rollback(
        Snapshot(1000.0, uplink(), Link('br0')), rollback_plan.after_change(
            Snapshot(1000.0, uplink(), Link('br0')))))[2:4] == [
        ['-4', 'route', 'replace', 'default', 'via', '10.0.0.1', 'dev', 'eth0', 'proto', '3', 'onlink'],
        ['-6', 'route', 'replace', 'default', 'via', 'fe80::1', 'dev', 'eth0', 'metric', '1024',
         'proto', '3'],
    ]


def test_lifetimes_travel_with_the_addresses():
    before = Snapshot(1000.0, uplink(addresses=[Address('10.0.0.2/24', 600, 300)]), Link('br0'))
    step = rollback_plan.plan_rollback(before, rollback_plan.after_change(before))[1]
    assert step.addresses == [{'address': '10.0.0.2/24', 'valid_lft': 600, 'preferred_lft': 300}]


def test_ports_the_change_added_leave_an_existing_bridge():
    before = Snapshot(1000.0, uplink(), Link('br0', True, MAC, None, 'tuntap.qemu:bridge', 'up',
                                             ports=['tap0']))
    now = dataclasses.replace(rollback_plan.after_change(before), bridge=dataclasses.replace(
        rollback_plan.after_change(before).bridge, ports=['eth0', 'tap0', 'tap9']))
    steps = rollback_plan.plan_rollback(before, now)
    assert ['link', 'set', 'dev', 'tap9', 'nomaster'] in argvs(steps)
    assert ['link', 'set', 'dev', 'tap0', 'master', 'br0'] in argvs(steps)
    assert ['link', 'set', 'dev', 'eth0', 'nomaster'] in argvs(steps)


# ---------------------------------------------------------------- shape (b): undo a give-back

def test_undo_give_back_order():
    before = taken_over()
    steps = rollback_plan.plan_rollback(before, rollback_plan.after_change(before))
    assert texts(steps) == [
        'the DHCP client on eth0 stops',
        'br0 exists (a bridge, STP off, forward delay 0 s)',
        'br0 has the MAC %s' % MAC,
        "br0 has the alias '%s' again" % MARK,
        'br0 is up',
        'br0 holds exactly 10.0.0.2/24',
        'eth0 is a port of br0 again',
        'eth0 is up',
        'route default via 10.0.0.1 onlink moves to br0',
        'eth0 holds exactly no addresses',
        'tap0 is a port of br0 again',
        'tap1 is a port of br0 again',
        'the DHCP client on br0 runs again: %s' % ' '.join(dhclient('br0').argv),
    ]
    create = steps[1]
    assert create.argv == ['link', 'add', 'name', 'br0', 'type', 'bridge', 'stp_state', '0',
                           'forward_delay', '0']
    assert create.tolerate == [rollback_plan.EXISTS]  # the bridge may still be there (half done)
    assert steps[10].tolerate == [rollback_plan.MISSING_DEVICE]  # a former tap may be gone
    assert steps[0].pidfiles == ['/run/dhclient.eth0.pid']


# ---------------------------------------------------------------- a LAN with SLAAC (issue 13)

SLAAC = 'fd00:10::5054:ff:fe12:3456/64'
TEMPORARY = 'fd00:10::49e7:38a:650d:e9d2/64'


def test_undo_takeover_solicits_on_the_uplink_that_had_slaac_and_restores_no_slaac_address():
    before = Snapshot(1000.0, uplink(autoconf=[SLAAC, TEMPORARY]), Link('br0'))
    steps = rollback_plan.plan_rollback(before, rollback_plan.after_change(before))
    solicit = [step for step in steps if step.kind == 'solicit']
    assert [(step.dev, step.text) for step in solicit] == [
        ('eth0', "eth0 asks the LAN's IPv6 router for its SLAAC addresses again")]
    assert index_of(steps, 'eth0 leaves br0') < index_of(steps, 'asks the LAN') < index_of(steps, 'br0 is deleted')
    restored = [entry['address'] for step in steps if step.kind == 'addresses' for entry in step.addresses]
    assert restored == ['10.0.0.2/24', '2001:db8::2/64']


def test_undo_give_back_releases_the_ports_ra_routes_and_solicits_on_the_bridge():
    before = taken_over()
    before = dataclasses.replace(before, bridge=dataclasses.replace(before.bridge, autoconf=[SLAAC, TEMPORARY]))
    steps = rollback_plan.plan_rollback(before, rollback_plan.after_change(before))
    at = index_of(steps, 'eth0 holds exactly no addresses')
    assert texts(steps)[at + 1:at + 3] == [
        'the routes eth0 learnt from router advertisements go',
        'the route to the advertised prefix fd00:10::/64 through eth0 goes']
    assert steps[at + 1].argv == ['-6', 'route', 'flush', 'dev', 'eth0', 'proto', 'ra']
    assert steps[at + 2].argv == ['-6', 'route', 'del', 'fd00:10::/64', 'dev', 'eth0', 'proto', 'kernel']
    assert rollback_plan.MISSING_ROUTE in steps[at + 2].tolerate
    assert index_of(steps, 'tap1 is a port of br0 again') < index_of(steps, "br0 asks the LAN's IPv6 router")
    assert [step.dev for step in steps if step.kind == 'solicit'] == ['br0']


def test_no_solicit_without_slaac():
    for before in (Snapshot(1000.0, uplink(), Link('br0')), taken_over()):
        steps = rollback_plan.plan_rollback(before, rollback_plan.after_change(before))
        assert not [step for step in steps if step.kind == 'solicit' or 'advertis' in step.text]


def test_autoconf_survives_the_json_round_trip():
    before = Snapshot(1000.0, uplink(autoconf=[SLAAC]), Link('br0'))
    assert Snapshot.from_json(json.loads(json.dumps(before.to_json()))) == before
    old = before.to_json()
    del old['uplink']['autoconf']   # a snapshot written by the previous version
    assert Snapshot.from_json(old).uplink.autoconf == []


def test_undo_give_back_records_stp_and_forward_delay():
    before = taken_over()
    before = dataclasses.replace(before, bridge=dataclasses.replace(before.bridge, stp=True,
                                                                    forward_delay=4))
    step = rollback_plan.plan_rollback(before, before)[1]
    assert step.argv[-4:] == ['stp_state', '1', 'forward_delay', '400']


@pytest.mark.parametrize('before, now_dhcp, pidfiles', [
    (taken_over(), [], ['/run/dhclient.eth0.pid']),
    (taken_over(), [DhcpClient('eth0', 7, ['dhclient', '-pf', '/run/other.pid', 'eth0'], '/run/other.pid')],
     ['/run/dhclient.eth0.pid', '/run/other.pid']),
], ids=['default pidfile', 'the running client pidfile too'])
def test_dhcp_stop_pidfiles(before, now_dhcp, pidfiles):
    now = dataclasses.replace(rollback_plan.after_change(before), dhcp=now_dhcp)
    assert rollback_plan.plan_rollback(before, now)[0].pidfiles == pidfiles


def test_no_dhcp_stop_where_a_client_ran_before():
    """A client on both links before (odd, but possible): neither is stopped."""
    before = dataclasses.replace(taken_over(), dhcp=[dhclient('br0'), dhclient('eth0', 101)])
    steps = rollback_plan.plan_rollback(before, before)
    assert [step.kind for step in steps].count('dhcp_stop') == 0
    assert [step.dev for step in steps if step.kind == 'dhcp_start'] == ['br0', 'eth0']


# ---------------------------------------------------------------- files

def test_files_restored_or_removed_last():
    before = dataclasses.replace(taken_over(), files=[
        SavedFile('/etc/network/interfaces.d/br0', True, 0o640, 0, 4, b'auto br0\n'),
        SavedFile('/etc/network/interfaces.d/new', False)])
    steps = rollback_plan.plan_rollback(before, before)
    assert [(step.kind, step.path, step.saved, step.mode, step.gid) for step in steps[-2:]] == [
        ('file_write', '/etc/network/interfaces.d/br0', 'files/0', 0o640, 4),
        ('file_remove', '/etc/network/interfaces.d/new', None, None, None)]


# ---------------------------------------------------------------- records

def test_snapshot_json_round_trip_without_content():
    before = dataclasses.replace(taken_over(), files=[SavedFile('/etc/x', True, 0o600, 1, 2, b'secret')])
    data = json.loads(json.dumps(before.to_json()))
    assert 'content' not in data['files'][0]
    assert Snapshot.from_json(data) == before  # content does not take part in equality


def test_steps_are_json():
    before = taken_over()
    steps = rollback_plan.plan_rollback(before, rollback_plan.after_change(before))
    assert json.loads(json.dumps([step.to_json() for step in steps]))[0]['kind'] == 'dhcp_stop'


def test_after_change_predicts_both_shapes():
    takeover = rollback_plan.after_change(Snapshot(1000.0, uplink(), Link('br0')))
    assert takeover.uplink.master == 'br0' and takeover.uplink.addresses == []
    assert takeover.bridge.exists and takeover.bridge.mac == MAC
    assert takeover.bridge.address_texts() == ['10.0.0.2/24', '2001:db8::2/64']
    release = rollback_plan.after_change(taken_over())
    assert not release.bridge.exists and release.uplink.master is None
    assert release.uplink.address_texts() == ['10.0.0.2/24']
    assert release.dhcp == [dataclasses.replace(dhclient('eth0'), pid=100)]


@pytest.mark.parametrize('client, ifname, pidfile', [
    (dhclient('eth0'), 'br0', '/run/dhclient.br0.pid'),
    (DhcpClient('eth0', 5, ['/x/dhclient', '-pf', '/tmp/t/dhclient.eth0.pid', 'eth0'],
                '/tmp/t/dhclient.eth0.pid'), 'br0', '/tmp/t/dhclient.br0.pid'),
    (DhcpClient('eth0', 5, ['dhcpcd', 'eth0']), 'br0', '/run/dhclient.br0.pid'),
], ids=['ifupdown', 'other folder', 'no pidfile'])
def test_moved_client(client, ifname, pidfile):
    moved = rollback_plan.moved_client(client, ifname)
    assert moved.ifname == ifname and moved.pidfile == pidfile
    assert client_interface(moved.argv) == ifname
    assert not [word for word in moved.argv if 'eth0' in word]


def test_dhcp_stop_knows_the_moved_clients_pidfile():
    client = DhcpClient('eth0', 5, ['/bin/sh', '/t/dhclient', '-pf', '/t/dhclient.eth0.pid', 'eth0'],
                        '/t/dhclient.eth0.pid')
    before = Snapshot(1000.0, uplink(), Link('br0'), dhcp=[client])
    stop = rollback_plan.plan_rollback(before, rollback_plan.after_change(before))[0]
    assert stop.pidfiles == ['/run/dhclient.br0.pid', '/t/dhclient.br0.pid']


# ---------------------------------------------------------------- DHCP client argv

@pytest.mark.parametrize('argv, ifname, pidfile', [
    (dhclient('eth0').argv, 'eth0', '/run/dhclient.eth0.pid'),
    (['dhclient', '-pf', '/run/x.pid'], None, '/run/x.pid'),
    (['/usr/sbin/dhcpcd', '-q', 'br0'], 'br0', None),
    (['udhcpc', '-i', 'eth1', '-p', '/run/u.pid', '-f'], 'eth1', '/run/u.pid'),
    (['/bin/sh', '/tmp/stand-in/dhclient', '-pf', '/tmp/p', 'eth0'], 'eth0', '/tmp/p'),
    (['/bin/sleep', 'eth0'], None, None),
    (['/bin/sh', '/tmp/other', 'eth0'], None, None),
    ([], None, None),
], ids=['ifupdown dhclient', 'no interface', 'dhcpcd', 'udhcpc -i', 'stand-in script',
        'not a client', 'other script', 'empty'])
def test_client_interface(argv, ifname, pidfile):
    assert client_interface(argv) == ifname
    assert client_pidfile(argv) == pidfile


def test_dhcp_clients_of_this_network_namespace_only(tmp_path):
    """A client on br0 in another namespace (another host of the lab) is not ours."""
    from ansible_collections.tuntap.qemu.plugins.module_utils._confirm.snapshot import dhcp_clients
    here = tmp_path / 'ns-here'
    here.write_text('')
    there = tmp_path / 'ns-there'
    there.write_text('')
    proc = tmp_path / 'proc'
    for pid, namespace, argv in (('self', here, []), ('10', here, dhclient('br0').argv),
                                 ('11', there, dhclient('br0').argv),
                                 ('12', here, dhclient('eth1').argv), ('13', None, dhclient('eth0').argv)):
        (proc / pid / 'ns').mkdir(parents=True)
        if namespace is not None:
            os.link(namespace, proc / pid / 'ns' / 'net')
        (proc / pid / 'cmdline').write_bytes(b''.join(word.encode() + b'\0' for word in argv))
    assert dhcp_clients(('eth0', 'br0'), str(proc)) == [
        DhcpClient('br0', 10, dhclient('br0').argv, '/run/dhclient.br0.pid')]
