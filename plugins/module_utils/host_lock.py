# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One converge at a time on a host: the host lock that module_runner.converge() holds
around read -> plan -> apply -> result.

Two converges of one host at once (two playbooks, or two inventory hosts that are one
machine) would read the same state, plan the same creations and trip over each other's
changes. Every host module therefore takes an exclusive flock(2) on

    /run/tuntap-qemu/lock.net-<inode of /proc/self/ns/net>

first. A host is a network namespace: the lab and the tests run many "hosts" as namespaces
of one machine, which share /run, so each namespace has a lock of its own (the inode of
/proc/self/ns/net names the namespace). Check mode takes the lock too: it reads the state.

The lock is waited for (polled with LOCK_NB) for DEFAULT_TIMEOUT seconds, or for the number
of seconds in the environment variable TUNTAP_QEMU_LOCK_TIMEOUT (0: try once). The holder
writes its PID, module name and start time into the lock file after it got the lock, so a
module that gives up names the holder. The folder can be moved with TUNTAP_QEMU_LOCK_DIR
(the unit tests do). The lock is released when the converge ends, on every path, and by the
kernel when the process exits; the file stays (deleting a lock file races with its next
taker), and /run is emptied at boot.

    with host_lock.held('tuntap.qemu.tap_device'):
        ...  # read, plan, apply
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import time

LOCK_DIRECTORY = '/run/tuntap-qemu'
DIRECTORY_VARIABLE = 'TUNTAP_QEMU_LOCK_DIR'
TIMEOUT_VARIABLE = 'TUNTAP_QEMU_LOCK_TIMEOUT'
DEFAULT_TIMEOUT = 60.0  # longer than any one converge of a large host (512 taps: seconds)
NAMESPACE = '/proc/self/ns/net'
POLL_INTERVAL = 0.05


class LockError(Exception):
    """The host lock cannot be taken: its file cannot be opened, or a bad timeout."""


class LockTimeout(LockError):
    """Another process held the host lock for the whole timeout."""

    def __init__(self, path, waited, holder, alive):
        self.path = path
        self.waited = waited
        self.holder = holder
        self.alive = alive
        super().__init__(timeout_message(path, waited, holder, alive, time.time()))

    def facts(self):
        """The lock facts for the module's failure result."""
        return {'path': self.path, 'waited': round(self.waited, 1),
                'holder': dataclasses.asdict(self.holder) if self.holder else None}


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds the lock: written into the lock file by the process that took it."""

    pid: int
    module: str
    started: float  # time.time() when the lock was taken

    def to_text(self):
        return json.dumps({'pid': self.pid, 'module': self.module, 'started': self.started,
                           'started_utc': _utc(self.started)}) + '\n'

    @classmethod
    def from_text(cls, text):
        """The holder written by to_text(), or None for an empty or unreadable record."""
        try:
            record = json.loads(text)
            return cls(int(record['pid']), str(record['module']), float(record['started']))
        except (ValueError, TypeError, KeyError):
            return None


def _utc(stamp):
    return time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(stamp))


def timeout_message(path, waited, holder, alive, now):
    """Pure: the error of a module that waited `waited` seconds for the lock at `path`."""
    if holder is None:
        who = 'a process that has not written its name into the lock file yet'
    else:
        who = 'PID %d (%s, since %s, %d s ago)' % (holder.pid, holder.module,
                                                   _utc(holder.started), now - holder.started)
        if not alive:
            who += '; that PID has exited, so a process it started still holds the lock file open'
    return ('another tuntap.qemu module is converging this host: the host lock %s was held for '
            'the %.1f s this module waited, by %s. Nothing was read or changed. Two converges of '
            'one host at once (another ansible-playbook run, or two inventory hosts that are the '
            'same machine or network namespace) run one after the other; wait for the other one, '
            'or set %s (seconds, default %d) in the task environment to wait longer'
            % (path, waited, who, TIMEOUT_VARIABLE, DEFAULT_TIMEOUT))


def timeout_from(environ):
    """The wait in seconds: TIMEOUT_VARIABLE from `environ`, else DEFAULT_TIMEOUT."""
    text = environ.get(TIMEOUT_VARIABLE)
    if text is None or text.strip() == '':
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        raise LockError('%s=%r: give the seconds to wait for the host lock, a number >= 0'
                        % (TIMEOUT_VARIABLE, text))
    return value


def lock_path(environ, namespace=NAMESPACE):
    """The lock file of the network namespace this process runs in."""
    directory = environ.get(DIRECTORY_VARIABLE) or LOCK_DIRECTORY
    try:
        inode = os.stat(namespace).st_ino
    except OSError as exc:
        raise LockError('cannot tell the network namespace from %s: %s' % (namespace, exc))
    return os.path.join(directory, 'lock.net-%d' % inode)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class HostLock:
    """An exclusive flock on `path`, waited for up to `timeout` seconds.

    clock and sleep are time.monotonic and time.sleep; the unit tests replace them.
    """

    def __init__(self, path, module, timeout, clock=time.monotonic, sleep=time.sleep):
        self.path = path
        self.module = module
        self.timeout = timeout
        self.clock = clock
        self.sleep = sleep
        self.fd = None

    def _open(self):
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, mode=0o755, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                           0o644)
        except OSError as exc:
            raise LockError('cannot open the host lock %s: %s (run the module as root, or '
                            'point %s to a folder it may write)'
                            % (self.path, exc.strerror or exc, DIRECTORY_VARIABLE))

    def acquire(self):
        """Take the lock, then write this process into it; LockTimeout after the timeout."""
        fd = self._open()
        start = self.clock()
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EINTR):
                        raise LockError('cannot lock %s: %s' % (self.path, exc.strerror))
                waited = self.clock() - start
                if waited >= self.timeout:
                    holder = read_holder(fd)
                    raise LockTimeout(self.path, waited, holder,
                                      holder is None or _pid_alive(holder.pid))
                self.sleep(min(POLL_INTERVAL, self.timeout - waited))
            record = Holder(os.getpid(), self.module, time.time()).to_text().encode('utf-8')
            os.ftruncate(fd, 0)
            os.pwrite(fd, record, 0)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def release(self):
        """Clear the holder record, unlock and close (safe to call twice)."""
        fd, self.fd = self.fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc_info):
        self.release()
        return False


def read_holder(fd):
    """The Holder recorded in the open lock file `fd`, or None."""
    try:
        text = os.pread(fd, 4096, 0).decode('utf-8', 'replace')
    except OSError:
        return None
    return Holder.from_text(text)


@contextlib.contextmanager
def held(module, environ=None):
    """Hold the host lock of this process's network namespace for the `with` body."""
    environ = os.environ if environ is None else environ
    lock = HostLock(lock_path(environ), module, timeout_from(environ))
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()
