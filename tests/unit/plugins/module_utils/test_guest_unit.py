# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""qemu_guest as a systemd unit: where systemd runs, unit rendering, the plan of systemctl
steps, and the unit's helper script against a fake QMP server."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._guest import guest_plan, guest_unit, qemu


@pytest.mark.parametrize('make_dir, expected', [
    (True, True),
    (False, False),
])
def test_systemd_booted(tmp_path, make_dir, expected):
    run_dir = tmp_path / 'run' / 'systemd' / 'system'
    if make_dir:
        run_dir.mkdir(parents=True)
    assert guest_unit.systemd_booted(str(run_dir)) is expected


def test_systemd_booted_is_a_directory_test_only():
    seen = []
    assert guest_unit.systemd_booted('/x', isdir=lambda path: seen.append(path) or True) is True
    assert seen == ['/x']


def test_same_netns_as_init(tmp_path):
    (tmp_path / 'a').write_text('')
    (tmp_path / 'b').write_text('')
    assert guest_unit.same_netns_as_init(str(tmp_path / 'a'), str(tmp_path / 'a')) is True
    assert guest_unit.same_netns_as_init(str(tmp_path / 'a'), str(tmp_path / 'b')) is False
    assert guest_unit.same_netns_as_init(str(tmp_path / 'a'), str(tmp_path / 'none')) is None


@pytest.mark.parametrize('autostart, booted, same_netns, mode, warning', [
    (False, False, True, 'daemon', None),
    (False, True, True, 'daemon', None),
    (False, True, False, 'daemon', None),
    (True, True, True, 'systemd', None),
    (True, False, True, 'daemon', 'systemd is not the init system here (/run/systemd/system is missing)'),
    (True, False, None, 'daemon', 'systemd is not the init system here'),
    (True, True, False, 'daemon', "a network namespace other than PID 1's"),
    (True, True, None, 'daemon', "a network namespace other than PID 1's (or it cannot be compared)"),
])
def test_service_mode(autostart, booted, same_netns, mode, warning):
    got_mode, got_warning = guest_unit.service_mode(autostart, booted, same_netns, 'vm1')
    assert got_mode == mode
    if warning is None:
        assert got_warning is None
    else:
        assert warning in got_warning and 'guest vm1 runs daemonized' in got_warning


@pytest.mark.parametrize('arg, variables, word', [
    ('-m', True, '-m'),
    ('tap,id=net0,ifname=tap0,script=no,downscript=no', True, 'tap,id=net0,ifname=tap0,script=no,downscript=no'),
    ('unix:/run/tuntap-qemu/vm1/qmp.sock,server=on,wait=off', True, 'unix:/run/tuntap-qemu/vm1/qmp.sock,server=on,wait=off'),
    ('console=ttyS0 quiet', True, '"console=ttyS0 quiet"'),
    ('100%', True, '"100%%"'),
    ('$HOME', True, '"$$HOME"'),
    ('/opt/$weird', False, '"/opt/$weird"'),
    ('say "hi"', True, '"say \\"hi\\""'),
    ('back\\slash', True, '"back\\\\slash"'),
    (';', True, '";"'),
    ("it's", True, '"it\'s"'),
    ('', True, '""'),
    ('a\tb', True, '"a\\tb"'),
])
def test_exec_word(arg, variables, word):
    assert guest_unit.exec_word(arg, variables) == word


def test_exec_line_wraps_options_with_their_values():
    line = guest_unit.exec_line(['/usr/bin/qemu', '-nodefaults', '-m', '256', '-append', 'a b'], wrap=True)
    assert line == '/usr/bin/qemu \\\n    -nodefaults \\\n    -m 256 \\\n    -append "a b"'
    assert guest_unit.exec_line(['/bin/x', 'a b', 'c']) == '/bin/x "a b" c'


def params(**overrides):
    base = {'name': 'vm1', 'state': 'running', 'nics': [{'tap': 'tap0', 'mac': None, 'model': 'virtio-net-pci', 'queues': 1}],
            'memory': 256, 'cpus': 1, 'machine': 'q35', 'accel': 'auto', 'kernel': '/etc/hostname',
            'initrd': None, 'append': 'console=ttyS0 ip=192.168.0.10::192.168.0.1:255.255.255.0:vm1:eth0:off',
            'disk': None, 'disk_format': None, 'binary': '/usr/bin/qemu-system-x86_64', 'extra_args': [],
            'run_as': None, 'runtime_dir': None, 'restart_on_change': True, 'stop_timeout': 30}
    base.update(overrides)
    return base


def sample_unit(account=('qemu', 'kvm'), stop_timeout=30, binary='/usr/bin/qemu-system-x86_64'):
    guest, errors = guest_plan.guest_spec(params(binary=binary))
    assert errors == []
    files = qemu.paths('/run/tuntap-qemu/vm1')
    argv = qemu.build_argv(guest, 'tcg', files, daemonize=False)
    return argv, guest_unit.render_unit('vm1', argv, files, ['tap0'], account, stop_timeout)


