# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""qemu_guest's converge with autostart against a fake systemd and a fake QEMU: which
systemctl calls run in which order, what check mode leaves alone, idempotence, and the
switches between the daemonized mode and the unit (never two QEMUs for one guest).

The machine running the tests has no systemd as PID 1, so the unit's own behaviour (boot,
QMP, powerdown) is proven on the real-host VM stage; this proves the module's side."""

from __future__ import annotations

import os
import shlex
import sys

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils import module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils._guest import guest_unit, qemu, qemu_guest_run
from ansible_collections.tuntap.qemu.plugins.module_utils._links import netlink, reading


class Failed(Exception):
    pass


class FakeSystem(object):
    """systemd's view of one unit and the QEMU processes of one guest."""

    def __init__(self):
        self.loaded = None          # unit text systemd has loaded (daemon-reload)
        self.enabled = False
        self.active = False
        self.guest = None           # {'pid', 'argv', 'by_unit'} of the running QEMU, or None
        self.next_pid = 100
        self.calls = []             # systemctl verbs, in order
        self.events = []            # qemu start/stop and systemctl verbs, in order

    def spawn(self, argv, by_unit):
        assert self.guest is None, 'two QEMUs for one guest'
        self.next_pid += 1
        self.guest = {'pid': self.next_pid, 'argv': argv, 'by_unit': by_unit}
        return self.next_pid

    def unit_argv(self):
        text = self.loaded
        start = text.index('ExecStart=') + len('ExecStart=')
        line = text[start:].split('\nExecStop=')[0].replace(' \\\n    ', ' ')
        return [word.replace('%%', '%').replace('$$', '$') for word in shlex.split(line)]

    def systemctl(self, args, unit_path):
        verb = args[0]
        self.calls.append(verb)
        if verb != 'show':
            self.events.append('systemctl ' + verb)
        if verb == 'show':
            on_disk = os.path.exists(unit_path)
            loaded = self.loaded is not None
            return 0, ('LoadState=%s\nActiveState=%s\nUnitFileState=%s\nMainPID=%s\nNeedDaemonReload=%s\n'
                       % ('loaded' if loaded else 'not-found', 'active' if self.active else 'inactive',
                          ('enabled' if self.enabled else 'disabled') if loaded else '',
                          self.guest['pid'] if self.active and self.guest else 0,
                          'yes' if loaded and (not on_disk or open(unit_path).read() != self.loaded) else 'no')), ''
        if verb == 'daemon-reload':
            self.loaded = open(unit_path).read() if os.path.exists(unit_path) else None
        elif verb == 'enable':
            assert self.loaded is not None
            self.enabled = True
        elif verb == 'disable':
            self.enabled = False
        elif verb in ('start', 'restart'):
            if verb == 'restart' and self.active:
                self.guest = None
            self.active = True
            self.spawn(self.unit_argv(), by_unit=True)
        elif verb == 'stop':
            if self.active and self.guest and self.guest['by_unit']:
                self.guest = None
            self.active = False
        return 0, '', ''


class FakeModule(object):
    def __init__(self, system, tmp_path, check_mode=False, **params):
        self.system = system
        self.tmp_path = tmp_path
        self.check_mode = check_mode
        self._diff = True
        self.warnings = []
        self.params = dict(name='vm1', state='running', nics=[{'tap': 'tap0', 'mac': None, 'model': 'virtio-net-pci', 'queues': 1}],
                           memory=256, cpus=1, machine='q35', accel='tcg', kernel='/etc/hostname', initrd=None,
                           append='console=ttyS0', disk=None, disk_format=None, binary=sys.executable,
                           extra_args=[], run_as=None, runtime_dir=str(tmp_path / 'run' / 'vm1'),
                           restart_on_change=True, stop_timeout=5, autostart=True)
        self.params.update(params)

    def get_bin_path(self, name, required=False):
        return '/usr/bin/' + name

    def run_command(self, argv, environ_update=None):
        assert isinstance(argv, list) and argv[0] == '/usr/bin/systemctl'
        assert environ_update['LC_ALL'] == 'C'
        return self.system.systemctl(argv[1:], guest_unit.unit_path('vm1'))

    def warn(self, text):
        self.warnings.append(text)

    def fail_json(self, **result):
        raise Failed(result['msg'])

    def atomic_move(self, src, dest):
        os.rename(src, dest)

    def backup_local(self, path):
        return None


class FakeNetlink(object):
    def get_links(self, index):
        return []

    def close(self):
        pass


