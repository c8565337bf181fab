# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host lock: pure parts (path, timeout, holder record, message) table-driven, and the
real flock(2) in a temporary folder against a second process that holds it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils import host_lock, module_runner

HOLDER_SCRIPT = r'''
import sys
from ansible_collections.tuntap.qemu.plugins.module_utils import host_lock
lock = host_lock.HostLock(sys.argv[1], sys.argv[2], timeout=5)
lock.acquire()
print('held', flush=True)
if sys.argv[3] == 'exit':
    sys.exit(1)          # as fail_json does: the kernel releases the lock with the process
sys.stdin.read()         # hold until the test closes stdin
lock.release()
'''


class Holder:
    """A second process that takes the lock at `path` and holds it until stop()."""

    def __init__(self, path, module='tuntap.qemu.tap_device', then='hold'):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, '-c', HOLDER_SCRIPT, str(path), module, then], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline() == 'held\n'
        self.pid = self.process.pid

    def stop(self):
        if self.process.poll() is None:
            self.process.stdin.close()
        self.process.wait(timeout=10)
        self.process.stdout.close()


@pytest.fixture
def holder_of(tmp_path):
    started = []

    def start(*args, **kwargs):
        holder = Holder(*args, **kwargs)
        started.append(holder)
        return holder
    yield start
    for holder in started:
        holder.stop()


# ---------------------------------------------------------------- pure parts

def test_lock_path_names_the_namespace_inode(tmp_path):
    namespace = tmp_path / 'ns-net'
    namespace.write_text('')
    inode = os.stat(namespace).st_ino
    assert host_lock.lock_path({}, str(namespace)) == '/run/tuntap-qemu/lock.net-%d' % inode
    assert (host_lock.lock_path({host_lock.DIRECTORY_VARIABLE: '/tmp/x'}, str(namespace))
            == '/tmp/x/lock.net-%d' % inode)


def test_lock_path_of_this_process_is_its_network_namespace():
    inode = os.stat('/proc/self/ns/net').st_ino
    assert host_lock.lock_path({}).endswith('/lock.net-%d' % inode)


@pytest.mark.parametrize('environ, expected', [
    pytest.param({}, 60.0, id='default 60 s'),
    pytest.param({'TUNTAP_QEMU_LOCK_TIMEOUT': ''}, 60.0, id='empty: default'),
    pytest.param({'TUNTAP_QEMU_LOCK_TIMEOUT': '5'}, 5.0, id='override'),
    pytest.param({'TUNTAP_QEMU_LOCK_TIMEOUT': '0.5'}, 0.5, id='fractions'),
    pytest.param({'TUNTAP_QEMU_LOCK_TIMEOUT': '0'}, 0.0, id='0: try once'),
])
def test_timeout_from(environ, expected):
    assert host_lock.timeout_from(environ) == expected


@pytest.mark.parametrize('value', ['-1', 'soon', 'nan'])
def test_bad_timeout_is_an_error_naming_the_variable(value):
    with pytest.raises(host_lock.LockError, match='TUNTAP_QEMU_LOCK_TIMEOUT=%r' % value):
        host_lock.timeout_from({'TUNTAP_QEMU_LOCK_TIMEOUT': value})


@pytest.mark.parametrize('text, expected', [
    pytest.param(host_lock.Holder(42, 'tuntap.qemu.bridge_port', 1.5).to_text(),
                 host_lock.Holder(42, 'tuntap.qemu.bridge_port', 1.5), id='round trip'),
    pytest.param('', None, id='empty: taken, not written yet'),
    pytest.param('{"pid": 4', None, id='half written'),
    pytest.param('{"pid": "x", "module": "m", "started": 1}', None, id='bad pid'),
    pytest.param('[1, 2]', None, id='not a record'),
])
def test_holder_record(text, expected):
    assert host_lock.Holder.from_text(text) == expected