def unit_lines(text):
    """The unit's settings with continuation lines joined, as systemd reads them."""
    return text.replace(' \\\n    ', ' ').splitlines()


@pytest.mark.parametrize('text, ours', [
    (None, False),
    ('', False),
    ('# Managed by tuntap.qemu (module qemu_guest): guest vm1\n[Unit]\n', True),
    ('#!/usr/bin/python3\n# Managed by tuntap.qemu (module qemu_guest)\n', True),
    ('[Unit]\n# Managed by tuntap.qemu\n', False),
    ('#!/bin/sh\necho hi\n', False),
])
def test_is_ours(text, ours):
    assert guest_unit.is_ours(text) is ours


def test_helper_script_is_ours():
    assert guest_unit.is_ours(guest_unit.render_helper())


def test_unit_name_and_path():
    assert guest_unit.unit_name('vm1') == 'tuntap-qemu-guest-vm1.service'
    assert guest_unit.unit_path('vm1') == '/etc/systemd/system/tuntap-qemu-guest-vm1.service'


@pytest.mark.parametrize('account, stop_timeout, present, absent', [
    (('qemu', 'kvm'), 30,
     ['User=qemu', 'Group=kvm', 'TimeoutStopSec=50',
      'ExecStartPre=+/usr/bin/install -d -m 0750 -o qemu -g kvm /run/tuntap-qemu/vm1',
      'ExecStop=/usr/bin/python3 /usr/local/libexec/tuntap-qemu/qemu-guest-unit powerdown /run/tuntap-qemu/vm1/qmp.sock 30'],
     []),
    (None, 0,
     ['TimeoutStopSec=20', 'ExecStartPre=+/usr/bin/install -d -m 0750 /run/tuntap-qemu/vm1'],
     ['User=', 'Group=']),
])
def test_render_unit(account, stop_timeout, present, absent):
    argv, text = sample_unit(account, stop_timeout)
    lines = unit_lines(text)
    assert guest_unit.is_ours(text) and text.startswith('# Managed by tuntap.qemu (module qemu_guest): guest vm1;')
    for line in present + [
            '[Unit]', 'Wants=network-online.target',
            'After=network-online.target networking.service remote-fs.target',
            '[Service]', 'Type=exec', 'Restart=on-failure',
            'ExecStartPre=+/usr/bin/rm -f /run/tuntap-qemu/vm1/qemu.pid /run/tuntap-qemu/vm1/qmp.sock',
            'ExecStartPre=/usr/bin/python3 /usr/local/libexec/tuntap-qemu/qemu-guest-unit wait-taps 60 tap0',
            '[Install]', 'WantedBy=multi-user.target']:
        assert line in lines, line
    for prefix in absent:
        assert not any(line.startswith(prefix) for line in lines), prefix
    exec_start = [line for line in lines if line.startswith('ExecStart=')]
    assert len(exec_start) == 1
    assert '-daemonize' not in argv and '-daemonize' not in text
    assert '-pidfile /run/tuntap-qemu/vm1/qemu.pid' in exec_start[0]
    assert '-qmp unix:/run/tuntap-qemu/vm1/qmp.sock,server=on,wait=off' in exec_start[0]
    assert '-append "console=ttyS0 ip=192.168.0.10::192.168.0.1:255.255.255.0:vm1:eth0:off"' in exec_start[0]
    assert ' '.join(guest_unit.exec_word(arg) for arg in argv) == exec_start[0][len('ExecStart='):]


def test_render_unit_is_stable():
    assert sample_unit()[1] == sample_unit()[1]
    assert sample_unit(stop_timeout=31)[1] != sample_unit()[1]


@pytest.mark.skipif(shutil.which('systemd-analyze') is None, reason='systemd-analyze is not installed')
def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    # The program must exist for verify; the rest of the command line is as rendered.
    _argv, text = sample_unit(binary=sys.executable)
    path = tmp_path / 'tuntap-qemu-guest-vm1.service'
    path.write_text(text)
    result = subprocess.run(['systemd-analyze', 'verify', '--man=no', str(path)],
                            capture_output=True, text=True, check=False,
                            env=dict(os.environ, LC_ALL='C', SYSTEMD_LOG_LEVEL='warning'))
    problems = [line for line in result.stderr.splitlines()
                if 'tuntap-qemu-guest-vm1.service' in line and 'is not safe' not in line]
    assert result.returncode == 0 and problems == [], result.stderr