@pytest.fixture
def system(tmp_path, monkeypatch):
    system = FakeSystem()
    monkeypatch.setattr(guest_unit, 'UNIT_DIR', str(tmp_path / 'etc'))
    monkeypatch.setattr(guest_unit, 'HELPER_PATH', str(tmp_path / 'libexec' / 'tuntap-qemu' / 'qemu-guest-unit'))
    monkeypatch.setattr(guest_unit, 'systemd_booted', lambda: True)
    monkeypatch.setattr(guest_unit, 'same_netns_as_init', lambda: True)
    monkeypatch.setattr(module_runner, 'require_libraries', lambda module, libraries: None)
    monkeypatch.setattr(netlink, 'open_netlink', FakeNetlink)
    monkeypatch.setattr(reading, 'read_snapshot', lambda: {'tap0': {
        'name': 'tap0', 'ifindex': 5, 'kind': 'tun', 'mode': 'tap', 'state': 'up',
        'operstate': 'up' if system.guest else 'down', 'owner': None, 'group': None, 'multi_queue': False}})

    def observe(files, name):
        guest = system.guest
        if guest is None:
            return {'state': 'stopped', 'pid': None, 'status': None, 'argv': None, 'cmdline': None}
        return {'state': 'running', 'pid': guest['pid'], 'status': 'running', 'argv': guest['argv'],
                'cmdline': guest['argv']}

    def stop(files, name, timeout=30):
        if system.guest is None:
            return 'not running'
        assert not system.guest['by_unit'], 'the module stops a unit QEMU only through systemctl'
        system.guest = None
        system.events.append('qemu stop')
        return 'powerdown'

    def start(argv, files, run_as=None, timeout=60):
        system.events.append('qemu start')
        return system.spawn(argv, by_unit=False)

    monkeypatch.setattr(qemu, 'observe', observe)
    monkeypatch.setattr(qemu, 'stop', stop)
    monkeypatch.setattr(qemu, 'start', start)
    monkeypatch.setattr(qemu, 'query_status', lambda files: {'status': 'running'})
    monkeypatch.setattr(qemu, 'running_pid', lambda files, name: system.guest and system.guest['pid'])
    return system


def converge(system, tmp_path, **params):
    system.calls, system.events = [], []
    return qemu_guest_run.converge(FakeModule(system, tmp_path, **params))


def snapshot(tmp_path):
    return sorted((str(path), path.read_text()) for path in tmp_path.rglob('*') if path.is_file())


def test_autostart_four_ways(system, tmp_path):
    before = snapshot(tmp_path)
    check = converge(system, tmp_path, check_mode=True)
    assert check['changed'] and check['action'] == 'start' and check['mode'] == 'systemd'
    assert system.calls == ['show'] and snapshot(tmp_path) == before and system.guest is None
    assert check['unit'] == {'name': 'tuntap-qemu-guest-vm1.service', 'path': guest_unit.unit_path('vm1'),
                             'enabled': True, 'active': True}
    state_diff, unit_diff, helper_diff = check['diff']
    assert state_diff['before']['unit'] == {'enabled': False, 'active': False}
    assert state_diff['after'] == dict(state_diff['after'], state='running', unit={'enabled': True, 'active': True})
    assert unit_diff['before'] == '' and unit_diff['after'].startswith(guest_unit.MARK)
    assert unit_diff['before_header'].endswith('(absent)')
    assert helper_diff['after'].startswith('#!')

    real = converge(system, tmp_path)
    assert real['changed'] and real['action'] == 'start' and real['state'] == 'running'
    assert system.calls == ['show', 'daemon-reload', 'enable', 'start']
    assert real['pid'] == system.guest['pid'] and system.guest['by_unit']
    assert system.guest['argv'] == real['argv'] and '-daemonize' not in real['argv']
    assert os.stat(guest_unit.HELPER_PATH).st_mode & 0o777 == 0o755
    assert system.enabled and system.active

    for check_mode in (False, True):
        again = converge(system, tmp_path, check_mode=check_mode)
        assert not again['changed'] and again['action'] is None and system.calls == ['show']
        assert again['pid'] == real['pid'] and not isinstance(again['diff'], list)


def test_changed_command_line_restarts_the_unit(system, tmp_path):
    converge(system, tmp_path)
    first = system.guest['pid']
    check = converge(system, tmp_path, check_mode=True, memory=512)
    assert check['action'] == 'restart' and system.calls == ['show'] and system.guest['pid'] == first
    assert '-m 512' in check['diff'][1]['after'] and '-m 256' in check['diff'][1]['before']
    assert check['diff'][0]['before']['argv'] == system.guest['argv'] and '512' in check['diff'][0]['after']['argv']
    changed = converge(system, tmp_path, memory=512)
    assert changed['action'] == 'restart' and system.calls == ['show', 'daemon-reload', 'restart']
    assert system.guest['pid'] != first and '512' in system.guest['argv']
    assert not converge(system, tmp_path, memory=512)['changed']
    # restart_on_change=false: the unit is rewritten, the running guest is left alone
    kept = converge(system, tmp_path, memory=1024, restart_on_change=False)
    assert kept['changed'] and kept['action'] is None and system.calls == ['show', 'daemon-reload']


def test_stopped_keeps_the_unit_enabled(system, tmp_path):
    converge(system, tmp_path)
    stopped = converge(system, tmp_path, state='stopped')
    assert stopped['action'] == 'stop' and system.calls == ['show', 'stop']
    assert system.guest is None and system.enabled and not system.active
    assert stopped['unit']['enabled'] and not stopped['unit']['active']
    assert os.path.exists(guest_unit.unit_path('vm1'))
    assert not converge(system, tmp_path, state='stopped')['changed']
    assert converge(system, tmp_path)['action'] == 'start' and system.calls == ['show', 'start']


