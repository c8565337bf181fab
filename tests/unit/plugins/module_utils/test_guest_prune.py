# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""qemu_guest prune=true: which guests are ours (runtime directories, unit files in a tmp unit
folder), which process is ours (/proc/PID/cmdline of real child processes), what a prune
plans, and its converge against a fake systemd and fake QEMUs: every removal in check mode
with nothing touched, one daemon-reload, the admin's unit and folders left alone, changed=0
the second time.

The machine running the tests has no systemd as PID 1: the units' real removal is for the
real-host stage; this proves the discovery and the module's side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils import module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils._guest import guest_prune, guest_unit, qemu, qemu_guest_run


def guest_argv(name, directory, binary='/usr/bin/qemu-system-x86_64'):
    """What qemu.build_argv() makes for a daemonized guest in `directory`."""
    guest = {'name': name, 'binary': binary, 'machine': 'q35', 'memory': 256, 'cpus': 1,
             'nics': [{'tap': 'tap-' + name, 'mac': '52:54:00:00:00:01', 'model': 'virtio-net-pci'}]}
    return qemu.build_argv(guest, 'tcg', qemu.paths(directory))


def make_runtime_dir(root, name, argv=None, pid=None):
    """A runtime directory as qemu.start() leaves it (argv.json, pidfile); argv False: none."""
    directory = os.path.join(str(root), name)
    os.makedirs(directory)
    if argv is not False:
        with open(os.path.join(directory, qemu.ARGV_FILE), 'w') as handle:
            json.dump(argv or guest_argv(name, directory), handle)
    if pid is not None:
        with open(os.path.join(directory, qemu.PIDFILE), 'w') as handle:
            handle.write('%d\n' % pid)
    with open(os.path.join(directory, qemu.SERIAL_LOG), 'w') as handle:
        handle.write('console\n')
    return directory


def make_unit(unit_dir, name, runtime_dir, ours=True):
    text = guest_unit.render_unit(name, [a for a in guest_argv(name, runtime_dir) if a != '-daemonize'],
                                  qemu.paths(runtime_dir), ['tap-' + name])
    if not ours:
        text = '\n'.join(text.splitlines()[2:]) + '\n'
    os.makedirs(str(unit_dir), exist_ok=True)
    path = guest_unit.unit_path(name, str(unit_dir))
    with open(path, 'w') as handle:
        handle.write(text)
    return path


@pytest.fixture
def processes():
    """Start child processes with a given command line; all of them are ended by pid."""
    started = []

    def spawn(*args):
        # python -c with extra arguments: /proc/PID/cmdline holds them as they are.
        argv = [sys.executable, '-c', 'import time; time.sleep(60)'] + list(args)
        process = subprocess.Popen(argv)
        started.append(process)
        deadline = time.monotonic() + 10
        while qemu.process_argv(process.pid) != argv:  # until the exec
            assert time.monotonic() < deadline, 'the child did not start'
            time.sleep(0.01)
        return process.pid

    yield spawn
    for process in started:
        process.kill()
        process.wait()


# ---------------------------------------------------------------- marks

@pytest.mark.parametrize('filename, name', [
    ('tuntap-qemu-guest-vm1.service', 'vm1'),
    ('tuntap-qemu-guest-web.example-2.service', 'web.example-2'),
    ('tuntap-qemu-guest-.service', None),
    ('tuntap-qemu-guest-vm1.service.d', None),
    ('tuntap-qemu-guest-vm1.timer', None),
    ('other-qemu-guest-vm1.service', None),
    ('tuntap-qemu-guest-bad name.service', None),
])
def test_unit_guest_name(filename, name):
    assert guest_prune.unit_guest_name(filename) == name


def test_runtime_dir_of_a_rendered_unit(tmp_path):
    directory = str(tmp_path / 'run' / 'vm 1%$x')
    path = make_unit(tmp_path / 'etc', 'vm1', directory)
    text = open(path).read()
    assert guest_prune.unit_runtime_dir(text) == directory
    argv = guest_prune.unit_exec_start(text)
    assert argv[0] == '/usr/bin/qemu-system-x86_64' and argv[argv.index('-pidfile') + 1].startswith(directory)


