# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""QEMU guests on tap devices or VDE switches: argv builder, QMP client, process lifecycle.

The guest runs daemonized (-daemonize -pidfile), or in the foreground under its systemd unit
(guest_unit.py), with a pidfile and a QMP socket in its runtime directory either way. A guest
counts as running only when the pid in its pidfile is alive, is the QEMU of this runtime
directory (process_is_ours(): its /proc/PID/cmdline names the guest and this pidfile, and is
the command line recorded in argv.json, so a recycled pid, a stale pidfile or a process that
only looks like ours is never trusted, signalled or sent a QMP command), and answers
`query-status` on QMP.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import time

RUNTIME_ROOT = '/run/tuntap-qemu'
PIDFILE = 'qemu.pid'
QMP_SOCKET = 'qmp.sock'
SERIAL_LOG = 'serial.log'
ARGV_FILE = 'argv.json'


class QemuError(Exception):
    """A guest could not be started, queried or stopped; the message says which and why."""


# ---------------------------------------------------------------- accelerator

def kvm_usable(dev='/dev/kvm', cpuinfo='/proc/cpuinfo'):
    """(usable, reason): KVM needs /dev/kvm open for read/write and vmx or svm in the CPU
    flags. /dev/kvm can exist without them (nested setups without virtualisation
    extensions), and guests then hang instead of failing, so the flags are checked."""
    if not os.path.exists(dev):
        return False, '%s does not exist' % dev
    if not os.access(dev, os.R_OK | os.W_OK):
        return False, '%s is not readable and writable' % dev
    try:
        with open(cpuinfo) as handle:
            flags = set()
            for line in handle:
                if line.startswith('flags'):
                    flags.update(line.split(':', 1)[1].split())
                    break
    except OSError as exc:
        return False, 'cannot read %s: %s' % (cpuinfo, exc.strerror)
    if not flags & {'vmx', 'svm'}:
        return False, 'the CPU flags have neither vmx nor svm'
    return True, 'usable'


def choose_accel(requested, kvm_check=kvm_usable):
    """'kvm' or 'tcg' for a requested kvm|tcg|auto, with the reason."""
    if requested == 'tcg':
        return 'tcg', 'requested'
    usable, reason = kvm_check()
    if requested == 'kvm':
        if not usable:
            raise QemuError('accel: kvm was requested but KVM is not usable here: %s; use accel=auto or tcg' % reason)
        return 'kvm', 'requested'
    return ('kvm', 'auto: KVM usable') if usable else ('tcg', 'auto: %s' % reason)


# ---------------------------------------------------------------- argv

def paths(runtime_dir):
    return {
        'runtime_dir': runtime_dir,
        'pidfile': os.path.join(runtime_dir, PIDFILE),
        'qmp_socket': os.path.join(runtime_dir, QMP_SOCKET),
        'serial_log': os.path.join(runtime_dir, SERIAL_LOG),
        'argv_file': os.path.join(runtime_dir, ARGV_FILE),
    }


def build_argv(guest, accel, files, daemonize=True):
    """The QEMU command line for a guest spec (see qemu_guest's options); without
    `daemonize` QEMU stays in the foreground, as its systemd unit runs it."""
    argv = [guest['binary'],
            '-name', 'guest=%s,process=qemu-%s' % (guest['name'], guest['name']),
            '-machine', guest['machine'],
            '-accel', accel,
            '-m', str(guest['memory']),
            '-smp', str(guest['cpus']),
            '-nodefaults',
            '-display', 'none']
    if daemonize:
        argv.append('-daemonize')
    argv += ['-pidfile', files['pidfile'],
             '-qmp', 'unix:%s,server=on,wait=off' % files['qmp_socket'],
             '-serial', 'file:%s' % files['serial_log']]
    if guest.get('kernel'):
        argv += ['-kernel', guest['kernel']]
        if guest.get('initrd'):
            argv += ['-initrd', guest['initrd']]
        if guest.get('append'):
            argv += ['-append', guest['append']]
    if guest.get('disk'):
        drive = 'file=%s,if=virtio' % guest['disk']
        if guest.get('disk_format'):
            drive += ',format=%s' % guest['disk_format']
        argv += ['-drive', drive]
    for index, nic in enumerate(guest['nics']):
        netdev = 'net%d' % index
        if nic.get('vde'):
            backend = 'vde,id=%s,sock=%s' % (netdev, nic['vde'])
        else:
            backend = 'tap,id=%s,ifname=%s,script=no,downscript=no' % (netdev, nic['tap'])
            if nic.get('queues', 1) > 1:
                backend += ',queues=%d' % nic['queues']
        argv += ['-netdev', backend,
                 '-device', '%s,netdev=%s,mac=%s' % (nic['model'], netdev, nic['mac'])]
    argv += list(guest.get('extra_args') or [])
    return argv