def test_stopped_on_a_fresh_host_writes_the_unit_that_running_keeps(system, tmp_path):
    stopped = converge(system, tmp_path, state='stopped')
    assert stopped['changed'] and stopped['action'] is None
    assert system.calls == ['show', 'daemon-reload', 'enable'] and system.guest is None
    assert 'ExecStart=%s ' % sys.executable in open(guest_unit.unit_path('vm1')).read()
    running = converge(system, tmp_path)
    assert running['action'] == 'start' and system.calls == ['show', 'start']


def test_daemonized_guest_stops_before_the_unit_starts(system, tmp_path):
    daemon = converge(system, tmp_path, autostart=False)
    assert daemon['mode'] == 'daemon' and daemon['unit'] is None and system.events == ['qemu start']
    assert '-daemonize' in system.guest['argv'] and system.calls == ['show']
    unit = converge(system, tmp_path)
    assert unit['action'] == 'restart' and unit['mode'] == 'systemd'
    assert system.events == ['qemu stop', 'systemctl daemon-reload', 'systemctl enable', 'systemctl start']
    assert system.guest['by_unit']


def test_unit_guest_stops_before_it_runs_daemonized(system, tmp_path):
    converge(system, tmp_path)
    check = converge(system, tmp_path, autostart=False, check_mode=True)
    assert check['changed'] and check['action'] == 'restart' and system.calls == ['show']
    assert system.guest['by_unit'] and os.path.exists(guest_unit.unit_path('vm1'))
    daemon = converge(system, tmp_path, autostart=False)
    assert daemon['action'] == 'restart' and daemon['unit'] is None
    assert system.events == ['systemctl stop', 'systemctl disable', 'systemctl daemon-reload', 'qemu start']
    assert not os.path.exists(guest_unit.unit_path('vm1')) and not os.path.exists(guest_unit.HELPER_PATH)
    assert not system.guest['by_unit'] and '-daemonize' in system.guest['argv']
    assert not converge(system, tmp_path, autostart=False)['changed'] and system.calls == ['show']


def test_absent_stops_disables_and_removes(system, tmp_path):
    converge(system, tmp_path)
    check = converge(system, tmp_path, state='absent', check_mode=True)
    assert check['changed'] and check['action'] == 'remove' and system.calls == ['show']
    absent = converge(system, tmp_path, state='absent')
    assert absent['action'] == 'remove' and absent['state'] == 'absent' and absent['unit'] is None
    assert system.events == ['systemctl stop', 'systemctl disable', 'systemctl daemon-reload']
    assert system.guest is None and not system.enabled and system.loaded is None
    assert not os.path.exists(guest_unit.unit_path('vm1'))
    assert not os.path.exists(os.path.dirname(guest_unit.HELPER_PATH))
    assert not os.path.exists(str(tmp_path / 'run' / 'vm1'))
    for check_mode in (False, True):
        assert not converge(system, tmp_path, state='absent', check_mode=check_mode)['changed']


def test_foreign_unit_file_is_refused(system, tmp_path):
    path = guest_unit.unit_path('vm1')
    os.makedirs(os.path.dirname(path))
    with open(path, 'w') as handle:
        handle.write('[Service]\nExecStart=/bin/true\n')
    with pytest.raises(Failed, match='is not managed by tuntap.qemu'):
        converge(system, tmp_path)
    assert system.calls == ['show'] and open(path).read() == '[Service]\nExecStart=/bin/true\n'
    # Without autostart the admin's unit is left as it is.
    converge(system, tmp_path, state='absent')
    assert open(path).read() == '[Service]\nExecStart=/bin/true\n' and system.calls == ['show']


def test_without_systemd_nothing_is_read(system, tmp_path, monkeypatch):
    monkeypatch.setattr(guest_unit, 'systemd_booted', lambda: False)
    module = FakeModule(system, tmp_path)
    result = qemu_guest_run.converge(module)
    assert result['mode'] == 'daemon' and result['unit'] is None and system.calls == []
    assert len(module.warnings) == 1 and 'runs daemonized' in module.warnings[0]
    assert not os.path.exists(guest_unit.UNIT_DIR)


def test_unit_start_drops_the_daemonized_record(system, tmp_path):
    # argv.json is the daemonized start's record; left beside the unit's QEMU it would make that
    # QEMU look like one we did not start (qemu.process_is_ours compares it with /proc/PID/cmdline).
    converge(system, tmp_path, autostart=False)
    argv_file = qemu.paths(str(tmp_path / 'run' / 'vm1'))['argv_file']
    os.makedirs(os.path.dirname(argv_file), exist_ok=True)
    with open(argv_file, 'w') as handle:
        handle.write('["qemu-system-x86_64", "-daemonize"]')
    check = converge(system, tmp_path, check_mode=True)
    assert check['action'] == 'restart' and os.path.exists(argv_file)
    unit = converge(system, tmp_path)
    assert unit['mode'] == 'systemd' and system.guest['by_unit'] and not os.path.exists(argv_file)