@pytest.mark.parametrize('text', ['', '[Service]\nExecStart=/bin/true\n', 'ExecStart="unterminated\n',
                                  'ExecStart=/usr/bin/qemu -pidfile relative/qemu.pid\n'])
def test_unit_runtime_dir_none(text):
    assert guest_prune.unit_runtime_dir(text) is None


def test_find_units_lists_ours_only(tmp_path):
    unit_dir = tmp_path / 'etc'
    ours = make_unit(unit_dir, 'vm1', '/run/tuntap-qemu/vm1')
    make_unit(unit_dir, 'admin', '/run/tuntap-qemu/admin', ours=False)
    os.symlink(ours, guest_unit.unit_path('linked', str(unit_dir)))
    (unit_dir / 'tuntap-qemu-guest-vm2.service.d').mkdir()
    (unit_dir / 'sshd.service').write_text(guest_unit.MARK + '\n')
    assert guest_prune.find_units(str(unit_dir)) == {'vm1': (ours, '/run/tuntap-qemu/vm1')}
    assert guest_prune.find_units(str(tmp_path / 'missing')) == {}


def test_find_runtime_dirs_lists_marked_folders_only(tmp_path):
    root = tmp_path / 'run'
    vm1 = make_runtime_dir(root, 'vm1')
    make_runtime_dir(root, 'nomark', argv=False)                             # no argv.json
    make_runtime_dir(root, 'other', argv=guest_argv('vm9', str(root / 'other')))  # another guest's
    make_runtime_dir(root, 'moved', argv=guest_argv('moved', '/elsewhere'))  # another pidfile
    make_runtime_dir(root, 'garbage', argv={'not': 'a list'})
    (root / 'file').write_text('x')
    os.symlink(vm1, str(root / 'link'))
    assert guest_prune.find_runtime_dirs(str(root)) == {'vm1': vm1}
    assert guest_prune.find_runtime_dirs(str(tmp_path / 'missing')) == {}


def test_found_guests_merge_folders_and_units():
    dirs = {'a': '/r/a', 'b': '/r/b'}
    units = {'b': ('/u/b', '/r/b'), 'c': ('/u/c', '/elsewhere/c'), 'd': ('/u/d', None)}
    assert guest_prune.found_guests(dirs, units, '/r') == [
        guest_prune.FoundGuest('a', '/r/a', None),
        guest_prune.FoundGuest('b', '/r/b', '/u/b'),
        guest_prune.FoundGuest('c', '/elsewhere/c', '/u/c'),
        guest_prune.FoundGuest('d', '/r/d', '/u/d'),
    ]


@pytest.mark.parametrize('keep, remove, kept, skipped', [
    ([], ['a', 'b', 'c'], [], ['h']),
    (['a'], ['b', 'c'], ['a'], ['h']),
    (['a', 'b', 'c', 'h'], [], ['a', 'b', 'c', 'h'], []),
    (['absent', 'c'], ['a', 'b'], ['c'], ['h']),
])
def test_plan_prune(keep, remove, kept, skipped):
    guests = [guest_prune.FoundGuest(name, '/r/' + name) for name in ('a', 'b', 'c', 'h')]
    holders = [guest_prune.ForeignHolder('h', '/r/h', 4242, ('x',))]
    plan = guest_prune.plan_prune(guests, keep, holders)
    assert [guest.name for guest in plan.remove] == remove
    assert list(plan.kept) == kept and [holder.name for holder in plan.skipped] == skipped


# ---------------------------------------------------------------- which process is ours

