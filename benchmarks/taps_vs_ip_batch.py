# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""N taps owned by a user in bridge br0: tuntap.qemu's modules against one `ip -batch` file.

    python3 benchmarks/taps_vs_ip_batch.py [--sizes 16,128,512] [--python PY] [--profile]

For every N and every repetition, each approach gets its own fresh network namespace,
named ttq-bench-<pid>-<approach>-<N>-<repetition>:

  ours      ansible-playbook runs tuntap.qemu.bridge_port (br0) then tuntap.qemu.tap_device
            (names tap0..tapN-1, user, bridge br0) inside the namespace, through the
            tuntap.qemu.netns connection (or `ip netns exec NS ansible-playbook -c local`
            when plugins/connection/netns.py is missing); then the same playbook again,
            which must report changed=false for both tasks.
  floor     one `ip -batch` file creates the same state; the no-change floor is one
            `ip -j link show` plus one `ip -j addr show`.
  in-proc   benchmarks/converge_in_process.py: the module_utils specs/read/plan/apply
            path without Ansible, first converge and no-change converge.

  starts    at the largest N, in one namespace: the no-change playbook against one with two
            ansible.builtin.ping tasks, alternated, --starts runs each (default 5): what our
            two modules cost beyond two trivial module tasks (issue 9: at most +0.3 s).

Both approaches must leave the same links behind (checked with `ip -d -j link show`).
A namespace is deleted as soon as its measurements are done, followed by a pause for
the kernel's asynchronous cleanup, so no measurement shares the kernel with thousands of
leftover taps. Every command that touches links runs through `ip netns exec NS`; the
root namespace is never changed. Whatever namespace is left is deleted at the end, also
after a failure or Ctrl-C. Prints a table of medians and writes every sample to
benchmarks/results/latest.json. Needs root.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
RESULTS_FILE = os.path.join(BENCH_DIR, 'results', 'latest.json')
NETNS_CONNECTION = os.path.join(REPO_ROOT, 'plugins', 'connection', 'netns.py')
IN_PROCESS_SCRIPT = os.path.join(BENCH_DIR, 'converge_in_process.py')
CALLBACK_DIR = os.path.join(BENCH_DIR, 'callback_plugins')
BRIDGE = 'br0'
COMMAND_ENV = dict(os.environ, LC_ALL='C')

# ansible_python_interpreter for the playbook runs: it starts the real interpreter and
# appends "start end" (seconds since the epoch) of each module process to a log.
INTERPRETER_WRAPPER = '''#!/bin/bash
start=$EPOCHREALTIME
%(python)s "$@"
rc=$?
printf '%%s %%s\\n' "$start" "$EPOCHREALTIME" >> %(log)s
exit $rc
'''


class BenchmarkError(Exception):
    """A step failed or did not do what it should; the message says which."""


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='16,128,512',
                        help='comma-separated numbers of taps (default: %(default)s)')
    parser.add_argument('--python', default=sys.executable,
                        help='interpreter of the modules and of the in-process run, inside the '
                             'namespace; needs pyroute2 and netaddr (default: this Python)')
    parser.add_argument('--ansible-playbook', dest='ansible_playbook',
                        help='ansible-playbook to run (default: the one beside this Python, '
                             'else the first on PATH)')
    parser.add_argument('--user', default='nobody', help='owner of the taps (default: %(default)s)')
    parser.add_argument('--repeat', type=int, default=3,
                        help='repetitions per size, each in fresh namespaces; the tables show '
                             'medians (default: %(default)s)')
    parser.add_argument('--settle', type=float, default=1.0,
                        help='seconds to wait after deleting a namespace, for the kernel to '
                             'finish removing its links (default: %(default)s)')
    parser.add_argument('--no-pipelining', dest='pipelining', action='store_false',
                        help='run the playbooks with ANSIBLE_PIPELINING=False')
    parser.add_argument('--profile', action='store_true',
                        help='also profile the in-process path with cProfile (an extra namespace '
                             'per size); summaries go to benchmarks/results/profile-N-*.txt')
    parser.add_argument('--starts', type=int, default=5, metavar='K',
                        help='runs of each playbook in the module-start comparison at the largest '
                             'size (no-change bridge_port + tap_device against two '
                             'ansible.builtin.ping tasks; default: %(default)s, 0 skips it)')
    parser.add_argument('--output', default=RESULTS_FILE, help='JSON results (default: %(default)s)')
    options = parser.parse_args(argv)
    try:
        options.sizes = [int(size) for size in options.sizes.split(',') if size.strip()]
    except ValueError:
        parser.error('--sizes: %r is not a comma-separated list of numbers' % options.sizes)
    if not options.sizes or any(size < 1 or size > 4096 for size in options.sizes):
        parser.error('--sizes: every size must be 1-4096')
    if options.repeat < 1:
        parser.error('--repeat must be at least 1')
    if options.settle < 0:
        parser.error('--settle must not be negative')
    if options.starts < 0:
        parser.error('--starts must not be negative')
    return options


