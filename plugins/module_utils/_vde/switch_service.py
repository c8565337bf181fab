# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Our vde_switch as a process: its command line, whether a pid is ours, the systemd unit
tuntap-qemu-vde.service, starting and stopping the daemonized process, and the action a
converge takes (decide_action, pure).

Both ways run the same command line: vde_switch --daemon --pidfile PIDFILE. vde_switch binds
its control socket (SOCKET/ctl) before it forks, so the socket is there when the parent exits:
a Type=forking unit is started exactly when guests can connect, and so is the process here.
The child writes the pidfile (O_EXCL: a stale one is removed first) and attaches the tap.
It has no --nostdin option: in the foreground it exits at EOF on stdin, hence --daemon under
systemd too. On SIGTERM it removes its sockets, the socket directory and the pidfile.

A pid is ours only when /proc/PID/cmdline is a vde_switch with --pidfile <our pidfile>: a
stale pidfile or a recycled pid is never signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

from ansible_collections.tuntap.qemu.plugins.module_utils._guest import guest_unit, qemu

UNIT_NAME = 'tuntap-qemu-vde.service'
ACTIONS = ('none', 'started', 'restarted', 'stopped')
MGMT_MODE = '0600'
TEST = '/usr/bin/test'
MKDIR = '/usr/bin/mkdir'
RM = '/usr/bin/rm'


def argv(binary, request):
    """vde_switch's command line for the Request (switch_request.Request)."""
    words = [binary, '--sock', request.socket, '--tap', request.tap,
             '--mode', request.mode, '--dirmode', request.dir_mode]
    if request.group:
        words += ['--group', request.group]
    return words + ['--mgmt', request.mgmt_socket, '--mgmtmode', MGMT_MODE,
                    '--daemon', '--pidfile', request.pidfile]


def is_ours(args, pidfile):
    """True when the argv list is a vde_switch started with our pidfile."""
    return (bool(args) and os.path.basename(args[0]) == 'vde_switch'
            and qemu.option_value(args, '--pidfile') == pidfile)


def running_pid(pidfile, extra_pid=None):
    """The pid of our running vde_switch (from the pidfile, or extra_pid such as a unit's
    MainPID), or None."""
    for pid in (extra_pid, qemu.read_pid(pidfile)):
        if pid and is_ours(qemu.process_argv(pid), pidfile):
            return pid
    return None


def decide_action(wanted, running_argv, desired_argv, unit_changed=False):
    """none, started, restarted or stopped. running_argv: our switch's command line now
    (None: none runs); a different one (tap, socket, group, mode) or a changed unit restarts."""
    if not wanted:
        return 'stopped' if running_argv is not None else 'none'
    if running_argv is None:
        return 'started'
    if unit_changed or running_argv != desired_argv:
        return 'restarted'
    return 'none'


def render_unit(args, request):
    """The unit file: vde_switch daemonized (Type=forking, see the module docstring)."""
    lines = [
        '%s (module vde_switch); local changes are overwritten.' % guest_unit.MARK,
        '# Remove it with vde_switch state=absent, not by hand.',
        '[Unit]',
        'Description=VDE switch on tap %s for the QEMU guests (tuntap.qemu)' % request.tap,
        # ifupdown's networking.service makes the tap (its auto stanza) with the host's
        # address; the guests' units come After= this one.
        'After=network.target networking.service',
        '',
        '[Service]',
        'Type=forking',
        'PIDFile=%s' % request.pidfile,
        'ExecStartPre=%s' % guest_unit.exec_line([MKDIR, '-p', request.runtime_dir]),
        'ExecStartPre=%s' % guest_unit.exec_line([RM, '-f', request.pidfile]),
        # The tap must be there: vde_switch as root would make a tap of its own that nothing
        # configures (no address). Restart= tries again while ifupdown has not made it.
        'ExecStartPre=%s' % guest_unit.exec_line([TEST, '-e', '/sys/class/net/%s/tun_flags' % request.tap]),
        'ExecStart=%s' % guest_unit.exec_line(args),
        'Restart=on-failure',
        'RestartSec=5',
        '',
        '[Install]',
        'WantedBy=multi-user.target',
    ]
    return '\n'.join(lines) + '\n'


class SwitchError(Exception):
    """Starting or stopping vde_switch failed; the message says why."""


def start_process(args, pidfile, attached=None, timeout=10):
    """Start the daemonized vde_switch; returns its pid once its pidfile names it and
    `attached()` (the tap has carrier: the switch holds it) is true."""
    os.makedirs(os.path.dirname(pidfile), mode=0o755, exist_ok=True)
    if os.path.exists(pidfile):
        os.unlink(pidfile)
    result = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, LC_ALL='C'), check=False)
    if result.returncode != 0:
        raise SwitchError('vde_switch failed to start (exit %d): %s'
                          % (result.returncode, (result.stderr or result.stdout).decode('utf-8', 'replace').strip()))
    deadline = time.monotonic() + timeout
    pid = None
    while time.monotonic() < deadline:
        pid = running_pid(pidfile)
        if pid and (attached is None or attached()):
            return pid
        time.sleep(0.05)
    if pid:
        stop_process(pid, pidfile)
        raise SwitchError('vde_switch (pid %d) did not attach tap %s within %d s; stopped it again'
                          % (pid, args[args.index('--tap') + 1], timeout))
    raise SwitchError('vde_switch started but %s names no vde_switch of ours (see the system log)' % pidfile)


def signal_ours(pid, pidfile, signum):
    """Send signum to pid after checking that it is still our vde_switch."""
    if not is_ours(qemu.process_argv(pid), pidfile):
        return False
    os.kill(pid, signum)
    return True


def stop_process(pid, pidfile, timeout=10):
    """SIGTERM (it removes its sockets), SIGKILL when it does not go; the pidfile goes."""
    if pid and signal_ours(pid, pidfile, signal.SIGTERM):
        if not qemu.wait_gone(pid, timeout):
            signal_ours(pid, pidfile, signal.SIGKILL)
            qemu.wait_gone(pid, 5)
    if os.path.exists(pidfile):
        os.unlink(pidfile)