def test_process_is_ours_needs_name_pidfile_and_recorded_argv(tmp_path, processes):
    directory = str(tmp_path / 'vm1')
    files = qemu.paths(directory)
    own_args = ['-name', 'guest=vm1,process=qemu-vm1', '-pidfile', files['pidfile']]
    pid = processes(*own_args)
    argv = [sys.executable, '-c', 'import time; time.sleep(60)'] + own_args
    make_runtime_dir(tmp_path, 'vm1', argv=argv, pid=pid)
    assert qemu.process_is_ours(pid, 'vm1', files) and qemu.running_pid(files, 'vm1') == pid
    # The same process for another guest name or another folder's pidfile is not ours.
    assert not qemu.process_is_ours(pid, 'vm2', files)
    assert not qemu.process_is_ours(pid, 'vm1', qemu.paths(str(tmp_path / 'other')))
    # Its name and pidfile look like ours, but argv.json recorded another command line.
    with open(files['argv_file'], 'w') as handle:
        json.dump(argv + ['-m', '512'], handle)
    assert qemu.process_is_guest(pid, 'vm1') and not qemu.process_is_ours(pid, 'vm1', files)
    assert qemu.running_pid(files, 'vm1') is None
    # Under a unit nothing is recorded: name and pidfile decide.
    os.unlink(files['argv_file'])
    assert qemu.process_is_ours(pid, 'vm1', files)


def test_stop_never_signals_a_process_that_only_looks_like_ours(tmp_path, processes):
    files = qemu.paths(str(tmp_path / 'vm1'))
    pid = processes('-name', 'guest=vm1,process=qemu-vm1', '-pidfile', files['pidfile'])
    make_runtime_dir(tmp_path, 'vm1', pid=pid)  # argv.json: a QEMU command line, not this one
    assert qemu.stop(files, 'vm1', timeout=0) == 'not running'
    assert os.path.exists('/proc/%d' % pid) and qemu.process_is_guest(pid, 'vm1')


def test_foreign_holder(tmp_path, processes):
    mimic = make_runtime_dir(tmp_path, 'mimic')
    mimic_pid = processes('-name', 'guest=mimic,process=qemu-mimic', '-pidfile', mimic + '/qemu.pid')
    with open(os.path.join(mimic, qemu.PIDFILE), 'w') as handle:
        handle.write('%d\n' % mimic_pid)
    holder = guest_prune.foreign_holder(guest_prune.FoundGuest('mimic', mimic))
    assert holder.pid == mimic_pid and 'neither is touched' in holder.reason
    # A stale pidfile whose pid is some unrelated process: no holder, the folder may go.
    stale = make_runtime_dir(tmp_path, 'stale', pid=processes('unrelated'))
    assert guest_prune.foreign_holder(guest_prune.FoundGuest('stale', stale)) is None
    # No pidfile, or a pid that is gone.
    assert guest_prune.foreign_holder(guest_prune.FoundGuest('x', make_runtime_dir(tmp_path, 'x'))) is None
    gone = make_runtime_dir(tmp_path, 'gone', pid=2 ** 22 + 1)
    assert guest_prune.foreign_holder(guest_prune.FoundGuest('gone', gone)) is None


# ---------------------------------------------------------------- the converge

class Failed(Exception):
    pass


class FakeHost(object):
    """Fake QEMUs by runtime directory and a fake systemd for the unit files in UNIT_DIR."""

    def __init__(self):
        self.running = {}         # runtime dir -> {'pid', 'unit' (name or None)}
        self.active_units = {}    # unit name -> runtime dir
        self.enabled = set()
        self.next_pid = 1000
        self.events = []

    def boot(self, directory, unit=None):
        self.next_pid += 1
        self.running[directory] = {'pid': self.next_pid, 'unit': unit}
        if unit:
            self.active_units[unit] = directory
            self.enabled.add(unit)
        return self.next_pid

    def systemctl(self, args):
        verb, units = args[0], args[1:]
        if verb == 'show':
            unit = units[-1]
            directory = self.active_units.get(unit)
            pid = self.running[directory]['pid'] if directory in self.running else 0
            loaded = os.path.exists(os.path.join(guest_unit.UNIT_DIR, unit))
            return 0, ('LoadState=%s\nActiveState=%s\nUnitFileState=%s\nMainPID=%d\nNeedDaemonReload=no\n'
                       % ('loaded' if loaded else 'not-found', 'active' if directory else 'inactive',
                          'enabled' if unit in self.enabled else 'disabled', pid)), ''
        self.events.append(' '.join(args))
        if verb == 'stop':
            directory = self.active_units.pop(units[0], None)
            self.running.pop(directory, None)
        elif verb == 'disable':
            self.enabled.discard(units[0])
        return 0, '', ''


