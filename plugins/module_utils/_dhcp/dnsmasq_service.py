# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Our dnsmasq as a process: a daemonized dnsmasq with its pidfile (the namespace lab), or
the systemd unit tuntap-qemu-dnsmasq.service in the foreground (real hosts); which one runs,
whether it is ours, and what a converge does to it (decide_action, pure).

A pid is ours only when /proc/PID/cmdline is a dnsmasq with --conf-file=<our dnsmasq.conf>:
a stale pidfile or a recycled pid is never signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

from ansible_collections.tuntap.qemu.plugins.module_utils._guest import guest_unit, qemu

UNIT_NAME = 'tuntap-qemu-dnsmasq.service'
ACTIONS = ('none', 'started', 'reloaded', 'restarted', 'stopped')


def conf_option(conf_file):
    return '--conf-file=%s' % conf_file


def argv(binary, conf_file, foreground=False):
    """dnsmasq's command line; daemonized (it writes the pidfile of the configuration)."""
    words = [binary]
    if foreground:
        words.append('--keep-in-foreground')
    return words + [conf_option(conf_file)]


def is_ours(args, conf_file):
    """True when the argv list is a dnsmasq started with our configuration file."""
    return (bool(args) and os.path.basename(args[0]) == 'dnsmasq'
            and conf_option(conf_file) in args[1:])


def running_pid(pidfile, conf_file, extra_pid=None):
    """The pid of our running dnsmasq (from the pidfile, or extra_pid such as a unit's
    MainPID), or None."""
    for pid in (extra_pid, qemu.read_pid(pidfile)):
        if pid and is_ours(qemu.process_argv(pid), conf_file):
            return pid
    return None


def service_mode(requested, init_comm, same_netns):
    """(mode, error): 'systemd' or 'process'. auto: systemd when PID 1 is systemd and this
    runs in PID 1's network namespace (systemd's units run there, not in the lab's)."""
    if requested == 'process':
        return 'process', None
    systemd_here = init_comm == 'systemd'
    if requested == 'auto':
        return ('systemd' if systemd_here and same_netns else 'process'), None
    if not systemd_here:
        return None, 'service=systemd: PID 1 is %r, not systemd' % init_comm
    if not same_netns:
        return None, ("service=systemd: this runs in a network namespace other than PID 1's, "
                      "where systemd's units do not run; use service=process")
    return 'systemd', None


def init_comm(path='/proc/1/comm'):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def decide_action(wanted, running, changed_files, unit_changed=False):
    """What happens to dnsmasq: none, started, reloaded, restarted or stopped.

    changed_files: the names among dnsmasq.conf, hosts, names whose text changes. Only the
    hosts or names file: SIGHUP (dnsmasq rereads dhcp-hostsfile and addn-hosts); the main
    configuration or the unit: restart."""
    if not wanted:
        return 'stopped' if running else 'none'
    if not running:
        return 'started'
    if unit_changed or 'dnsmasq.conf' in changed_files:
        return 'restarted'
    if changed_files:
        return 'reloaded'
    return 'none'


def render_unit(binary, conf_file, runtime_dir, nft_load=None):
    """The unit; nft_load: [nft, firewall file] that loads our table before dnsmasq starts
    (a failure there does not keep DHCP from starting: '-')."""
    lines = [
        '%s (module guest_dhcp); local changes are overwritten.' % guest_unit.MARK,
        '# Remove it with guest_dhcp state=absent, not by hand.',
        '[Unit]',
        'Description=DHCP and DNS for the QEMU guests (tuntap.qemu)',
        # The internal interfaces come from ifupdown (networking.service); bind-dynamic takes
        # those that come later.
        'After=network.target networking.service',
        '',
        '[Service]',
        'Type=simple',
        'ExecStartPre=%s' % guest_unit.exec_line(['/usr/bin/mkdir', '-p', runtime_dir]),
        'ExecStartPre=%s' % guest_unit.exec_line([binary, '--test', conf_option(conf_file)]),
    ] + (['ExecStartPre=-%s' % guest_unit.exec_line([nft_load[0], '-f', nft_load[1]])] if nft_load else []) + [
        'ExecStart=%s' % guest_unit.exec_line(argv(binary, conf_file, foreground=True)),
        'ExecReload=/bin/kill -HUP $MAINPID',
        'Restart=on-failure',
        'RestartSec=5',
        '',
        '[Install]',
        'WantedBy=multi-user.target',
    ]
    return '\n'.join(lines) + '\n'


class DnsmasqError(Exception):
    """Starting or stopping dnsmasq failed; the message says why."""


def start_process(binary, conf_file, pidfile, timeout=10):
    """Start the daemonized dnsmasq; returns its pid (dnsmasq checks its configuration and
    binds before it forks, and exits non-zero with the reason on stderr)."""
    os.makedirs(os.path.dirname(pidfile), mode=0o755, exist_ok=True)
    if os.path.exists(pidfile):
        os.unlink(pidfile)
    result = subprocess.run(argv(binary, conf_file), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=dict(os.environ, LC_ALL='C'), check=False)
    if result.returncode != 0:
        raise DnsmasqError('dnsmasq failed to start (exit %d): %s'
                           % (result.returncode, (result.stderr or result.stdout).decode('utf-8', 'replace').strip()))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = running_pid(pidfile, conf_file)
        if pid:
            return pid
        time.sleep(0.05)
    raise DnsmasqError('dnsmasq started but %s names no dnsmasq of %s' % (pidfile, conf_file))


def signal_ours(pid, conf_file, signum):
    """Send signum to pid after checking that it is still our dnsmasq."""
    if not is_ours(qemu.process_argv(pid), conf_file):
        return False
    os.kill(pid, signum)
    return True


def stop_process(pid, conf_file, pidfile, timeout=10):
    if pid and signal_ours(pid, conf_file, signal.SIGTERM):
        if not qemu.wait_gone(pid, timeout):
            signal_ours(pid, conf_file, signal.SIGKILL)
            qemu.wait_gone(pid, 5)
    if os.path.exists(pidfile):
        os.unlink(pidfile)
