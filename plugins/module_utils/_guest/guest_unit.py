# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A qemu_guest guest as a systemd service: where systemd runs, the unit file of one guest,
the script its unit runs before the start and at the stop, and the steps that converge it.

The unit runs QEMU in the foreground (no -daemonize) with the same -pidfile and QMP socket in
the same runtime folder as the daemonized mode, so the module's running check (pid alive, our
QEMU command line, QMP query-status) is the same for both. Everything here is pure except
systemd_booted() and same_netns_as_init() (stats) and Systemctl (module.run_command).
"""

from __future__ import annotations

import collections
import os
import re
import sys

UNIT_DIR = '/etc/systemd/system'
UNIT_PREFIX = 'tuntap-qemu-guest-'
MARK = '# Managed by tuntap.qemu'
HELPER_PATH = '/usr/local/libexec/tuntap-qemu/qemu-guest-unit'
SYSTEMD_RUN_DIR = '/run/systemd/system'
INSTALL = '/usr/bin/install'
RM = '/usr/bin/rm'
# ExecStartPre waits this long for the guest's taps (ifupdown's networking.service makes them).
TAP_WAIT_SECONDS = 60
# After the powerdown timeout: QMP quit and this long for QEMU to go; then systemd's SIGTERM,
# and SIGKILL when TimeoutStopSec (stop_timeout + STOP_MARGIN) is over.
QUIT_SECONDS = 5
STOP_MARGIN = 15
# The VDE switch's unit (module vde_switch): a guest with a vde NIC wants it and starts after it.
VDE_UNIT = 'tuntap-qemu-vde.service'
ACTIVE_STATES = ('active', 'activating', 'reloading', 'deactivating')


def unit_name(guest):
    return '%s%s.service' % (UNIT_PREFIX, guest)


def unit_path(guest, unit_dir=None):
    return os.path.join(unit_dir or UNIT_DIR, unit_name(guest))


def is_ours(text):
    """True when a file's text carries our header on its first line, or its second after a
    #! line (None: no file)."""
    if text is None:
        return False
    lines = text.splitlines()[:2]
    if lines and lines[0].startswith('#!'):
        lines = lines[1:]
    return bool(lines) and lines[0].startswith(MARK)


# ---------------------------------------------------------------- where systemd runs

def systemd_booted(run_dir=SYSTEMD_RUN_DIR, isdir=os.path.isdir):
    """True when systemd is the init system: sd_booted(3) tests for /run/systemd/system."""
    return bool(isdir(run_dir))


def same_netns_as_init(self_ns='/proc/self/ns/net', init_ns='/proc/1/ns/net'):
    """Whether this process runs in PID 1's network namespace (None when unreadable).

    PID 1's systemd starts its units in its own namespace: a module that manages another one
    (ip netns exec, the tuntap.qemu.netns connection) must not start the guest there, where
    QEMU would not find its taps or, as root, would make new ones."""
    try:
        return os.stat(self_ns).st_ino == os.stat(init_ns).st_ino
    except OSError:
        return None


def service_mode(autostart, booted, same_netns, guest):
    """('systemd' or 'daemon', warning or None) for the autostart option on this host.

    Where systemd is not PID 1 (containers, the namespace lab on a machine without systemd) or
    the module runs in another network namespace than PID 1 (the lab on a systemd machine), a
    guest with autostart runs daemonized, as without autostart, and says so.
    """
    if not autostart:
        return 'daemon', None
    if not booted:
        why = 'systemd is not the init system here (%s is missing)' % SYSTEMD_RUN_DIR
    elif not same_netns:
        why = ("this runs in a network namespace other than PID 1's (or it cannot be compared), "
               "where systemd's units do not run")
    else:
        return 'systemd', None
    return 'daemon', ('autostart: %s, so guest %s runs daemonized as with autostart=false and '
                      'does not start at boot' % (why, guest))