class FakeModule(object):
    def __init__(self, host, tmp_path, check_mode=False, **params):
        self.host = host
        self.check_mode = check_mode
        self._diff = True
        self.warnings = []
        self.params = dict(name=None, state='running', nics=[], memory=256, cpus=1, machine='q35',
                           accel='auto', kernel=None, initrd=None, append=None, disk=None,
                           disk_format=None, binary='qemu-system-x86_64', extra_args=[], run_as=None,
                           runtime_dir=None, restart_on_change=True, stop_timeout=5, autostart=False,
                           runtime_root=str(tmp_path / 'run'), prune=True, keep=[])
        self.params.update(params)

    def get_bin_path(self, name, required=False):
        return '/usr/bin/' + name

    def run_command(self, argv, environ_update=None):
        assert argv[0] == '/usr/bin/systemctl' and environ_update['LC_ALL'] == 'C'
        return self.host.systemctl(argv[1:])

    def warn(self, text):
        self.warnings.append(text)

    def fail_json(self, **result):
        raise Failed(result['msg'])

    def atomic_move(self, src, dest):
        os.rename(src, dest)


@pytest.fixture
def host(tmp_path, monkeypatch):
    host = FakeHost()
    monkeypatch.setattr(guest_unit, 'UNIT_DIR', str(tmp_path / 'etc'))
    monkeypatch.setattr(guest_unit, 'HELPER_PATH', str(tmp_path / 'libexec' / 'tuntap-qemu' / 'qemu-guest-unit'))
    monkeypatch.setattr(guest_unit, 'systemd_booted', lambda: True)
    monkeypatch.setattr(guest_unit, 'same_netns_as_init', lambda: True)
    monkeypatch.setattr(module_runner, 'require_libraries', lambda module, libraries: None)

    def observe(files, name):
        guest = host.running.get(files['runtime_dir'])
        argv = qemu.read_argv(files['argv_file'])
        if guest is None:
            return {'state': 'stopped', 'pid': None, 'status': None, 'argv': argv, 'cmdline': None}
        return {'state': 'running', 'pid': guest['pid'], 'status': 'running', 'argv': argv, 'cmdline': argv}

    def stop(files, name, timeout=30):
        guest = host.running.get(files['runtime_dir'])
        if guest is None:
            return 'not running'
        assert guest['unit'] is None, 'a unit QEMU is stopped through systemctl only'
        del host.running[files['runtime_dir']]
        host.events.append('qemu stop %s' % name)
        return 'powerdown'

    monkeypatch.setattr(qemu, 'observe', observe)
    monkeypatch.setattr(qemu, 'stop', stop)
    monkeypatch.setattr(guest_prune, 'foreign_holder', lambda guest: None)
    return host


def prune_module(host, tmp_path, **params):
    """Run a prune; (result, module) for the warnings."""
    host.events = []
    module = FakeModule(host, tmp_path, **params)
    return qemu_guest_run.converge(module), module


def prune(host, tmp_path, **params):
    return prune_module(host, tmp_path, **params)[0]


def snapshot(tmp_path):
    return sorted((str(path), path.read_text() if path.is_file() else None) for path in tmp_path.rglob('*'))


