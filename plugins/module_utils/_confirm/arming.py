# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Arming and confirming a rollback: the folder, the timer, the decision.

    folder = arm(runtime_dir, change_id, snapshot, steps, timeout, python)
    decision = confirm(folder)         # CONFIRMED, or ROLLBACK when the rollback won the race
    facts = status(folder)

The rollback folder <runtime_dir>/<id>/ holds snapshot.json, the saved files (files/N),
plan.json (the steps, the deadline, the host lock's path), the helper script and, once it
ran, report.json (see rollback_helper). The timer is

  systemd-timer  a transient timer where systemd is PID 1 and the module runs in PID 1's
                 network namespace: systemd-run --unit=tuntap-qemu-rollback-<id>
                 --on-active=<N>s --timer-property=AccuracySec=100ms --property=Type=oneshot
                 --property=KillMode=process
                 <python> <helper> <folder> (systemd-run(1), systemd 252)
  process        elsewhere (a container, a network namespace of the lab: a unit would run in
                 PID 1's namespace, not this one): a detached sleeper, double fork + setsid,
                 stdio to helper.log, its pid in helper.pid; it inherits the module's network
                 (and mount) namespace and outlives the module and the SSH session.

Confirm creates the decision file first (O_EXCL: the race with a firing timer has one
winner), then stops the timer (systemctl stop <unit>.timer) or ends the sleeper by its
pidfile once /proc/<pid>/cmdline shows it is this folder's helper.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import tempfile
import time

from ansible_collections.tuntap.qemu.plugins.module_utils._confirm import rollback_helper
from ansible_collections.tuntap.qemu.plugins.module_utils._confirm.rollback_plan import saved_name

SYSTEMD_TIMER = 'systemd-timer'
PROCESS = 'process'
UNIT_PREFIX = 'tuntap-qemu-rollback-'
ID_PATTERN = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$')
REPORT_WAIT = 30.0  # a confirm that lost the race waits this long for the report


class ArmingError(Exception):
    """The timer could not be started (the folder is removed again)."""


def new_id(clock=time.time, random_bytes=os.urandom):
    """A change id: UTC time and 6 random hex digits, e.g. 20261201T150500-a1b2c3."""
    return '%s-%s' % (time.strftime('%Y%m%dT%H%M%S', time.gmtime(clock())), random_bytes(3).hex())


def valid_id(change_id):
    return bool(ID_PATTERN.match(change_id or '')) and change_id not in ('.', '..')


def unit_name(change_id):
    return UNIT_PREFIX + change_id


def systemd_is_init(run_dir='/run/systemd/system', comm='/proc/1/comm'):
    """systemd runs as PID 1 (/run/systemd/system exists and PID 1 is called systemd)."""
    try:
        with open(comm) as handle:
            name = handle.read().strip()
    except OSError:
        return False
    return os.path.isdir(run_dir) and name == 'systemd'


def same_netns_as_init(self_ns='/proc/self/ns/net', init_ns='/proc/1/ns/net'):
    """Whether this process runs in PID 1's network namespace (unknown: False)."""
    try:
        return os.stat(self_ns).st_ino == os.stat(init_ns).st_ino
    except OSError:
        return False


def choose_mechanism(systemd=None, same_netns=None):
    systemd = systemd_is_init() if systemd is None else systemd
    same_netns = same_netns_as_init() if same_netns is None else same_netns
    return SYSTEMD_TIMER if systemd and same_netns else PROCESS


def timer_argv(change_id, timeout, python, helper, folder):
    """The systemd-run argv of the transient timer."""
    return ['systemd-run', '--unit=%s' % unit_name(change_id), '--on-active=%ds' % timeout,
            '--timer-property=AccuracySec=100ms', '--property=Type=oneshot',
            # The DHCP client the rollback starts again outlives the oneshot service: with the
            # default KillMode=control-group systemd ends it with the unit (measured on the
            # real-host stage: dhclient on eth0 gone right after the rollback started it).
            '--property=KillMode=process',
            '--description=tuntap.qemu rollback %s unless confirmed' % change_id,
            python, helper, folder]


def _write(path, data, mode=0o600):
    directory = os.path.dirname(path)
    handle, temp = tempfile.mkstemp(prefix='.tmp-', dir=directory)
    try:
        with os.fdopen(handle, 'wb') as stream:
            stream.write(data)
            os.fchmod(stream.fileno(), mode)
        os.rename(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def _json(data):
    return json.dumps(data, indent=1, sort_keys=True).encode('utf-8')


@dataclasses.dataclass(frozen=True)
class Armed:
    change_id: str
    folder: str
    mechanism: str
    armed_at: float
    deadline: float


def write_folder(folder, change_id, snapshot, steps, timeout, python, mechanism, lock, now):
    """The rollback folder and its files (not the timer)."""
    os.makedirs(os.path.dirname(folder), mode=0o755, exist_ok=True)
    os.mkdir(folder, 0o700)
    os.mkdir(os.path.join(folder, 'files'), 0o700)
    for index, saved in enumerate(snapshot.files):
        if saved.exists:
            _write(os.path.join(folder, saved_name(index)), saved.content or b'')
    _write(os.path.join(folder, rollback_helper.SNAPSHOT), _json(snapshot.to_json()))
    plan = {
        'id': change_id, 'timeout': timeout, 'armed_at': now, 'deadline': now + timeout,
        'taken_at': snapshot.taken_at, 'mechanism': mechanism, 'unit': unit_name(change_id),
        'lock': lock, 'ip': 'ip', 'steps': [step.to_json() for step in steps],
        'uplink': snapshot.uplink.name, 'bridge': snapshot.bridge.name,
    }
    _write(os.path.join(folder, rollback_helper.PLAN), _json(plan))
    _write(os.path.join(folder, rollback_helper.HELPER_NAME),
           rollback_helper.render_helper(python).encode('utf-8'), 0o700)


def arm(runtime_dir, change_id, snapshot, steps, timeout, python, lock=None, mechanism=None,
        clock=time.time):
    """Write the folder and start the timer; an Armed record."""
    mechanism = mechanism or choose_mechanism()
    folder = os.path.join(runtime_dir, change_id)
    now = clock()
    write_folder(folder, change_id, snapshot, steps, timeout, python, mechanism, lock, now)
    helper = os.path.join(folder, rollback_helper.HELPER_NAME)
    try:
        if mechanism == SYSTEMD_TIMER:
            _run(timer_argv(change_id, timeout, python, helper, folder))
        else:
            _start_sleeper(python, helper, folder)
    except (OSError, ArmingError) as exc:
        _remove_folder(folder)
        raise ArmingError('the rollback timer could not be started (%s); nothing was armed and '
                          'nothing changed' % exc)
    return Armed(change_id, folder, mechanism, now, now + timeout)


def _run(argv):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
                          env=dict(os.environ, LC_ALL='C'), universal_newlines=True)
    if proc.returncode != 0:
        raise ArmingError('%s: %s' % (' '.join(argv), (proc.stderr or proc.stdout).strip()))
    return proc


def _start_sleeper(python, helper, folder):
    """The detached sleeper: a new session (first fork + setsid), which forks once more and
    writes the grandchild's pid into helper.pid before it exits."""
    log = os.open(os.path.join(folder, rollback_helper.LOG), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                  0o600)
    try:
        with open(os.devnull, 'rb') as null:
            child = subprocess.Popen([python, helper, folder, '--detach'], stdin=null,
                                     stdout=log, stderr=log, close_fds=True,
                                     start_new_session=True, cwd='/')
    finally:
        os.close(log)
    code = child.wait(timeout=30)
    if code != 0 or sleeper_pid(folder) is None:
        raise ArmingError('the sleeper exited with %s: %s' % (code, _log_tail(folder)))


def _log_tail(folder):
    try:
        with open(os.path.join(folder, rollback_helper.LOG), errors='replace') as handle:
            return handle.read()[-500:].strip() or 'no output'
    except OSError:
        return 'no log'


def _remove_folder(folder):
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in files:
            os.unlink(os.path.join(root, name))
        for name in dirs:
            os.rmdir(os.path.join(root, name))
    os.rmdir(folder)


def sleeper_pid(folder):
    """The pid in helper.pid when /proc/<pid>/cmdline is this folder's helper, else None."""
    try:
        with open(os.path.join(folder, rollback_helper.PIDFILE)) as handle:
            pid = int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            argv = handle.read().split(b'\0')
    except OSError:
        return None
    helper = os.path.join(folder, rollback_helper.HELPER_NAME).encode()
    if helper in argv and folder.encode() in argv:
        return pid
    return None


def read_json(folder, name):
    try:
        with open(os.path.join(folder, name)) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def decision(folder):
    try:
        with open(os.path.join(folder, rollback_helper.DECISION)) as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def decide(folder, what):
    """Create the decision file (O_EXCL); the decision that stands."""
    path = os.path.join(folder, rollback_helper.DECISION)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return decision(folder)
    with os.fdopen(handle, 'w') as stream:
        stream.write(what + '\n')
    return what


def wait_report(folder, seconds=REPORT_WAIT, sleep=time.sleep, clock=time.monotonic):
    """report.json of a rollback that runs or ran (None if it does not appear in time)."""
    end = clock() + seconds
    while True:
        report = read_json(folder, rollback_helper.REPORT)
        if report is not None or clock() >= end:
            return report
        sleep(0.1)


def confirm(folder):
    """Cancel the rollback: rollback_helper.CONFIRMED, or ROLLBACK when it ran first."""
    plan = read_json(folder, rollback_helper.PLAN) or {}
    stands = decide(folder, rollback_helper.CONFIRMED)
    if stands != rollback_helper.CONFIRMED:
        return stands
    if plan.get('mechanism') == SYSTEMD_TIMER:
        # The service must not run: the decision file stops it if the timer fired meanwhile.
        subprocess.run(['systemctl', 'stop', '%s.timer' % plan['unit']], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=dict(os.environ, LC_ALL='C'), check=False)
    else:
        pid = sleeper_pid(folder)
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    return stands


def status(folder):
    """What became of a change: None for an unknown folder, else a dict."""
    plan = read_json(folder, rollback_helper.PLAN)
    if plan is None:
        return None
    stands = decision(folder)
    report = read_json(folder, rollback_helper.REPORT) if stands == rollback_helper.ROLLBACK else None
    return {
        'id': plan['id'], 'timeout': plan['timeout'], 'deadline': plan['deadline'],
        'mechanism': plan['mechanism'], 'armed_at': plan['armed_at'],
        'confirmed': stands == rollback_helper.CONFIRMED,
        'rolled_back': stands == rollback_helper.ROLLBACK,
        'report': report or {},
        'rollback': ['%d. %s' % (number, step['text'])
                     for number, step in enumerate(plan['steps'], 1)],
    }


def protection_error(runtime_dir, change_id, clock=time.time):
    """Why the change that the armed rollback `change_id` protects must not be made now, or
    None while that rollback is pending and its deadline ahead.

    The module that makes the change (bridge_port's takeover or give-back) asks this under
    the host lock, which the rollback helper takes too: a change made now is either
    confirmed in time or rolled back whole once the module lets go of the lock. Once the
    deadline has passed (on a slow host, the tasks between arming and the change took the
    whole timeout), the rollback ran or runs on the host as it was, and a change made after
    it would stand with nothing to undo it - a host cut off for good."""
    if not valid_id(change_id):
        return 'armed_change: %r is not a change id (letters, digits, ., _, -)' % (change_id,)
    folder = os.path.join(runtime_dir, change_id)
    state = status(folder)
    if state is None:
        return ('armed_change %s: no rollback folder %s (not armed on this host, or /run emptied '
                'by a reboot): nothing would undo this change; nothing changed'
                % (change_id, folder))
    if state['confirmed']:
        return ('armed_change %s is confirmed already: nothing would undo this change; nothing '
                'changed. Arm a new one' % change_id)
    late = clock() - state['deadline']
    if state['rolled_back'] or late >= 0:
        when = state['report'].get('when') if state['report'] else None
        done = ('was rolled back at %s' % when if when else
                'is being rolled back' if state['rolled_back'] else 'is due to be rolled back')
        return ('armed_change %s %s before this change was made: its %d s ran out %.0f s ago, '
                'while the tasks before the change ran, and a change made now would stand with '
                'nothing to undo it; nothing changed. Arm it again with a longer timeout (the '
                'hypervisor role: tuntap_qemu_takeover_timeout)'
                % (change_id, done, state['timeout'], max(late, 0)))
    return None


def pending_changes(runtime_dir, uplink):
    """Ids of the changes in `runtime_dir` armed for `uplink` and neither confirmed nor rolled
    back yet (sorted)."""
    try:
        names = sorted(os.listdir(runtime_dir))
    except OSError:
        return []
    found = []
    for name in names:
        folder = os.path.join(runtime_dir, name)
        plan = read_json(folder, rollback_helper.PLAN)
        if plan and plan.get('uplink') == uplink and decision(folder) is None:
            found.append(plan['id'])
    return found


def describe_report(report):
    """'rolled back at WHEN: REASON; steps: 1. ... (ok); ...'"""
    if not report:
        return 'its rollback started, but no report was written yet'

    def told(step):
        if step['result'] == 'failed':
            return '%s (failed: %s)' % (step['text'], step['detail'])
        return '%s (%s)' % (step['text'], step['result'])
    steps = '; '.join('%d. %s' % (number, told(step))
                      for number, step in enumerate(report.get('steps', []), 1))
    return 'rolled back at %s, %s; steps: %s' % (report.get('when'), report.get('reason'), steps)