# ---------------------------------------------------------------- rendering

_PLAIN_WORD = re.compile(r'^[A-Za-z0-9_@+=:,./-]+$')


def exec_word(arg, variables=True):
    """One argument as systemd's Exec*= lines read it back unchanged.

    Words with anything but plain characters are double-quoted with C escapes; % (specifiers)
    is doubled, and $ (environment variables) too unless `variables` is false (the program
    path, which systemd does not expand).
    """
    if _PLAIN_WORD.match(arg):
        return arg
    escaped = (arg.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')
               .replace('\t', '\\t').replace('%', '%%'))
    if variables:
        escaped = escaped.replace('$', '$$')
    return '"%s"' % escaped


def exec_line(argv, wrap=False, indent='    '):
    """An Exec*= value; `wrap` puts each option with its value on a continuation line."""
    words = [exec_word(argv[0], variables=False)] + [exec_word(arg) for arg in argv[1:]]
    if not wrap:
        return ' '.join(words)
    lines = [words[0]]
    index = 1
    while index < len(argv):
        count = 2 if (argv[index].startswith('-') and index + 1 < len(argv)
                      and not argv[index + 1].startswith('-')) else 1
        lines.append(' '.join(words[index:index + count]))
        index += count
    return (' \\\n' + indent).join(lines)


def helper_python():
    """The Python that runs the unit's helper script: Debian's, else the module's."""
    return '/usr/bin/python3' if os.path.exists('/usr/bin/python3') else sys.executable


def render_unit(name, argv, files, taps, account=None, stop_timeout=30, python='/usr/bin/python3',
                helper=None, vde=False):
    """The unit file of guest `name`.

    argv: QEMU's command line without -daemonize; files: qemu.paths(); taps: its tap names;
    account: (user, group) names QEMU runs as, or None for root; vde: a NIC is on the host's
    VDE switch (its unit tuntap-qemu-vde.service comes first).
    """
    helper = helper or HELPER_PATH
    runtime_dir = files['runtime_dir']
    prepare = [INSTALL, '-d', '-m', '0750']
    lines = [
        '%s (module qemu_guest): guest %s; local changes are overwritten.' % (MARK, name),
        '# Remove it with qemu_guest state=absent (or autostart=false), not by hand.',
        '[Unit]',
        'Description=QEMU guest %s (tuntap.qemu)' % name,
        # ifupdown's networking.service brings up the taps (auto tapN stanzas); the wait in
        # ExecStartPre covers taps that come later. Stopped before the network at shutdown.
        'Wants=network-online.target%s' % (' ' + VDE_UNIT if vde else ''),
        'After=network-online.target networking.service remote-fs.target%s' % (' ' + VDE_UNIT if vde else ''),
        '',
        '[Service]',
        'Type=exec',
    ]
    if account is not None:
        lines += ['User=%s' % account[0], 'Group=%s' % account[1]]
        prepare += ['-o', account[0], '-g', account[1]]
    stop = [python, helper, 'powerdown', files['qmp_socket'], str(stop_timeout)]
    lines += [
        # /run is a tmpfs: the runtime folder (pidfile, QMP socket, serial log) is made at
        # every start, as root ('+'), owned by the guest's user.
        'ExecStartPre=+%s' % exec_line(prepare + [runtime_dir]),
        # A pidfile or socket left by a QEMU of another user (run_as changed) would stop this one.
        'ExecStartPre=+%s' % exec_line([RM, '-f', files['pidfile'], files['qmp_socket']]),
        'ExecStartPre=%s' % exec_line([python, helper, 'wait-taps', str(TAP_WAIT_SECONDS)] + list(taps)),
        'ExecStart=%s' % exec_line(argv, wrap=True),
        # ACPI powerdown through QMP, up to stop_timeout s, then QMP quit; then SIGTERM and,
        # at TimeoutStopSec, SIGKILL.
        'ExecStop=%s' % exec_line(stop),
        'TimeoutStopSec=%d' % (stop_timeout + QUIT_SECONDS + STOP_MARGIN),
        'Restart=on-failure',
        'RestartSec=5',
        '',
        '[Install]',
        'WantedBy=multi-user.target',
    ]
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------- state and plan