def test_prune_four_ways(host, tmp_path):
    root = tmp_path / 'run'
    dirs = {name: make_runtime_dir(root, name) for name in ('keep1', 'gone1', 'gone2')}
    for name in ('keep1', 'gone1'):
        host.boot(dirs[name])
    make_runtime_dir(root, 'admin', argv=False)
    unit_dir = tmp_path / 'etc'
    make_unit(unit_dir, 'unit1', str(root / 'unit1'))
    os.makedirs(str(root / 'unit1'))
    unit_pid = host.boot(str(root / 'unit1'), unit=guest_unit.unit_name('unit1'))
    foreign_unit = make_unit(unit_dir, 'adminunit', str(root / 'adminunit'), ours=False)
    os.makedirs(os.path.dirname(guest_unit.HELPER_PATH))
    with open(guest_unit.HELPER_PATH, 'w') as handle:
        handle.write(guest_unit.render_helper())
    before = snapshot(tmp_path)

    check = prune(host, tmp_path, check_mode=True, keep=['keep1'])
    assert check['changed'] and host.events == [] and snapshot(tmp_path) == before
    assert [(entry['name'], entry['state'], entry['unit']) for entry in check['removed']] == [
        ('gone1', 'running', None), ('gone2', 'stopped', None),
        ('unit1', 'running', 'tuntap-qemu-guest-unit1.service')]
    assert check['kept'] == ['keep1'] and check['skipped'] == []
    assert check['removed'][2]['pid'] == unit_pid
    summary = check['diff'][0]
    assert summary['before'] == {'guests': ['gone1', 'gone2', 'keep1', 'unit1']}
    assert summary['after'] == {'guests': ['keep1']}
    headers = [entry.get('before_header') for entry in check['diff'][1:]]
    assert headers[:2] == ['guest gone1 (%s)' % dirs['gone1'], 'guest gone2 (%s)' % dirs['gone2']]
    assert check['diff'][1]['before']['state'] == 'running' and check['diff'][1]['after']['state'] == 'absent'
    unit_diffs = [entry for entry in check['diff'] if entry.get('before_header') == guest_unit.unit_path('unit1')]
    assert len(unit_diffs) == 1 and unit_diffs[0]['after'] == '' and unit_diffs[0]['before'].startswith(guest_unit.MARK)
    assert check['diff'][-1]['before_header'] == guest_unit.HELPER_PATH and check['diff'][-1]['after'] == ''

    real = prune(host, tmp_path, keep=['keep1'])
    assert real['changed'] and [entry['name'] for entry in real['removed']] == ['gone1', 'gone2', 'unit1']
    assert [entry['stopped_by'] for entry in real['removed']] == ['powerdown', 'not running', 'systemctl stop']
    assert host.events == ['qemu stop gone1', 'stop tuntap-qemu-guest-unit1.service',
                           'disable tuntap-qemu-guest-unit1.service', 'daemon-reload']
    assert sorted(os.listdir(str(root))) == ['admin', 'keep1']
    assert list(host.running) == [dirs['keep1']]
    assert sorted(os.listdir(str(unit_dir))) == [os.path.basename(foreign_unit)]
    assert not os.path.exists(os.path.dirname(guest_unit.HELPER_PATH))

    for check_mode in (False, True):
        again = prune(host, tmp_path, check_mode=check_mode, keep=['keep1'])
        assert not again['changed'] and again['removed'] == [] and again['kept'] == ['keep1']
        assert host.events == [] and again['diff'][0]['before'] == again['diff'][0]['after']


def test_prune_keeps_the_helper_while_a_unit_of_ours_stays(host, tmp_path):
    root = tmp_path / 'run'
    for name in ('stay', 'go'):
        make_unit(tmp_path / 'etc', name, str(root / name))
    os.makedirs(os.path.dirname(guest_unit.HELPER_PATH))
    with open(guest_unit.HELPER_PATH, 'w') as handle:
        handle.write(guest_unit.render_helper())
    result = prune(host, tmp_path, keep=['stay'])
    assert [entry['name'] for entry in result['removed']] == ['go']
    assert host.events == ['daemon-reload'] and os.path.exists(guest_unit.HELPER_PATH)
    assert os.listdir(str(tmp_path / 'etc')) == [guest_unit.unit_name('stay')]