@pytest.mark.parametrize('text, status', [
    ('LoadState=loaded\nActiveState=active\nUnitFileState=enabled\nMainPID=4242\nNeedDaemonReload=no\n',
     guest_unit.UnitStatus(True, True, True, 4242, False)),
    ('LoadState=not-found\nActiveState=inactive\nUnitFileState=\nMainPID=0\nNeedDaemonReload=no\n',
     guest_unit.UnitStatus(False, False, False, None, False)),
    ('LoadState=loaded\nActiveState=failed\nUnitFileState=disabled\nMainPID=0\nNeedDaemonReload=yes\n',
     guest_unit.UnitStatus(True, False, False, None, True)),
    ('LoadState=loaded\nActiveState=activating\nUnitFileState=enabled\nMainPID=0\n',
     guest_unit.UnitStatus(True, True, True, None, False)),
])
def test_parse_show(text, status):
    assert guest_unit.parse_show(text) == status


UNIT = '# Managed by tuntap.qemu (module qemu_guest): guest vm1\n[Service]\n'
OTHER = '# Managed by tuntap.qemu (module qemu_guest): guest vm1\n[Service]\nUser=x\n'
FOREIGN = '[Service]\nExecStart=/bin/true\n'
ARGV = ['/usr/bin/qemu-system-x86_64', '-name', 'guest=vm1,process=qemu-vm1']
LOADED_ON = guest_unit.UnitStatus(True, True, True, 100, False)
LOADED_OFF = guest_unit.UnitStatus(True, False, True, None, False)
DISABLED_OFF = guest_unit.UnitStatus(True, False, False, None, False)
NONE = guest_unit.NO_UNIT
UP_UNIT = {'state': 'running', 'pid': 100, 'cmdline': ARGV}
UP_DAEMON = {'state': 'running', 'pid': 200, 'cmdline': ARGV + ['-daemonize']}
UP_OLD = {'state': 'running', 'pid': 100, 'cmdline': ARGV + ['-m', '512']}
DEAF_UNIT = {'state': 'unresponsive', 'pid': 100, 'cmdline': ARGV}
DOWN = {'state': 'stopped', 'pid': None, 'cmdline': None}


def steps(*names, **fields):
    values = dict.fromkeys(guest_unit.UnitSteps._fields, False)
    values['action'] = None
    values.update(dict.fromkeys(names, True))
    values.update(fields)
    return guest_unit.UnitSteps(**values)


@pytest.mark.parametrize('case, state, wanted, before, status, guest, restart_on_change, expected', [
    ('fresh host: write, reload, enable, start', 'running', True, None, NONE, DOWN, True,
     steps('write', 'reload', 'enable', 'start', action='start')),
    ('converged: nothing', 'running', True, UNIT, LOADED_ON, UP_UNIT, True, steps()),
    ('unit stopped: start only', 'running', True, UNIT, LOADED_OFF, DOWN, True,
     steps('start', action='start')),
    ('disabled by hand: enable again', 'running', True, UNIT, guest_unit.UnitStatus(True, True, False, 100, False),
     UP_UNIT, True, steps('enable')),
    ('unit changed: write, reload, restart', 'running', True, OTHER, LOADED_ON, UP_UNIT, True,
     steps('write', 'reload', 'restart', action='restart')),
    ('unit changed, restart_on_change=false: no restart', 'running', True, OTHER, LOADED_ON, UP_UNIT, False,
     steps('write', 'reload')),
    ('running command line is old: restart', 'running', True, UNIT, LOADED_ON, UP_OLD, True,
     steps('restart', action='restart')),
    ('file edited, not reloaded: reload', 'running', True, UNIT, guest_unit.UnitStatus(True, True, True, 100, True),
     UP_UNIT, True, steps('reload')),
    ('daemonized guest: stop it, then the unit starts', 'running', True, None, NONE, UP_DAEMON, True,
     steps('stop_daemon', 'write', 'reload', 'enable', 'start', action='restart')),
    ('unit active but a daemonized QEMU holds the name: stop it, restart', 'running', True, UNIT, LOADED_ON,
     UP_DAEMON, True, steps('stop_daemon', 'restart', action='restart')),
    ('QMP deaf under the unit: restart', 'running', True, UNIT, LOADED_ON, DEAF_UNIT, True,
     steps('restart', action='restart')),
    ('stopped: unit stays enabled, stops', 'stopped', True, UNIT, LOADED_ON, UP_UNIT, True,
     steps('stop', action='stop')),
    ('stopped and stopped: nothing', 'stopped', True, UNIT, LOADED_OFF, DOWN, True, steps()),
    ('stopped on a fresh host: the unit is written and enabled, not started', 'stopped', True, None, NONE,
     DOWN, True, steps('write', 'reload', 'enable')),
    ('stopped, a daemonized guest runs: it stops', 'stopped', True, UNIT, LOADED_OFF, UP_DAEMON, True,
     steps('stop_daemon', action='stop')),
    ('not wanted: stop, disable, remove, reload', 'running', False, UNIT, LOADED_ON, UP_UNIT, True,
     steps('stop', 'disable', 'remove', 'reload')),
    ('not wanted, stopped and disabled: remove, reload', 'absent', False, UNIT, DISABLED_OFF, DOWN, True,
     steps('remove', 'reload')),
    ('not wanted and no unit: nothing', 'running', False, None, NONE, UP_DAEMON, True, steps()),
    ('not wanted, a foreign unit of that name: left alone', 'absent', False, FOREIGN, LOADED_ON, DOWN, True,
     steps()),
])
def test_plan_unit(case, state, wanted, before, status, guest, restart_on_change, expected):
    after = UNIT if wanted else None
    got = guest_unit.plan_unit(state, wanted, before, after, status, guest, ARGV, restart_on_change)
    assert got == expected, case
    assert guest_unit.unit_changed(got) == (expected != steps()), case