@pytest.mark.parametrize('holder, alive, expected, unexpected', [
    pytest.param(host_lock.Holder(4242, 'tuntap.qemu.tap_device', 1000.0), True,
                 ['held for the 60.0 s this module waited',
                  'by PID 4242 (tuntap.qemu.tap_device, since 1970-01-01 00:16:40 UTC, 75 s ago)',
                  'Nothing was read or changed', 'TUNTAP_QEMU_LOCK_TIMEOUT'],
                 ['has exited'], id='holder named'),
    pytest.param(host_lock.Holder(4242, 'tuntap.qemu.tap_device', 1000.0), False,
                 ['PID 4242', 'that PID has exited, so a process it started still holds'],
                 [], id='holder gone, its child holds the file'),
    pytest.param(None, True, ['has not written its name into the lock file yet'], ['PID'],
                 id='no record yet'),
])
def test_timeout_message(holder, alive, expected, unexpected):
    message = host_lock.timeout_message('/run/tuntap-qemu/lock.net-7', 60.0, holder, alive, 1075.0)
    assert message.startswith('another tuntap.qemu module is converging this host: the host lock '
                              '/run/tuntap-qemu/lock.net-7 was held')
    for part in expected:
        assert part in message
    for part in unexpected:
        assert part not in message


# ---------------------------------------------------------------- the real flock

def test_second_taker_times_out_naming_the_holder(tmp_path, holder_of):
    path = tmp_path / 'lock.net-1'
    holder = holder_of(path, 'tuntap.qemu.bridge_port')
    start = time.monotonic()
    with pytest.raises(host_lock.LockTimeout) as caught:
        host_lock.HostLock(str(path), 'tuntap.qemu.tap_device', timeout=0.3).acquire()
    waited = time.monotonic() - start
    assert 0.3 <= waited < 2.0
    assert caught.value.holder.pid == holder.pid
    assert 'by PID %d (tuntap.qemu.bridge_port, since ' % holder.pid in str(caught.value)
    assert caught.value.facts()['holder']['module'] == 'tuntap.qemu.bridge_port'
    assert caught.value.alive


def test_lock_is_taken_once_the_holder_lets_go(tmp_path, holder_of):
    path = tmp_path / 'lock.net-1'
    holder = holder_of(path)
    holder.stop()
    with host_lock.HostLock(str(path), 'tuntap.qemu.tap_device', timeout=0) as lock:
        record = json.loads(path.read_text())
        assert record['pid'] == os.getpid() and record['module'] == 'tuntap.qemu.tap_device'
        assert lock.fd is not None
    assert path.read_text() == ''  # the record is cleared on release


def test_released_when_the_holder_exits_without_releasing(tmp_path, holder_of):
    path = tmp_path / 'lock.net-1'
    holder = holder_of(path, then='exit')
    holder.stop()
    assert holder.process.returncode == 1
    # The dead holder's record is still in the file, but nobody holds the flock.
    assert json.loads(path.read_text())['pid'] == holder.pid
    lock = host_lock.HostLock(str(path), 'tuntap.qemu.tap_device', timeout=0)
    lock.acquire()
    assert json.loads(path.read_text())['pid'] == os.getpid()
    lock.release()
    lock.release()  # twice is harmless


def test_waiter_gets_the_lock_when_it_is_freed_during_the_wait(tmp_path, holder_of):
    path = tmp_path / 'lock.net-1'
    holder = holder_of(path)
    stops = []

    def sleep(seconds):
        if not stops:
            holder.stop()
            stops.append(seconds)
        time.sleep(seconds)
    lock = host_lock.HostLock(str(path), 'tuntap.qemu.tap_device', timeout=10, sleep=sleep)
    lock.acquire()
    lock.release()
    assert stops and stops[0] <= host_lock.POLL_INTERVAL


def test_lock_folder_is_created_and_an_unusable_one_is_named(tmp_path):
    path = tmp_path / 'a' / 'b' / 'lock.net-1'
    with host_lock.HostLock(str(path), 'm', timeout=0):
        assert path.exists()
    blocker = tmp_path / 'file'
    blocker.write_text('')
    with pytest.raises(host_lock.LockError, match='cannot open the host lock .*TUNTAP_QEMU_LOCK_DIR'):
        host_lock.HostLock(str(blocker / 'lock.net-1'), 'm', timeout=0).acquire()


# ---------------------------------------------------------------- through module_runner

class Failed(Exception):
    pass


class FakeModule:
    _name = 'tuntap.qemu.tap_device'
    _diff = False
    params = {}

    def __init__(self, check_mode=False):
        self.check_mode = check_mode

    def fail_json(self, **result):
        raise Failed(result)