def test_prune_without_systemd_reads_no_unit(host, tmp_path, monkeypatch):
    monkeypatch.setattr(guest_unit, 'systemd_booted', lambda: False)
    make_unit(tmp_path / 'etc', 'unit1', str(tmp_path / 'run' / 'unit1'))
    make_runtime_dir(tmp_path / 'run', 'daemon1')
    result = prune(host, tmp_path)
    assert [entry['name'] for entry in result['removed']] == ['daemon1'] and host.events == []
    assert os.path.exists(guest_unit.unit_path('unit1'))


def test_prune_leaves_a_foreign_holder_and_warns(host, tmp_path, monkeypatch):
    held = make_runtime_dir(tmp_path / 'run', 'held')
    holder = guest_prune.ForeignHolder('held', held, 4242, ('python3',))
    monkeypatch.setattr(guest_prune, 'foreign_holder', lambda guest: holder if guest.name == 'held' else None)
    for check_mode in (True, False, False):
        result, module = prune_module(host, tmp_path, check_mode=check_mode)
        assert not result['changed'] and result['removed'] == []
        assert result['skipped'] == [{'name': 'held', 'runtime_dir': held, 'pid': 4242, 'reason': holder.reason}]
        assert len(module.warnings) == 1 and 'pid 4242' in module.warnings[0]
        assert os.path.isdir(held)


@pytest.mark.parametrize('params, message', [
    (dict(name='vm1'), "name: 'vm1' is not for prune=true"),
    (dict(runtime_dir='/run/x'), 'runtime_dir: not with prune=true'),
    (dict(nics=[{'tap': 'tap0'}]), 'nics: not with prune=true'),
    (dict(keep=['ok', 'bad name']), "keep[1]: 'bad name' is not a guest name"),
    (dict(stop_timeout=-1), 'stop_timeout: -1 must not be negative'),
])
def test_prune_refusals_touch_nothing(host, tmp_path, params, message):
    make_runtime_dir(tmp_path / 'run', 'vm2')
    host.boot(str(tmp_path / 'run' / 'vm2'))
    before = snapshot(tmp_path)
    with pytest.raises(Failed) as failed:
        prune(host, tmp_path, **params)
    assert message in str(failed.value)
    assert snapshot(tmp_path) == before and host.events == [] and host.running


def test_prune_failure_part_way_reloads_and_names_what_is_left(host, tmp_path, monkeypatch):
    root = tmp_path / 'run'
    make_unit(tmp_path / 'etc', 'a', str(root / 'a'))
    for name in ('b', 'c'):
        host.boot(make_runtime_dir(root, name))

    broken = []

    def stop(files, name, timeout=30):
        if name == 'b' and not broken:
            broken.append(name)
            raise qemu.QemuError('QMP broke')
        return 'not running'

    monkeypatch.setattr(qemu, 'stop', stop)
    with pytest.raises(Failed) as failed:
        prune(host, tmp_path)
    assert 'prune: guest b: QMP broke' in str(failed.value)
    assert host.events == ['daemon-reload'] and not os.path.exists(guest_unit.unit_path('a'))
    assert os.path.isdir(str(root / 'c'))


def test_foreign_holder_our_qemu_in_another_network_namespace(tmp_path, processes, monkeypatch):
    files = qemu.paths(str(tmp_path / 'vm1'))
    own_args = ['-name', 'guest=vm1,process=qemu-vm1', '-pidfile', files['pidfile']]
    pid = processes(*own_args)
    make_runtime_dir(tmp_path, 'vm1', argv=qemu.process_argv(pid), pid=pid)
    guest = guest_prune.FoundGuest('vm1', files['runtime_dir'])
    assert guest_prune.foreign_holder(guest) is None  # ours, in this namespace: it goes
    monkeypatch.setattr(guest_prune, 'netns_inode', lambda pid='self': 1 if pid == 'self' else 2)
    holder = guest_prune.foreign_holder(guest)
    assert holder.other_netns and holder.pid == pid and "another host's guest" in holder.reason
    monkeypatch.setattr(guest_prune, 'netns_inode', lambda pid='self': None if pid == 'self' else 2)
    assert guest_prune.foreign_holder(guest) is None  # unreadable: not taken for another host's