# ---------------------------------------------------------------- the helper script

@pytest.fixture
def helper(tmp_path):
    path = tmp_path / 'qemu-guest-unit'
    path.write_text(guest_unit.render_helper(sys.executable))
    path.chmod(0o755)
    return path


def run_helper(helper, *args, timeout=30):
    return subprocess.run([sys.executable, str(helper)] + [str(arg) for arg in args],
                          capture_output=True, text=True, timeout=timeout, check=False)


class FakeQmp(object):
    """A QMP server on a unix socket: greets, answers every command, records them, and closes
    the connection on system_powerdown (a guest that powers off) unless `deaf`, and on quit."""

    def __init__(self, path, deaf=False, status='running'):
        self.commands = []
        self.deaf = deaf
        self.status = status
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(1)
        self.thread = threading.Thread(target=self._serve)
        self.thread.daemon = True
        self.thread.start()

    def _serve(self):
        conn, _addr = self.server.accept()
        conn.sendall(json.dumps({'QMP': {'version': {}, 'capabilities': []}}).encode() + b'\n')
        buffer = b''
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                break
            buffer += chunk
            while b'\n' in buffer:
                line, buffer = buffer.split(b'\n', 1)
                command = json.loads(line.decode())['execute']
                self.commands.append(command)
                if command == 'query-status':
                    conn.sendall(json.dumps({'return': {'status': self.status,
                                                        'running': self.status == 'running'}}).encode() + b'\n')
                    continue
                conn.sendall(b'{"return": {}}\n')
                if command == 'quit' or (command == 'system_powerdown' and not self.deaf):
                    conn.sendall(b'{"event": "SHUTDOWN"}\n')
                    conn.close()
                    return
        conn.close()

    def close(self):
        self.thread.join(10)
        self.server.close()


@pytest.mark.parametrize('deaf, commands', [
    (False, ['qmp_capabilities', 'query-status', 'system_powerdown']),
    (True, ['qmp_capabilities', 'query-status', 'system_powerdown', 'quit']),
])
def test_helper_powerdown(helper, tmp_path, deaf, commands):
    fake = FakeQmp(tmp_path / 'qmp.sock', deaf=deaf)
    result = run_helper(helper, 'powerdown', tmp_path / 'qmp.sock', 1)
    fake.close()
    assert result.returncode == 0, result.stderr
    assert fake.commands == commands
    assert ('no powerdown within 1 s; QMP quit' in result.stderr) is deaf


@pytest.mark.parametrize('status', ['prelaunch', 'paused'])
def test_helper_quits_a_guest_that_cannot_power_down_at_once(helper, tmp_path, status):
    fake = FakeQmp(tmp_path / 'qmp.sock', deaf=True, status=status)
    started = time.monotonic()
    result = run_helper(helper, 'powerdown', tmp_path / 'qmp.sock', 20)
    fake.close()
    assert result.returncode == 0, result.stderr
    assert fake.commands == ['qmp_capabilities', 'query-status', 'quit']
    assert 'the guest is %s, not running; QMP quit' % status in result.stderr
    assert time.monotonic() - started < 10


def test_helper_powerdown_without_qemu_is_done(helper, tmp_path):
    result = run_helper(helper, 'powerdown', tmp_path / 'none.sock', 5)
    assert result.returncode == 0 and result.stderr == ''


@pytest.mark.parametrize('args, returncode, message', [
    (['wait-taps', 0, 'lo'], 0, ''),
    (['wait-taps', 1, 'lo', 'ttq-no-such0'], 1, 'tap ttq-no-such0 missing or down after 1 s'),
    (['bogus'], 2, 'wait-taps SECONDS TAP'),
])
def test_helper_wait_taps_and_usage(helper, args, returncode, message):
    result = run_helper(helper, *args)
    assert result.returncode == returncode
    assert message in result.stderr