class Plan:
    changed = True


class Steps(module_runner.ModuleSteps):
    """Records the steps and whether the host lock was held during each."""

    def __init__(self, path, refuse=False, exit_in_apply=False):
        self.path = path
        self.refuse = refuse
        self.exit_in_apply = exit_in_apply
        self.calls = []

    def _locked(self):
        try:
            host_lock.HostLock(self.path, 'probe', timeout=0).acquire()
        except host_lock.LockTimeout:
            return True
        raise AssertionError('the step ran without the host lock')

    def read(self, module, request):
        self.calls.append(('read', self._locked()))

    def plan(self, module, request, state):
        self.calls.append(('plan', self._locked()))
        if self.refuse:
            raise module_runner.Refused(['name: bad'])
        return Plan()

    def apply(self, module, plan):
        self.calls.append(('apply', self._locked()))
        if self.exit_in_apply:
            raise SystemExit(1)  # a step that called module.fail_json()

    def result(self, module, request, plan, applied):
        self.calls.append(('result', self._locked()))
        return {'changed': True}


def lock_is_free(path):
    lock = host_lock.HostLock(path, 'probe', timeout=0)
    lock.acquire()
    lock.release()
    return True


@pytest.fixture
def runner_lock(tmp_path, monkeypatch):
    monkeypatch.setenv(host_lock.DIRECTORY_VARIABLE, str(tmp_path))
    return host_lock.lock_path(os.environ)


@pytest.mark.parametrize('check_mode, steps', [
    pytest.param(False, ['read', 'plan', 'apply', 'result'], id='real run'),
    pytest.param(True, ['read', 'plan', 'result'], id='check mode locks too'),
])
def test_converge_holds_the_lock_from_read_to_result(runner_lock, check_mode, steps):
    module_steps = Steps(runner_lock)
    assert module_runner.converge(FakeModule(check_mode), module_steps) == {'changed': True}
    assert module_steps.calls == [(step, True) for step in steps]
    assert lock_is_free(runner_lock)


@pytest.mark.parametrize('kwargs, raised', [
    pytest.param({'refuse': True}, Failed, id='refused'),
    pytest.param({'exit_in_apply': True}, SystemExit, id='fail_json inside a step'),
])
def test_converge_releases_the_lock_on_failure(runner_lock, kwargs, raised):
    with pytest.raises(raised):
        module_runner.converge(FakeModule(), Steps(runner_lock, **kwargs))
    assert lock_is_free(runner_lock)


def test_converge_fails_naming_the_holder_before_reading(runner_lock, holder_of, monkeypatch):
    monkeypatch.setenv(host_lock.TIMEOUT_VARIABLE, '0.2')
    holder = holder_of(runner_lock, 'tuntap.qemu.bridge_port')
    for check_mode in (False, True):
        module_steps = Steps(runner_lock)
        with pytest.raises(Failed) as caught:
            module_runner.converge(FakeModule(check_mode), module_steps)
        result = caught.value.args[0]
        assert module_steps.calls == []
        assert 'by PID %d (tuntap.qemu.bridge_port' % holder.pid in result['msg']
        assert result['errors'] == [result['msg']]
        assert result['lock']['path'] == runner_lock
        assert result['lock']['holder']['pid'] == holder.pid
        assert 'changed' not in result


def test_steps_that_touch_no_host_state_do_not_lock(runner_lock, holder_of):
    class Unlocked(module_runner.ModuleSteps):
        host_lock = False

        def plan(self, module, request, state):
            return type('Unchanged', (), {'changed': False})()

        def result(self, module, request, plan, applied):
            return {'changed': False}

    holder_of(runner_lock)
    assert module_runner.converge(FakeModule(), Unlocked()) == {'changed': False}


def test_a_bad_timeout_fails_the_module(runner_lock, monkeypatch):
    monkeypatch.setenv(host_lock.TIMEOUT_VARIABLE, 'soon')
    with pytest.raises(Failed) as caught:
        module_runner.converge(FakeModule(), Steps(runner_lock))
    assert 'TUNTAP_QEMU_LOCK_TIMEOUT' in caught.value.args[0]['msg']
