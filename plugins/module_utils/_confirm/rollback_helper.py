# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollback helper: the standalone script that runs on the host when the timer fires.

It runs outside Ansible (like _guest/guest_unit.py's HELPER_SCRIPT), so it imports nothing of
the collection: arming.py renders HELPER_SCRIPT into the rollback folder as
`rollback-helper.py`, beside `plan.json` (the steps of rollback_plan.py), `snapshot.json` and
the saved files, and starts it:

    python3 rollback-helper.py FOLDER            run the rollback now (the systemd timer's
                                                 service, which fires after the timeout)
    python3 rollback-helper.py FOLDER --detach   the detached sleeper where systemd is not
                                                 PID 1: forks once more (the caller started it
                                                 in a session of its own: double fork + setsid),
                                                 writes FOLDER/helper.pid, sleeps until the
                                                 deadline, then runs the rollback

Confirm and rollback race through one file, FOLDER/decision, created with O_EXCL: whoever
creates it first ("confirmed" or "rollback") wins, so a confirm that comes while the timer
fires either stops the rollback or learns that it ran. The rollback takes the host lock
(host_lock.py's flock, the path is in plan.json) for at most LOCK_WAIT seconds, so it does
not interleave with a converge; then it runs every step (`ip` commands, reading the state
with `ip -json` where a step compares), also after a failed one, writes FOLDER/report.json
(when, why, each step and its result) and prints a one-line summary to stderr (the journal,
or FOLDER/helper.log of the sleeper). The `ip` commands run in the network namespace the
helper was started in, which the sleeper inherits from the module.
"""

from __future__ import annotations

HELPER_NAME = 'rollback-helper.py'
PIDFILE = 'helper.pid'
DECISION = 'decision'
REPORT = 'report.json'
PLAN = 'plan.json'
SNAPSHOT = 'snapshot.json'
LOG = 'helper.log'
CONFIRMED = 'confirmed'
ROLLBACK = 'rollback'

HELPER_SCRIPT = r'''#!@PYTHON@
"""tuntap.qemu rollback helper: undo an unconfirmed change (see plan.json beside it)."""
import errno
import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

LOCK_WAIT = 30.0
SOLICIT_WAIT = 3.0  # seconds a link without a usable link-local address is given (DAD)
DHCP_CLIENTS = ('dhclient', 'dhcpcd', 'udhcpc')
DHCLIENT_VALUE_OPTIONS = frozenset(('-pf', '-lf', '-cf', '-sf', '-df', '-s', '-g', '-p', '-e',
                                    '--decline-wait-time', '--address-prefix-len',
                                    '--prefix-len-hint', '-timeout'))
INTERPRETERS = ('sh', 'bash', 'dash', 'python3', 'python')


def client_program(argv):
    for word in argv[:2]:
        base = os.path.basename(word)
        if base in DHCP_CLIENTS:
            return base
        if base not in INTERPRETERS:
            return None
    return None


def client_interface(argv):
    program = client_program(argv)
    if program is None:
        return None
    start = 2 if os.path.basename(argv[0]) in INTERPRETERS else 1
    words = argv[start:]
    if program == 'udhcpc':
        for index, word in enumerate(words[:-1]):
            if word in ('-i', '--interface'):
                return words[index + 1]
        return None
    if not words or words[-1].startswith('-'):
        return None
    if len(words) > 1 and words[-2] in DHCLIENT_VALUE_OPTIONS:
        return None
    return words[-1]


def read_cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            raw = handle.read()
    except (OSError, ValueError):
        return []
    return [word.decode('utf-8', 'surrogateescape') for word in raw.split(b'\0')[:-1]]


def netns_of(pid):
    try:
        stat = os.stat('/proc/%s/ns/net' % pid)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def ours(pid, dev):
    """A DHCP client of `dev` in this network namespace (another namespace's br0 is not ours)."""
    own = netns_of('self')
    return (client_interface(read_cmdline(pid)) == dev and own is not None
            and netns_of(pid) == own)


def clients_on(dev):
    return [int(entry) for entry in os.listdir('/proc') if entry.isdigit() and ours(int(entry), dev)]


class Rollback:
    def __init__(self, folder):
        self.folder = folder
        with open(os.path.join(folder, 'plan.json')) as handle:
            self.plan = json.load(handle)
        self.ip = self.plan.get('ip', 'ip')

    def path(self, name):
        return os.path.join(self.folder, name)

    # ------------------------------------------------ the decision
    def decide(self, what):
        """Create the decision file; the decision that was there first."""
        try:
            fd = os.open(self.path('decision'), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            with open(self.path('decision')) as handle:
                return handle.read().strip()
        with os.fdopen(fd, 'w') as handle:
            handle.write(what + '\n')
        return what

    def lock(self):
        path = self.plan.get('lock')
        if not path:
            return None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return None
        waited = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > waited:
                    sys.stderr.write('tuntap-qemu-rollback: host lock %s not taken (%s); '
                                     'rolling back anyway\n' % (path, exc))
                    return None
            time.sleep(0.1)

    # ------------------------------------------------ steps
    def run_ip(self, argv, tolerate=()):
        env = dict(os.environ, LC_ALL='C')
        proc = subprocess.run([self.ip] + list(argv), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env, universal_newlines=True)
        error = (proc.stderr or '').strip()
        if proc.returncode == 0:
            return 'ok', ' '.join(argv)
        if any(text in error for text in tolerate):
            return 'done already', error
        return 'failed', '%s: %s' % (' '.join(argv), error or 'exit status %d' % proc.returncode)

    def global_addresses(self, dev):
        env = dict(os.environ, LC_ALL='C')
        proc = subprocess.run([self.ip, '-json', 'address', 'show', 'dev', dev],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                              universal_newlines=True)
        if proc.returncode != 0:
            return None
        found = []
        for link in json.loads(proc.stdout or '[]'):
            for info in link.get('addr_info', []):
                if info.get('family') in ('inet', 'inet6') and info.get('scope') == 'global':
                    found.append('%s/%s' % (info['local'], info['prefixlen']))
        return found

    def step_addresses(self, step):
        dev = step['dev']
        have = self.global_addresses(dev)
        if have is None:
            if 'Cannot find device' in step.get('tolerate', []):
                return 'done already', '%s does not exist' % dev
            return 'failed', 'device %s does not exist' % dev
        elapsed = max(0, int(time.time() - self.plan.get('taken_at', time.time())))
        details = []
        failed = False
        for entry in step['addresses']:
            argv = ['address', 'replace', entry['address'], 'dev', dev]
            if ':' in entry['address']:
                argv.append('nodad')
            else:
                argv += ['broadcast', '+']
            if entry.get('valid_lft') is not None:
                argv += ['valid_lft', str(max(1, entry['valid_lft'] - elapsed)),
                         'preferred_lft', str(max(0, (entry.get('preferred_lft') or 0) - elapsed))]
            result, detail = self.run_ip(argv)
            failed = failed or result == 'failed'
            details.append(detail)
        if step.get('exact'):
            wanted = set(entry['address'] for entry in step['addresses'])
            for address in have:
                if address not in wanted:
                    result, detail = self.run_ip(['address', 'delete', address, 'dev', dev],
                                                 ['Cannot assign requested address'])
                    failed = failed or result == 'failed'
                    details.append(detail)
        return ('failed' if failed else 'ok'), '; '.join(details) or 'nothing to do'

    def step_dhcp_stop(self, step):
        stopped = []
        pids = {}
        for pidfile in step['pidfiles']:
            try:
                with open(pidfile) as handle:
                    pids.setdefault(int(handle.read().split()[0]), pidfile)
            except (OSError, ValueError, IndexError):
                continue
        # And a client without its pidfile yet (dhclient writes it once it runs in the
        # background): found by its command line, in this network namespace.
        for pid in clients_on(step['dev']):
            pids.setdefault(pid, None)
        for pid, pidfile in sorted(pids.items()):
            if not ours(pid, step['dev']):
                continue  # not a DHCP client of this interface here (a stale pidfile)
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            end = time.monotonic() + 5
            while read_cmdline(pid) and time.monotonic() < end:
                time.sleep(0.05)
            if read_cmdline(pid):
                os.kill(pid, signal.SIGKILL)
            if pidfile:
                try:
                    os.unlink(pidfile)
                except OSError:
                    pass
            stopped.append('%d (%s)' % (pid, pidfile or 'no pidfile'))
        if not stopped:
            return 'done already', 'no DHCP client on %s' % step['dev']
        return 'ok', 'stopped ' + ', '.join(stopped)

    def step_dhcp_start(self, step):
        running = clients_on(step['dev'])
        if running:
            return 'done already', 'running: pid %s' % ', '.join(str(pid) for pid in running)
        with open(os.devnull, 'r+b') as null:
            child = subprocess.Popen(step['argv'], stdin=null, stdout=null, stderr=null,
                                     close_fds=True, start_new_session=True)
        return 'ok', 'started pid %d: %s' % (child.pid, ' '.join(step['argv']))

    def step_file_write(self, step):
        path = step['path']
        with open(self.path(step['saved']), 'rb') as handle:
            content = handle.read()
        directory = os.path.dirname(path) or '.'
        os.makedirs(directory, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix='.tuntap-rollback-', dir=directory)
        try:
            with os.fdopen(fd, 'wb') as handle:
                handle.write(content)
                handle.flush()
                os.fchmod(handle.fileno(), step['mode'])
                os.fchown(handle.fileno(), step['uid'], step['gid'])
                os.fsync(handle.fileno())
            os.rename(temp, path)
        finally:
            if os.path.exists(temp):
                os.unlink(temp)
        return 'ok', '%d bytes' % len(content)

    def step_file_remove(self, step):
        try:
            os.unlink(step['path'])
        except FileNotFoundError:
            return 'done already', 'absent'
        return 'ok', 'removed'

    def step_ip(self, step):
        return self.run_ip(step['argv'], step.get('tolerate', []))

    def step_solicit(self, step):
        # One IPv6 router solicitation (as the collection's _links/router_solicit.py): the
        # router answers, the kernel makes the link's SLAAC addresses and RA routes again.
        dev = step['dev']
        try:
            index = socket.if_nametoindex(dev)
        except OSError:
            return 'done already', '%s does not exist' % dev
        data = struct.pack('!BBHI', 133, 0, 0, 0)
        try:
            with open('/sys/class/net/%s/address' % dev) as handle:
                mac = handle.read().strip()
            if len(mac) == 17:
                data += struct.pack('!BB', 1, 1) + bytes.fromhex(mac.replace(':', ''))
        except (OSError, ValueError):
            pass
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
            end = time.monotonic() + SOLICIT_WAIT
            while True:
                try:
                    sock.sendto(data, ('ff02::2', 0, 0, index))
                    return 'ok', 'router solicitation sent from %s' % dev
                except OSError as exc:
                    if exc.errno not in (errno.EADDRNOTAVAIL, errno.ENETDOWN, errno.ENETUNREACH):
                        raise
                    if time.monotonic() >= end:
                        return 'done already', ('%s cannot send yet (%s); the router advertises '
                                                'again by itself' % (dev, exc.strerror))
                time.sleep(0.1)
        finally:
            sock.close()

    def run(self):
        started = time.time()
        lock = self.lock()
        results = []
        try:
            for step in self.plan['steps']:
                try:
                    result, detail = getattr(self, 'step_' + step['kind'])(step)
                except Exception as exc:  # one broken step must not stop the others
                    result, detail = 'failed', '%s: %s' % (type(exc).__name__, exc)
                results.append({'text': step['text'], 'kind': step['kind'], 'result': result,
                                'detail': detail})
        finally:
            if lock is not None:
                os.close(lock)
        failed = [entry for entry in results if entry['result'] == 'failed']
        report = {
            'id': self.plan['id'],
            'rolled_back': True,
            'at': started,
            'when': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(started)),
            'reason': 'not confirmed within %d s' % self.plan['timeout'],
            'armed_at': self.plan.get('armed_at'),
            'ok': not failed,
            'steps': results,
        }
        report['summary'] = ('tuntap-qemu-rollback %s: %s; rolled back at %s, %d steps, %d failed%s'
                             % (report['id'], report['reason'], report['when'], len(results),
                                len(failed), ''.join('; FAILED: %s (%s)' % (e['text'], e['detail'])
                                                     for e in failed)))
        fd, temp = tempfile.mkstemp(prefix='.report-', dir=self.folder)
        with os.fdopen(fd, 'w') as handle:
            json.dump(report, handle, indent=1, sort_keys=True)
        os.rename(temp, self.path('report.json'))
        sys.stderr.write(report['summary'] + '\n')
        if os.environ.get('INVOCATION_ID'):
            # Run by its systemd timer, on a real host: the kernel log (and so the console)
            # says it too, for whoever is at the console of a host that went away.
            kernel_log('tuntap-qemu: rolled back the uplink change %s (%s); %d steps, %d failed'
                       % (report['id'], report['reason'], len(results), len(failed)))
        return 0 if not failed else 1


def kernel_log(line):
    """One line in the kernel log at level err (shown on the console even with `quiet`)."""
    try:
        with open('/dev/kmsg', 'w') as handle:
            handle.write('<3>%s\n' % line)
    except OSError:
        pass


def detach(rollback):
    """The second fork of the sleeper: the parent writes the child's pid and returns."""
    pid = os.fork()
    if pid:
        temp = rollback.path('.helper.pid')
        with open(temp, 'w') as handle:
            handle.write('%d\n' % pid)
        os.rename(temp, rollback.path('helper.pid'))
        os._exit(0)
    while True:
        remaining = rollback.plan['deadline'] - time.time()
        if remaining <= 0:
            break
        time.sleep(min(remaining, 1.0))


def main(argv):
    if len(argv) < 2 or argv[2:] not in ([], ['--detach']):
        sys.stderr.write(__doc__ + '\nusage: %s FOLDER [--detach]\n' % argv[0])
        return 2
    rollback = Rollback(argv[1])
    if argv[2:] == ['--detach']:
        detach(rollback)
    if rollback.decide('rollback') != 'rollback':
        sys.stderr.write('tuntap-qemu-rollback %s: confirmed, nothing to do\n' % rollback.plan['id'])
        return 0
    return rollback.run()


if __name__ == '__main__':
    sys.exit(main(sys.argv))
'''


def render_helper(python='/usr/bin/python3'):
    """The helper script with its interpreter line."""
    return HELPER_SCRIPT.replace('@PYTHON@', python, 1)
