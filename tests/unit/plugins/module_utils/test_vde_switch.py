# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vde_switch: the request, its command line, which process is ours, the action, the unit,
the tap checks."""

from __future__ import annotations

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._links import tun_holders
from ansible_collections.tuntap.qemu.plugins.module_utils._vde import switch_module, switch_request, switch_service

PIDFILE = '/run/tuntap-qemu/vde/vde_switch.pid'


def params(**overrides):
    base = {'state': 'present', 'tap': 'vde0', 'socket': None, 'group': None, 'mode': '0770',
            'service': 'auto', 'unit_dir': '/etc/systemd/system', 'runtime_dir': '/run/tuntap-qemu/vde'}
    base.update(overrides)
    return base


def request(**overrides):
    result, errors = switch_request.parse_request(params(**overrides))
    assert errors == []
    return result


def test_defaults_are_the_fleet_plans():
    got = request()
    assert got.socket == '/run/tuntap-qemu/vde/vde0.ctl'
    assert got.pidfile == PIDFILE
    assert (got.mode, got.dir_mode) == ('0770', '0770')


@pytest.mark.parametrize('mode, normalized, dir_mode', [
    ('0770', '0770', '0770'), ('770', '0770', '0770'), ('0700', '0700', '0700'),
    ('0660', '0660', '0770'), ('0600', '0600', '0700'), ('0666', '0666', '0777'),
])
def test_modes(mode, normalized, dir_mode):
    got = request(mode=mode)
    assert (got.mode, got.dir_mode) == (normalized, dir_mode)


@pytest.mark.parametrize('overrides, message', [
    ({'tap': None}, 'tap: required with state=present'),
    ({'tap': 'vde/0'}, "tap: interface name 'vde/0'"),
    ({'mode': 'rw'}, "mode: 'rw' is not an octal mode"),
    ({'mode': '0880'}, "mode: '0880' is not an octal mode"),
    ({'socket': 'vde0.ctl'}, "socket: 'vde0.ctl' must be an absolute path"),
    ({'group': ' '}, 'group: must not be empty'),
    ({'runtime_dir': 'run'}, "runtime_dir: 'run' must be an absolute path"),
])
def test_request_errors(overrides, message):
    _request, errors = switch_request.parse_request(params(**overrides))
    assert any(message in error for error in errors), errors


def test_absent_needs_no_tap():
    _request, errors = switch_request.parse_request(params(state='absent', tap=None))
    assert errors == []


@pytest.mark.parametrize('overrides, words', [
    ({}, ['/usr/bin/vde_switch', '--sock', '/run/tuntap-qemu/vde/vde0.ctl', '--tap', 'vde0', '--mode', '0770',
          '--dirmode', '0770', '--mgmt', '/run/tuntap-qemu/vde/vde_switch.mgmt', '--mgmtmode', '0600',
          '--daemon', '--pidfile', PIDFILE]),
    ({'group': 'kvm', 'mode': '0660'},
     ['/usr/bin/vde_switch', '--sock', '/run/tuntap-qemu/vde/vde0.ctl', '--tap', 'vde0', '--mode', '0660',
      '--dirmode', '0770', '--group', 'kvm', '--mgmt', '/run/tuntap-qemu/vde/vde_switch.mgmt', '--mgmtmode',
      '0600', '--daemon', '--pidfile', PIDFILE]),
])
def test_argv(overrides, words):
    assert switch_service.argv('/usr/bin/vde_switch', request(**overrides)) == words


@pytest.mark.parametrize('args, ours', [
    (['/usr/bin/vde_switch', '--daemon', '--pidfile', PIDFILE], True),
    (['vde_switch', '--pidfile', PIDFILE], True),
    (['/usr/bin/vde_switch', '--pidfile', '/run/vde.pid'], False),
    (['/usr/bin/vde_switch', '--sock', '/run/tuntap-qemu/vde/vde0.ctl'], False),
    (['/usr/bin/python3', 'x.py', '--pidfile', PIDFILE], False),
    ([], False),
    (None, False),
])
def test_is_ours(args, ours):
    assert switch_service.is_ours(args, PIDFILE) is ours


A = ['vde_switch', '--tap', 'vde0']
B = ['vde_switch', '--tap', 'vde1']


@pytest.mark.parametrize('wanted, running, desired, unit_changed, action', [
    (True, None, A, False, 'started'),
    (True, A, A, False, 'none'),
    (True, A, B, False, 'restarted'),
    (True, A, A, True, 'restarted'),
    (False, A, None, False, 'stopped'),
    (False, None, None, True, 'none'),
])
def test_decide_action(wanted, running, desired, unit_changed, action):
    assert switch_service.decide_action(wanted, running, desired, unit_changed) == action


def test_unit():
    req = request(group='kvm')
    args = switch_service.argv('/usr/bin/vde_switch', req)
    text = switch_service.render_unit(args, req)
    lines = text.splitlines()
    assert lines[0].startswith('# Managed by tuntap.qemu (module vde_switch)')
    for line in ('Type=forking', 'PIDFile=%s' % PIDFILE, 'WantedBy=multi-user.target',
                 'After=network.target networking.service',
                 'ExecStartPre=/usr/bin/rm -f %s' % PIDFILE,
                 'ExecStartPre=/usr/bin/test -e /sys/class/net/vde0/tun_flags',
                 'ExecStart=%s' % ' '.join(args)):
        assert line in lines, text
    assert switch_service.render_unit(args, req) == text


def link(**fields):
    record = {'name': 'vde0', 'kind': 'tun', 'mode': 'tap', 'state': 'up', 'carrier': False,
              'multi_queue': False}
    record.update(fields)
    return record


QEMU = tun_holders.Holder(4242, 'qemu-system-x86')
OURS = tun_holders.Holder(77, 'vde_switch')


@pytest.mark.parametrize('record, holders, own_pid, message', [
    (None, [], None, "tap: 'vde0' does not exist; create it first (tuntap.qemu.tap_device)"),
    (link(kind='veth', mode=None), [], None, "tap: 'vde0' is a veth, not a tap device"),
    (link(mode='tun'), [], None, "tap: 'vde0' is a tun, not a tap device"),
    (link(state='down'), [], None, "tap: 'vde0' is down"),
    (link(carrier=True), [QEMU], None, "tap: 'vde0' is already in use by PID 4242 (qemu-system-x86)"),
    (link(carrier=True), [OURS, QEMU], 77, "tap: 'vde0' is already in use by PID 4242"),
    (link(carrier=True), [], None, "tap: 'vde0' has carrier, so a process"),
])
def test_tap_errors(record, holders, own_pid, message):
    errors = switch_module.tap_errors(request(), record, holders, own_pid)
    assert any(message in error for error in errors), errors


@pytest.mark.parametrize('record, holders, own_pid', [
    (link(), [], None),
    (link(carrier=True), [OURS], 77),     # our own switch (a restart)
])
def test_tap_ok(record, holders, own_pid):
    assert switch_module.tap_errors(request(), record, holders, own_pid) == []