# ---------------------------------------------------------------- commands

def run(argv, what, **kwargs):
    """Run argv (a list, no shell); return its stdout. Raise BenchmarkError on failure."""
    kwargs.setdefault('env', COMMAND_ENV)
    process = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, check=False, **kwargs)
    if process.returncode != 0:
        raise BenchmarkError('%s failed (exit %d): %s\n%s'
                             % (what, process.returncode, ' '.join(argv), process.stderr.strip()[-2000:]))
    return process.stdout


def timed(argv, what, **kwargs):
    """Run argv; return (wall seconds, stdout)."""
    start = time.perf_counter()
    stdout = run(argv, what, **kwargs)
    return time.perf_counter() - start, stdout


def seconds(argv, what):
    """Run argv; return its wall seconds (the output is read and dropped)."""
    return timed(argv, what)[0]


class Namespaces:
    """Network namespaces named PREFIX<label>; fresh() deletes each after use, delete_all() the rest."""

    def __init__(self, prefix, settle):
        self.prefix = prefix
        self.settle = settle
        self.names = []

    @contextlib.contextmanager
    def fresh(self, label):
        """A new namespace for the with-block; deleted afterwards, then a pause to settle."""
        name = self.prefix + label
        run(['ip', 'netns', 'add', name], 'creating namespace %s' % name)  # fails if it exists
        self.names.append(name)
        yield name
        self.names.remove(name)
        self._delete(name)
        time.sleep(self.settle)

    def _delete(self, name):
        if not name.startswith(self.prefix):  # never delete a namespace we did not make
            return 'not ours'
        process = subprocess.run(['ip', 'netns', 'delete', name], env=COMMAND_ENV, check=False,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        return process.stderr.strip() if process.returncode != 0 else None

    @staticmethod
    def inside(name, argv):
        """argv run inside namespace `name`."""
        return ['ip', 'netns', 'exec', name] + list(argv)

    def delete_all(self):
        """Delete every namespace still there; return the failures."""
        failures = []
        while self.names:
            name = self.names.pop()
            error = self._delete(name)
            if error:
                failures.append('%s: %s' % (name, error))
        return failures


def link_view(namespace):
    """The state both approaches must create, read with `ip -d -j link show`."""
    links = json.loads(run(Namespaces.inside(namespace, ['ip', '-d', '-j', 'link', 'show']),
                           'reading links of %s' % namespace))
    view = {}
    for link in links:
        info = link.get('linkinfo', {})
        if info.get('info_kind') not in ('tun', 'bridge'):
            continue
        data = info.get('info_data', {})
        view[link['ifname']] = {
            'kind': info['info_kind'],
            'type': data.get('type'),
            'user': data.get('user'),
            'persist': data.get('persist'),
            'master': link.get('master'),
            'up': 'UP' in link.get('flags', []),
        }
    return view


def expected_view(count, user):
    view = {BRIDGE: {'kind': 'bridge', 'type': None, 'user': None, 'persist': None,
                     'master': None, 'up': True}}
    for index in range(count):
        view['tap%d' % index] = {'kind': 'tun', 'type': 'tap', 'user': user, 'persist': True,
                                 'master': BRIDGE, 'up': True}
    return view


def check_view(namespace, count, user, who):
    view = link_view(namespace)
    expected = expected_view(count, user)
    if view != expected:
        wrong = sorted(name for name in set(view) | set(expected) if view.get(name) != expected.get(name))
        raise BenchmarkError('%s left the wrong state in %s; differs at %s: got %r, expected %r'
                             % (who, namespace, ', '.join(wrong[:5]), view.get(wrong[0]), expected.get(wrong[0])))


# ---------------------------------------------------------------- the floor: ip -batch

def batch_file(count, user):
    lines = ['link add %s type bridge' % BRIDGE, 'link set %s up' % BRIDGE]
    for index in range(count):
        lines.append('tuntap add dev tap%d mode tap user %s' % (index, user))
        lines.append('link set tap%d master %s up' % (index, BRIDGE))
    return '\n'.join(lines) + '\n'


def measure_floor(namespaces, workdir, count, repetition, options):
    """One repetition of the floor: the batch file, then the read."""
    path = os.path.join(workdir, 'floor-%d.batch' % count)
    if not os.path.exists(path):
        with open(path, 'w') as batch:
            batch.write(batch_file(count, options.user))
    with namespaces.fresh('floor-%d-%d' % (count, repetition)) as namespace:
        first = seconds(Namespaces.inside(namespace, ['ip', '-batch', path]), 'ip -batch (%d taps)' % count)
        check_view(namespace, count, options.user, 'ip -batch')
        link_seconds = seconds(Namespaces.inside(namespace, ['ip', '-j', 'link', 'show']), 'ip -j link show')
        addr_seconds = seconds(Namespaces.inside(namespace, ['ip', '-j', 'addr', 'show']), 'ip -j addr show')
    return {'first': first, 'no_change_read': link_seconds + addr_seconds}


# ---------------------------------------------------------------- ours: ansible-playbook

class PlaybookRunner:
    """Runs the benchmark playbook against one namespace and collects its timings."""

    def __init__(self, workdir, options):
        self.workdir = workdir
        self.options = options
        self.use_netns_connection = os.path.exists(NETNS_CONNECTION)
        self.ansible_playbook = options.ansible_playbook or _find_ansible_playbook()
        collections = os.path.join(workdir, 'collections')
        os.makedirs(os.path.join(collections, 'ansible_collections', 'tuntap'))
        os.symlink(REPO_ROOT, os.path.join(collections, 'ansible_collections', 'tuntap', 'qemu'))
        self.collections = collections
        self.process_log = os.path.join(workdir, 'module-processes.log')
        self.interpreter = os.path.join(workdir, 'timed-python')
        with open(self.interpreter, 'w') as wrapper:
            wrapper.write(INTERPRETER_WRAPPER % {'python': _shell_quote(options.python),
                                                 'log': _shell_quote(self.process_log)})
        os.chmod(self.interpreter, 0o755)
        config = os.path.join(workdir, 'ansible.cfg')
        open(config, 'w').close()  # an empty config: no ansible.cfg from elsewhere applies
        self.env = dict(
            os.environ,
            LC_ALL='C.UTF-8',  # ansible-core refuses a non-UTF-8 locale
            ANSIBLE_CONFIG=config,
            ANSIBLE_COLLECTIONS_PATH=collections,
            ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='False',
            ANSIBLE_CALLBACK_PLUGINS=CALLBACK_DIR,
            ANSIBLE_CALLBACKS_ENABLED='bench_task_times',
            ANSIBLE_PIPELINING=str(options.pipelining),
            ANSIBLE_LOCAL_TEMP=os.path.join(workdir, 'ansible-local'),
            ANSIBLE_REMOTE_TEMP=os.path.join(workdir, 'ansible-remote'),
            ANSIBLE_RETRY_FILES_ENABLED='False',
            ANSIBLE_NOCOLOR='True',
        )

    def write_playbook(self, namespace, count):
        connection = 'tuntap.qemu.netns' if self.use_netns_connection else 'local'
        inventory = os.path.join(self.workdir, 'inventory-%s.ini' % namespace)
        with open(inventory, 'w') as output:
            output.write('%s ansible_connection=%s ansible_host=%s ansible_python_interpreter=%s\n'
                         % (namespace, connection, namespace, self.interpreter))
        # JSON is YAML: no YAML library needed here.
        bridge_task = {'name': 'Bridge %s' % BRIDGE, 'tuntap.qemu.bridge_port': {'name': BRIDGE}}
        tap_task = {
            'name': '%d taps owned by %s in %s' % (count, self.options.user, BRIDGE),
            'tuntap.qemu.tap_device': {
                'names': ['tap%d' % index for index in range(count)],
                'user': self.options.user,
                'bridge': BRIDGE,
            },
        }
        playbook = [{'name': 'Bridge and %d taps' % count, 'hosts': namespace, 'gather_facts': False,
                     'tasks': [bridge_task, tap_task]}]
        path = os.path.join(self.workdir, 'playbook-%s.yml' % namespace)
        with open(path, 'w') as output:
            json.dump(playbook, output, indent=1)
        return inventory, path

    def write_ping_playbook(self, namespace):
        """Two trivial module tasks (ansible.builtin.ping) against the same host: the fixed
        cost of two module tasks, which the module-start comparison subtracts."""
        playbook = [{'name': 'Two trivial module tasks', 'hosts': namespace, 'gather_facts': False,
                     'tasks': [{'name': 'Ping %d' % index, 'ansible.builtin.ping': {}}
                               for index in (1, 2)]}]
        path = os.path.join(self.workdir, 'playbook-%s-ping.yml' % namespace)
        with open(path, 'w') as output:
            json.dump(playbook, output, indent=1)
        return path

    def run(self, namespace, inventory, playbook, label, expect_changed,
            actions_expected=('tuntap.qemu.bridge_port', 'tuntap.qemu.tap_device')):
        """One ansible-playbook run: wall, per-task and module-process seconds."""
        task_file = os.path.join(self.workdir, 'tasks-%s-%s.json' % (namespace, label))
        log_file = os.path.join(self.workdir, 'ansible-%s-%s.log' % (namespace, label))
        open(self.process_log, 'w').close()
        argv = [self.ansible_playbook, '-i', inventory, playbook]
        if not self.use_netns_connection:
            argv = Namespaces.inside(namespace, argv)
        env = dict(self.env, TTQ_BENCH_TASK_TIMES=task_file)
        with open(log_file, 'w') as log:
            start = time.perf_counter()
            returncode = _run_process_group(argv, env=env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
            wall = time.perf_counter() - start
        with open(log_file) as log:
            output = log.read()
        if returncode != 0:
            raise BenchmarkError('ansible-playbook (%s, %s) failed with exit %d:\n%s'
                                 % (namespace, label, returncode, output[-4000:]))
        with open(task_file) as tasks_json:
            tasks = json.load(tasks_json)
        actions = [task['action'] for task in tasks]
        if actions != list(actions_expected) or any(task['status'] != 'ok' for task in tasks):
            raise BenchmarkError('ansible-playbook (%s, %s) did not run both tasks successfully: %r'
                                 % (namespace, label, tasks))
        wrong = [task['action'] for task in tasks if task['changed'] != expect_changed]
        if wrong:
            raise BenchmarkError('ansible-playbook (%s, %s): %s reported changed=%s, expected %s'
                                 % (namespace, label, ', '.join(wrong), not expect_changed, expect_changed))
        processes = _module_processes(self.process_log)
        return {
            'playbook_wall': wall,
            'tasks': dict((task['action'].split('.')[-1], task['seconds']) for task in tasks),
            'task_total': sum(task['seconds'] for task in tasks),
            'module_processes': processes,
            'module_process_total': sum(processes),
        }


def _run_process_group(argv, **kwargs):
    """Run argv in its own process group; return its exit code.

    When the benchmark is interrupted, ansible-playbook gets SIGTERM, which it passes on
    to its workers (each in a session of its own) and they to the module processes, so
    nothing keeps running in a namespace that is about to be deleted. SIGKILL for the
    group after 10 seconds.
    """
    process = subprocess.Popen(argv, start_new_session=True, **kwargs)
    try:
        return process.wait()
    except BaseException:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        raise


def _find_ansible_playbook():
    beside = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    found = beside if os.access(beside, os.X_OK) else shutil.which('ansible-playbook')
    if not found:
        raise BenchmarkError('ansible-playbook not found; install ansible-core or pass --ansible-playbook')
    return found


def _shell_quote(text):
    return "'%s'" % text.replace("'", "'\\''")


def _module_processes(path):
    with open(path) as log:
        spans = [line.replace(',', '.').split() for line in log if line.strip()]
    return [float(end) - float(start) for start, end in spans]


def measure_ours(namespaces, runner, count, repetition, options):
    """One repetition of ours: the playbook on a fresh namespace, then once more."""
    with namespaces.fresh('ours-%d-%d' % (count, repetition)) as namespace:
        inventory, playbook = runner.write_playbook(namespace, count)
        first = runner.run(namespace, inventory, playbook, 'first', expect_changed=True)
        check_view(namespace, count, options.user, 'tuntap.qemu modules')
        again = runner.run(namespace, inventory, playbook, 'no-change', expect_changed=False)
    return {'first': first, 'no_change': again}


def measure_starts(namespaces, runner, count, options):
    """The module-start comparison (issue 9): in one namespace with br0 and `count` taps, the
    no-change bridge_port + tap_device playbook against two ansible.builtin.ping tasks,
    alternated, options.starts runs of each; medians and their difference."""
    with namespaces.fresh('starts-%d' % count) as namespace:
        inventory, playbook = runner.write_playbook(namespace, count)
        ping = runner.write_ping_playbook(namespace)
        runner.run(namespace, inventory, playbook, 'starts-first', expect_changed=True)
        ours, trivial = [], []
        for index in range(options.starts):
            ours.append(runner.run(namespace, inventory, playbook, 'starts-%d' % index,
                                   expect_changed=False))
            trivial.append(runner.run(namespace, inventory, ping, 'ping-%d' % index,
                                      expect_changed=False,
                                      actions_expected=('ansible.builtin.ping', 'ansible.builtin.ping')))
    result = {'n': count, 'runs': options.starts}
    for key in ('playbook_wall', 'task_total', 'module_process_total'):
        result[key] = {'ours': statistics.median(sample[key] for sample in ours),
                       'ping': statistics.median(sample[key] for sample in trivial)}
        result[key]['more'] = result[key]['ours'] - result[key]['ping']
    result['samples'] = {'ours': ours, 'ping': trivial}
    return result


# ---------------------------------------------------------------- in-process module_utils

def measure_in_process(namespaces, runner, count, label, options, profile_prefix=None):
    """The in-process converge (first and no-change) in a fresh namespace."""
    argv = [options.python, IN_PROCESS_SCRIPT, '--collections', runner.collections,
            '--count', str(count), '--user', options.user, '--bridge', BRIDGE]
    if profile_prefix:
        argv += ['--profile', profile_prefix]
    with namespaces.fresh(label) as namespace:
        wall, stdout = timed(Namespaces.inside(namespace, argv), 'in-process converge (%d taps)' % count)
        check_view(namespace, count, options.user, 'in-process converge')
    result = json.loads(stdout)
    result['process_wall'] = wall
    return result


def median_of(samples):
    """Median of each number in a list of equally shaped dicts (strings, flags and lists are left out)."""
    first = samples[0]
    if not isinstance(first, dict):
        return statistics.median(samples)
    medians = {}
    for key, value in first.items():
        if isinstance(value, dict) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            median = median_of([sample[key] for sample in samples])
            if median != {}:
                medians[key] = median
    return medians


# ---------------------------------------------------------------- report

def machine_facts(runner):
    model = 'unknown'
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            for line in cpuinfo:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        'cpus': os.cpu_count(),
        'cpu_model': model,
        'kernel': platform.release(),
        'iproute2': run(['ip', '-V'], 'ip -V').strip(),
        'ansible': run([runner.ansible_playbook, '--version'], 'ansible-playbook --version',
                       env=runner.env).splitlines()[0],
        'controller_python': platform.python_version(),
    }


def ratio(ours, floor):
    return ours / floor if floor else None


def print_tables(results, repeat):
    head = ('N', 'ours first', 'floor first', 'ratio', 'ours no-change', 'floor read', 'ratio')
    rows = []
    for item in results:
        rows.append(('%d' % item['n'],
                     '%.3f s' % item['ours']['first']['task_total'],
                     '%.3f s' % item['floor']['first'],
                     '%.1fx' % item['ratio']['first'],
                     '%.3f s' % item['ours']['no_change']['task_total'],
                     '%.3f s' % item['floor']['no_change_read'],
                     '%.1fx' % item['ratio']['no_change']))
    _print_table('Converge time, median of %d: ours = task time of bridge_port + tap_device; '
                 'floor = ip -batch / ip -j link show + ip -j addr show' % repeat, head, rows)

    head = ('N', 'run', 'playbook wall', 'task time', 'module process', 'in-process', 'in-proc/floor')
    rows = []
    for item in results:
        for run_label, key, floor in (('first', 'first', item['floor']['first']),
                                      ('no-change', 'no_change', item['floor']['no_change_read'])):
            ours = item['ours'][key]
            in_process = item['in_process'][key]['seconds']['total']
            rows.append(('%d' % item['n'], run_label, '%.3f s' % ours['playbook_wall'],
                         '%.3f s' % ours['task_total'], '%.3f s' % ours['module_process_total'],
                         '%.3f s' % in_process, '%.1fx' % ratio(in_process, floor)))
    _print_table('Where our time goes', head, rows)


def print_starts(starts):
    """The module-start comparison, beside the tables above."""
    head = ('N', 'measure', 'bridge_port + tap_device (no change)', '2 x ping', 'more')
    rows = []
    for label, key in (('playbook wall', 'playbook_wall'), ('task time', 'task_total'),
                       ('module process', 'module_process_total')):
        item = starts[key]
        rows.append(('%d' % starts['n'], label, '%.3f s' % item['ours'], '%.3f s' % item['ping'],
                     '%+.3f s' % item['more']))
    _print_table('Module starts, median of %d runs each, alternated in one namespace: the no-change '
                 'modules against two trivial module tasks (target: at most +0.3 s)' % starts['runs'],
                 head, rows)


def _print_table(title, head, rows):
    widths = [max(len(cell) for cell in column) for column in zip(head, *rows)]
    print('\n' + title)
    print('  '.join(cell.rjust(width) for cell, width in zip(head, widths)))
    for row in rows:
        print('  '.join(cell.rjust(width) for cell, width in zip(row, widths)))


# ---------------------------------------------------------------- main

def benchmark(options, namespaces, workdir):
    runner = PlaybookRunner(workdir, options)
    report = {
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'machine': machine_facts(runner),
        'settings': {
            'sizes': options.sizes, 'user': options.user, 'repeat': options.repeat, 'settle': options.settle,
            'pipelining': options.pipelining, 'module_python': options.python,
            'connection': 'tuntap.qemu.netns' if runner.use_netns_connection
            else 'ip netns exec NS ansible-playbook -c local',
            'ours_time': 'task time (callback bench_task_times: v2_runner_on_start to the result), '
                         'bridge_port + tap_device',
        },
        'results': [],
    }
    results_dir = os.path.dirname(os.path.abspath(options.output))
    for count in options.sizes:
        floor, ours, in_process = [], [], []
        for repetition in range(options.repeat):
            print('N=%d, repetition %d/%d: ip -batch, ansible-playbook, in-process'
                  % (count, repetition + 1, options.repeat), flush=True)
            floor.append(measure_floor(namespaces, workdir, count, repetition, options))
            ours.append(measure_ours(namespaces, runner, count, repetition, options))
            in_process.append(measure_in_process(namespaces, runner, count,
                                                 'inproc-%d-%d' % (count, repetition), options))
        item = {
            'n': count,
            'ours': dict(median_of(ours), samples=ours),
            'floor': dict(median_of(floor), samples=floor),
            'in_process': dict(median_of(in_process), samples=in_process,
                               python=in_process[0]['python'], pyroute2=in_process[0]['pyroute2']),
        }
        item['ratio'] = {
            'first': ratio(item['ours']['first']['task_total'], item['floor']['first']),
            'no_change': ratio(item['ours']['no_change']['task_total'], item['floor']['no_change_read']),
        }
        if options.profile:
            os.makedirs(results_dir, exist_ok=True)
            prefix = os.path.join(results_dir, 'profile-%d' % count)
            print('N=%d: in-process under cProfile' % count, flush=True)
            measure_in_process(namespaces, runner, count, 'inproc-prof-%d' % count, options,
                               profile_prefix=prefix)
            item['profile'] = ['%s-%s.txt' % (prefix, label) for label in ('first', 'no-change')]
        report['results'].append(item)
    if options.starts:
        count = max(options.sizes)
        print('N=%d: module starts, %d runs of each playbook' % (count, options.starts), flush=True)
        report['starts'] = measure_starts(namespaces, runner, count, options)
    report['machine']['module_python'] = report['results'][0]['in_process']['python']
    report['machine']['pyroute2'] = report['results'][0]['in_process']['pyroute2']
    return report


def _terminate(signum, frame):
    raise SystemExit('interrupted by signal %d' % signum)


def main(argv=None):
    options = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit('taps_vs_ip_batch: run as root (ip netns and tap devices need it)')
    for needed in ('ip', 'bash', options.python):
        if not shutil.which(needed):
            sys.exit('taps_vs_ip_batch: %s is not on PATH or not executable' % needed)
    options.python = os.path.abspath(shutil.which(options.python))
    signal.signal(signal.SIGTERM, _terminate)
    namespaces = Namespaces('ttq-bench-%d-' % os.getpid(), options.settle)
    workdir = tempfile.mkdtemp(prefix='ttq-bench-')
    keep_workdir = False
    try:
        report = benchmark(options, namespaces, workdir)
    except BenchmarkError as exc:
        keep_workdir = True
        sys.exit('taps_vs_ip_batch: %s\n(work files kept in %s)' % (exc, workdir))
    finally:
        failures = namespaces.delete_all()
        if failures:
            print('taps_vs_ip_batch: could not delete: %s' % '; '.join(failures), file=sys.stderr)
        if not keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print_tables(report['results'], options.repeat)
    if report.get('starts'):
        print_starts(report['starts'])
    os.makedirs(os.path.dirname(os.path.abspath(options.output)), exist_ok=True)
    with open(options.output, 'w') as output:
        json.dump(report, output, indent=1)
    print('\n%s, %s cores (%s), kernel %s, Python %s, pyroute2 %s; results in %s'
          % (report['date'], report['machine']['cpus'], report['machine']['cpu_model'],
             report['machine']['kernel'], report['machine']['module_python'],
             report['machine']['pyroute2'], options.output))


if __name__ == '__main__':
    main()