UnitStatus = collections.namedtuple('UnitStatus', 'loaded active enabled main_pid needs_reload')
NO_UNIT = UnitStatus(loaded=False, active=False, enabled=False, main_pid=None, needs_reload=False)

SHOW_PROPERTIES = ('LoadState', 'ActiveState', 'UnitFileState', 'MainPID', 'NeedDaemonReload')


def parse_show(text):
    """UnitStatus from `systemctl show --property=...` output (Key=Value lines)."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition('=')
        if sep:
            values[key.strip()] = value.strip()
    main_pid = values.get('MainPID', '0')
    return UnitStatus(
        loaded=values.get('LoadState') == 'loaded',
        active=values.get('ActiveState') in ACTIVE_STATES,
        enabled=values.get('UnitFileState') == 'enabled',
        main_pid=int(main_pid) if main_pid.isdigit() and int(main_pid) > 0 else None,
        needs_reload=values.get('NeedDaemonReload') == 'yes',
    )


UnitSteps = collections.namedtuple(
    'UnitSteps', 'stop_daemon write remove reload enable disable start restart stop action')


def plan_unit(state, wanted, before, after, status, guest, argv, restart_on_change=True):
    """The steps that converge a guest's unit, in the order they run.

    state: running, stopped or absent; wanted: the unit should exist (autostart under systemd,
    not absent); before/after: the unit file's text now and as rendered (None: no file);
    status: UnitStatus; guest: qemu.observe() (state, pid, cmdline); argv: the unit's QEMU
    command line. action: start, restart, stop or None for the guest process; with `wanted`
    false the daemonized mode decides the rest (see the caller).
    """
    steps = dict(stop_daemon=False, write=False, remove=False, reload=False, enable=False,
                 disable=False, start=False, restart=False, stop=False, action=None)
    guest_up = guest['state'] != 'stopped'
    if not wanted:
        if before is not None and is_ours(before):
            steps.update(stop=status.active, disable=status.enabled, remove=True, reload=True)
        return UnitSteps(**steps)
    unit_owns = guest_up and status.active and guest['pid'] == status.main_pid
    steps['write'] = before != after
    steps['reload'] = steps['write'] or status.needs_reload or not status.loaded
    steps['enable'] = not status.enabled
    # A QEMU of this guest that is not the unit's (daemonized before autostart): it goes first,
    # so that two QEMUs never share a tap.
    steps['stop_daemon'] = guest_up and not unit_owns
    if state == 'running':
        if not status.active:
            steps['start'] = True
        elif not unit_owns or guest['state'] == 'unresponsive':
            steps['restart'] = True
        elif restart_on_change and (steps['write'] or guest.get('cmdline') != argv):
            steps['restart'] = True
        if steps['restart'] or (steps['start'] and guest_up):
            steps['action'] = 'restart'
        elif steps['start']:
            steps['action'] = 'start'
    else:
        steps['stop'] = status.active
        if steps['stop'] or steps['stop_daemon']:
            steps['action'] = 'stop'
    return UnitSteps(**steps)


def unit_changed(steps):
    return any((steps.stop_daemon, steps.write, steps.remove, steps.reload, steps.enable,
                steps.disable, steps.start, steps.restart, steps.stop))


class Systemctl(object):
    """systemctl through module.run_command: argv lists, LC_ALL=C, failures end the module."""

    def __init__(self, module):
        self.module = module
        self.binary = module.get_bin_path('systemctl', required=True)

    def run(self, *args):
        rc, out, err = self.module.run_command([self.binary] + list(args),
                                               environ_update={'LC_ALL': 'C', 'LANG': 'C'})
        if rc != 0:
            raise SystemctlError('systemctl %s failed (exit %d): %s'
                                 % (' '.join(args), rc, (err or out).strip()))
        return out

    def status(self, unit):
        return parse_show(self.run('show', '--property=%s' % ','.join(SHOW_PROPERTIES), unit))


class SystemctlError(Exception):
    """A systemctl call failed; the message has its output."""


# ---------------------------------------------------------------- the unit's script

HELPER_SCRIPT = r'''#!{python}
# Managed by tuntap.qemu (module qemu_guest); local changes are overwritten.
"""The start check and the graceful stop of the tuntap-qemu-guest-*.service units.

  qemu-guest-unit wait-taps SECONDS TAP...  wait until each tap exists and is up
  qemu-guest-unit powerdown SOCKET SECONDS  QMP system_powerdown, wait up to SECONDS for QEMU
                                            to go, then QMP quit and {quit} s more
