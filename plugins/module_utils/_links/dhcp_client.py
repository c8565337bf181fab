# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DHCP client of an interface: found in /proc, stopped by its pid, started as ifupdown does.

    clients = find_clients('eth0')        # [Client] of this network namespace
    argv = ifupdown_dhclient_argv('br0')   # what Debian 12's ifupdown runs for `inet dhcp`

A client is a process of this network namespace (/proc/PID/ns/net as ours: a client of
another namespace with an interface of the same name is not ours to move) whose program is
dhclient, dhcpcd or udhcpc and whose argv names the interface (dhclient and dhcpcd as an
operand, udhcpc after -i).

Debian 12's ifupdown (0.8.41, inet.defn `dhcp` method, the /sbin/dhclient branch) runs

    dhclient -4 -v -i -pf /run/dhclient.IFACE.pid -lf /var/lib/dhcp/dhclient.IFACE.leases \
        -I -df /var/lib/dhcp/dhclient6.IFACE.leases IFACE

so a client started by ifupdown_dhclient_argv() is one that `ifdown IFACE` stops. The paths
are those defaults; the environment of the module may move them (tests do, so that a test's
client has files of its own and a script that touches nothing but its interface):

    TUNTAP_QEMU_DHCLIENT         the dhclient program (default: dhclient on PATH, /sbin, /usr/sbin)
    TUNTAP_QEMU_DHCLIENT_SCRIPT  passed as -sf (default: none - dhclient's own /sbin/dhclient-script)
    TUNTAP_QEMU_DHCP_RUN_DIR     the pid files' folder (default /run)
    TUNTAP_QEMU_DHCP_LEASE_DIR   the lease files' folder (default /var/lib/dhcp)
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Optional, Tuple

PROGRAMS = ('dhclient', 'dhcpcd', 'udhcpc')
# dhclient options that take a value (dhclient(8)); an interface is an operand, not one of these values.
DHCLIENT_VALUE_OPTIONS = frozenset(('-pf', '-lf', '-cf', '-sf', '-df', '-s', '-g', '-p', '-e',
                                    '--prefix-len-hint', '--decline-wait-time', '--address-prefix-len',
                                    '--dad-wait-time', '-timeout'))
STOP_WAIT = 5.0
START_TIMEOUT = 60


def run_dir():
    return os.environ.get('TUNTAP_QEMU_DHCP_RUN_DIR') or '/run'


def lease_dir():
    return os.environ.get('TUNTAP_QEMU_DHCP_LEASE_DIR') or '/var/lib/dhcp'


def dhclient_program():
    given = os.environ.get('TUNTAP_QEMU_DHCLIENT')
    if given:
        return given
    path = os.pathsep.join((os.environ.get('PATH') or '', '/sbin', '/usr/sbin'))
    return shutil.which('dhclient', path=path) or '/sbin/dhclient'


def pidfile_of(ifname):
    return os.path.join(run_dir(), 'dhclient.%s.pid' % ifname)


def leasefile_of(ifname):
    return os.path.join(lease_dir(), 'dhclient.%s.leases' % ifname)


@dataclasses.dataclass(frozen=True)
class Client:
    """A running DHCP client: its pid, argv, program name, and dhclient's -pf / -lf files."""
    pid: int
    argv: Tuple[str, ...]
    program: str
    pidfile: Optional[str] = None
    leasefile: Optional[str] = None

    def describe(self):
        return '%s pid %d' % (self.program, self.pid)


def ifupdown_dhclient_argv(ifname):
    """The argv of Debian 12's ifupdown for `iface IFNAME inet dhcp` (see the module docstring)."""
    argv = [dhclient_program(), '-4', '-v', '-i', '-pf', pidfile_of(ifname), '-lf', leasefile_of(ifname),
            '-I', '-df', os.path.join(lease_dir(), 'dhclient6.%s.leases' % ifname)]
    script = os.environ.get('TUNTAP_QEMU_DHCLIENT_SCRIPT')
    if script:
        argv += ['-sf', script]
    return argv + [ifname]


def _option_value(argv, option):
    for index, arg in enumerate(argv[:-1]):
        if arg == option:
            return argv[index + 1]
    return None


def client_of(pid, argv, ifname):
    """The Client when argv (a process's) is a DHCP client of `ifname`, else None (pure)."""
    if not argv:
        return None
    program = os.path.basename(argv[0])
    if program not in PROGRAMS:
        return None
    args = list(argv[1:])
    if program == 'udhcpc':
        named = (_option_value(args, '-i') == ifname or _option_value(args, '--interface') == ifname
                 or '--interface=%s' % ifname in args)
        return Client(pid, tuple(argv), program, _option_value(args, '-p')) if named else None
    named = any(arg == ifname and (index == 0 or args[index - 1] not in DHCLIENT_VALUE_OPTIONS
                                   or program != 'dhclient')
                for index, arg in enumerate(args))
    if not named:
        return None
    if program == 'dhclient':
        return Client(pid, tuple(argv), program, _option_value(args, '-pf'), _option_value(args, '-lf'))
    return Client(pid, tuple(argv), program)


def _read_argv(proc, pid):
    try:
        with open(os.path.join(proc, pid, 'cmdline'), 'rb') as handle:
            raw = handle.read()
    except OSError:
        return None
    return [part.decode('utf-8', 'surrogateescape') for part in raw.split(b'\0')[:-1]] if raw else None


def _netns(proc, pid):
    try:
        return os.readlink(os.path.join(proc, pid, 'ns', 'net'))
    except OSError:
        return None


def find_clients(ifname, proc='/proc'):
    """[Client] of `ifname` in this network namespace, by pid."""
    ours = _netns(proc, 'self')
    clients = []
    try:
        pids = [entry for entry in os.listdir(proc) if entry.isdigit()]
    except OSError:
        return []
    for pid in sorted(pids, key=int):
        argv = _read_argv(proc, pid)
        if not argv or os.path.basename(argv[0]) not in PROGRAMS:
            continue
        if ours is not None and _netns(proc, pid) != ours:
            continue
        client = client_of(int(pid), argv, ifname)
        if client is not None:
            clients.append(client)
    return clients


class ClientError(Exception):
    """A DHCP client could not be stopped or started."""


def stop(client, proc='/proc', wait=STOP_WAIT):
    """SIGTERM to the client's pid after checking it is still that client (its cmdline), and
    wait until it is gone."""
    argv = _read_argv(proc, str(client.pid))
    if argv is None:
        return
    if tuple(argv) != client.argv:
        raise ClientError('pid %d is no longer %s (%s); not stopped' % (client.pid, client.describe(), ' '.join(argv)))
    os.kill(client.pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if _read_argv(proc, str(client.pid)) is None:
            break
        time.sleep(0.02)
    else:
        raise ClientError('%s did not end within %.0f s of SIGTERM' % (client.describe(), wait))
    if client.pidfile:
        try:
            os.unlink(client.pidfile)
        except OSError:
            pass


def start(ifname, timeout=START_TIMEOUT, background=False):
    """Run ifupdown's dhclient argv for `ifname`; it returns once bound (dhclient then goes on
    in the background). Returns the argv.

    background: dhclient -nw - in the background at once, its pidfile written (waited for).
    For a client that moves: the lease's address is on `ifname` already, so nothing waits for
    the DHCP server - and on a LAN that drops the host, the module does not hold the host lock
    for dhclient's minute while the armed rollback (confirmed_change) waits for it."""
    argv = ifupdown_dhclient_argv(ifname)
    if background:
        argv = argv[:-1] + ['-nw', ifname]
    for path in (run_dir(), lease_dir()):
        os.makedirs(path, exist_ok=True)
    env = dict(os.environ, LC_ALL='C')
    # Output to a file, not a pipe: the daemon dhclient becomes once bound must not keep a
    # pipe of ours open (run() would wait for it).
    with tempfile.TemporaryFile() as output:
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                  env=env, timeout=timeout, check=False, start_new_session=True)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ClientError('%s: %s' % (' '.join(argv), exc))
        if done.returncode != 0:
            output.seek(0)
            lines = output.read().decode('utf-8', 'replace').strip().splitlines()[-5:]
            raise ClientError('%s exited %d: %s' % (' '.join(argv), done.returncode, ' / '.join(lines)))
    if background:
        _wait_for_pidfile(pidfile_of(ifname), ifname)
    return argv


def _wait_for_pidfile(path, ifname, seconds=5.0):
    """dhclient -nw forks and its parent exits before the child writes its pidfile: wait for
    a pidfile that names a live client of `ifname`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(path) as handle:
                pid = int(handle.read().split()[0])
            with open('/proc/%d/cmdline' % pid, 'rb') as handle:
                args = handle.read().split(b'\0')
            if ifname.encode() in args:
                return pid
        except (OSError, ValueError, IndexError):
            pass
        time.sleep(0.05)
    raise ClientError('dhclient for %s wrote no pidfile %s within %.0f s' % (ifname, path, seconds))


INTERFACE_LINE = re.compile(r'^(\s*interface\s+)"([^"]*)"(\s*;)', re.M)


def renamed_leases(text, ifname):
    """A dhclient lease file's text with its leases' `interface "X";` set to `ifname` (pure)."""
    return INTERFACE_LINE.sub(lambda match: '%s"%s"%s' % (match.group(1), ifname, match.group(3)), text)


def copy_leases(source, target, ifname):
    """Write the leases of file `source` to `target` (atomically), for interface `ifname`;
    False when `source` does not exist or holds nothing."""
    try:
        with open(source) as handle:
            text = handle.read()
    except OSError:
        return False
    if not text.strip():
        return False
    folder = os.path.dirname(target) or '.'
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix='.%s.' % os.path.basename(target), dir=folder)
    try:
        with os.fdopen(handle, 'w') as stream:
            stream.write(renamed_leases(text, ifname))
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    return True


def move(source_if, target_if, clients, start_client=True):
    """Move the DHCP client from `source_if` to `target_if`: copy the lease file (so the new
    client asks for the same address; dhclient's default-duid with it), stop `clients` (by
    pid, cmdline checked), start ifupdown's argv on target_if (unless start_client is false:
    one runs there already). The address itself must be on target_if already; the client of
    source_if ends when source_if holds none (Debian's dhclient-script flushes its addresses
    on STOP)."""
    if start_client:
        leasefile = next((client.leasefile for client in clients if client.leasefile), None)
        copy_leases(leasefile or leasefile_of(source_if), leasefile_of(target_if), target_if)
    for client in clients:
        stop(client)
    if start_client:
        return start(target_if, background=True)
    return None