def command_line(argv):
    """The argv as one shell-quoted line, for humans."""
    import shlex
    return ' '.join(shlex.quote(arg) for arg in argv)


# ---------------------------------------------------------------- process state

def read_pid(pidfile):
    try:
        with open(pidfile) as handle:
            text = handle.read().strip()
    except (FileNotFoundError, PermissionError):
        return None
    return int(text) if text.isdigit() else None


def process_argv(pid):
    """The command line of process `pid` as a list of str, or None when it is gone."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            data = handle.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return [arg.decode('utf-8', 'surrogateescape') for arg in data.split(b'\0')[:-1]]


def names_guest(args, name):
    """True when the argv list `args` is a QEMU started for guest `name` (-name guest=NAME,...)."""
    value = option_value(args, '-name')
    return value is not None and value.startswith('guest=%s,' % name)


def process_is_guest(pid, name):
    """True when pid is alive and is a QEMU started for guest `name`."""
    args = process_argv(pid)
    return args is not None and names_guest(args, name)


def read_argv(argv_file):
    """The command line a daemonized start recorded in argv.json (a list of str), or None."""
    try:
        with open(argv_file) as handle:
            argv = json.load(handle)
    except (OSError, ValueError):
        return None
    if isinstance(argv, list) and argv and all(isinstance(arg, str) for arg in argv):
        return argv
    return None


def option_value(args, option):
    """The value after the first `option` in an argv list, or None."""
    for index, arg in enumerate(args[:-1]):
        if arg == option:
            return args[index + 1]
    return None


def process_is_ours(pid, name, files):
    """True when pid is alive and is the QEMU of the runtime directory `files` for guest `name`.

    Its command line names the guest (-name guest=NAME,) and this directory's pidfile
    (-pidfile PATH), and is the one recorded in argv.json where the daemonized start recorded
    one (a guest under its systemd unit records none: the unit file holds its command line).
    A process that only looks like a guest of that name is not ours.
    """
    args = process_argv(pid)
    if args is None or not names_guest(args, name) or option_value(args, '-pidfile') != files['pidfile']:
        return False
    recorded = read_argv(files['argv_file'])
    return recorded is None or recorded == args


def running_pid(files, name):
    """The pid of the running guest, or None (a stale pidfile counts as not running)."""
    pid = read_pid(files['pidfile'])
    if pid is not None and process_is_ours(pid, name, files):
        return pid
    return None


class Qmp:
    """A minimal QMP client: greeting, qmp_capabilities, then execute() commands."""

    def __init__(self, path, timeout=5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.buffer = b''
        try:
            self.sock.connect(path)
            self._read_message()  # greeting
            self.execute('qmp_capabilities')
        except (OSError, ValueError) as exc:
            self.close()
            raise QemuError('QMP at %s does not answer: %s' % (path, exc))

    def _read_message(self):
        while b'\n' not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise QemuError('QMP connection closed')
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b'\n', 1)
        return json.loads(line.decode('utf-8'))

    def execute(self, command, arguments=None):
        message = {'execute': command}
        if arguments:
            message['arguments'] = arguments
        self.sock.sendall(json.dumps(message).encode('utf-8') + b'\n')
        while True:
            reply = self._read_message()
            if 'event' in reply:
                continue
            if 'error' in reply:
                raise QemuError('QMP %s failed: %s' % (command, reply['error'].get('desc')))
            return reply.get('return')

    def close(self):
        self.sock.close()


def query_status(files):
    """QMP query-status: {'status': 'running', 'running': True, ...}."""
    qmp = Qmp(files['qmp_socket'])
    try:
        return qmp.execute('query-status')
    finally:
        qmp.close()


def observe(files, name):
    """The guest as it is: {'state': running|unresponsive|stopped, 'pid', 'status', 'argv',
    'cmdline'}; argv is the command line recorded at the daemonized start, cmdline the one
    the running process has."""
    pid = running_pid(files, name)
    argv = read_argv(files['argv_file'])
    if pid is None:
        return {'state': 'stopped', 'pid': None, 'status': None, 'argv': argv, 'cmdline': None}
    cmdline = process_argv(pid)
    try:
        status = query_status(files).get('status')
    except QemuError as exc:
        # Alive but deaf: not a guest we can manage; stop() will end it by pid.
        return {'state': 'unresponsive', 'pid': pid, 'status': str(exc), 'argv': argv, 'cmdline': cmdline}
    return {'state': 'running', 'pid': pid, 'status': status, 'argv': argv, 'cmdline': cmdline}


# ---------------------------------------------------------------- lifecycle

def prepare_runtime_dir(files, uid=None, gid=None):
    os.makedirs(files['runtime_dir'], mode=0o750, exist_ok=True)
    for key in ('pidfile', 'qmp_socket'):
        try:
            os.unlink(files[key])
        except FileNotFoundError:
            pass
    if uid is not None:
        os.chown(files['runtime_dir'], uid, gid if gid is not None else -1)


def start(argv, files, run_as=None, timeout=60):
    """Start QEMU daemonized; returns its pid. run_as: (uid, gid, groups) or None."""
    kwargs = {}
    if run_as is not None:
        uid, gid, groups = run_as
        kwargs = {'user': uid, 'group': gid, 'extra_groups': groups}
    env = dict(os.environ, LC_ALL='C')
    try:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, timeout=timeout, check=False,
                                **kwargs)
    except FileNotFoundError:
        raise QemuError('binary: %s not found (Debian package qemu-system-x86)' % argv[0])
    except subprocess.TimeoutExpired:
        raise QemuError('QEMU did not daemonize within %d s' % timeout)
    if result.returncode != 0:
        message = (result.stderr or result.stdout).decode('utf-8', 'replace').strip()
        raise QemuError('QEMU failed to start (exit %d): %s' % (result.returncode, message))
    pid = read_pid(files['pidfile'])
    if pid is None:
        raise QemuError('QEMU started but wrote no pidfile %s' % files['pidfile'])
    with open(files['argv_file'], 'w') as handle:
        json.dump(argv, handle)
    return pid


def wait_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.exists('/proc/%d' % pid):
            return True
        try:
            # Reap it if it is our child (it never is with -daemonize, but be safe).
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    return not os.path.exists('/proc/%d' % pid)


def stop(files, name, timeout=30):
    """Graceful stop: ACPI system_powerdown, then QMP quit, then SIGKILL of that pid only.

    Returns how it ended: 'not running', 'powerdown', 'quit' or 'killed'.
    """
    pid = running_pid(files, name)
    if pid is None:
        return 'not running'
    for command, wait in (('system_powerdown', timeout), ('quit', 5)):
        try:
            qmp = Qmp(files['qmp_socket'], timeout=2)
            try:
                qmp.execute(command)
            finally:
                qmp.close()
        except QemuError:
            continue
        if wait_gone(pid, wait):
            return 'powerdown' if command == 'system_powerdown' else 'quit'
    if process_is_ours(pid, name, files):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                raise
        wait_gone(pid, 5)
    return 'killed'