Standard library only; exits 0 when the guest is already gone.
"""

import json
import socket
import sys
import time

IFF_UP = 0x1
QUIT_SECONDS = {quit}


def tap_up(tap):
    try:
        with open('/sys/class/net/%s/flags' % tap) as handle:
            return bool(int(handle.read().strip(), 16) & IFF_UP)
    except (OSError, ValueError):
        return False


def wait_taps(seconds, taps):
    deadline = time.monotonic() + seconds
    while True:
        waiting = [tap for tap in taps if not tap_up(tap)]
        if not waiting:
            return 0
        if time.monotonic() >= deadline:
            sys.stderr.write('qemu-guest-unit: tap %s missing or down after %d s\n'
                             % (', '.join(waiting), seconds))
            return 1
        time.sleep(0.5)


class Qmp(object):
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(path)
        self.buffer = b''
        self.read()
        self.execute('qmp_capabilities')

    def read(self):
        while b'\n' not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError('QMP closed')
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b'\n', 1)
        return json.loads(line.decode('utf-8'))

    def execute(self, command):
        self.sock.sendall(json.dumps({{'execute': command}}).encode('utf-8') + b'\n')
        while True:
            reply = self.read()
            if 'event' not in reply:
                return reply

    def closed_within(self, seconds):
        """True when QEMU closes the connection (it exits) within `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                if not self.sock.recv(65536):
                    return True
            except socket.timeout:
                return False


def powerdown(path, seconds):
    try:
        qmp = Qmp(path)
    except (OSError, EOFError, ValueError):
        return 0  # no QEMU listens: already gone
    try:
        # A guest whose CPUs do not run (started paused, stopped) cannot power down: quit now
        # instead of waiting the whole timeout at every shutdown.
        status = (qmp.execute('query-status').get('return') or {{}}).get('status')
        if status != 'running':
            sys.stderr.write('qemu-guest-unit: the guest is %s, not running; QMP quit\n' % status)
            qmp.execute('quit')
            qmp.closed_within(QUIT_SECONDS)
            return 0
        qmp.execute('system_powerdown')
        if qmp.closed_within(seconds):
            return 0
        sys.stderr.write('qemu-guest-unit: no powerdown within %d s; QMP quit\n' % seconds)
        qmp.execute('quit')
        qmp.closed_within(QUIT_SECONDS)
    except (OSError, EOFError, ValueError):
        pass  # the connection ended with QEMU
    return 0


def main(argv):
    if len(argv) >= 2 and argv[0] == 'wait-taps':
        return wait_taps(int(argv[1]), argv[2:])
    if len(argv) == 3 and argv[0] == 'powerdown':
        return powerdown(argv[1], int(argv[2]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
'''


def render_helper(python='/usr/bin/python3'):
    """The script the units run (ExecStartPre wait-taps, ExecStop powerdown)."""
    return HELPER_SCRIPT.format(python=python, quit=QUIT_SECONDS)
