# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the link snapshot of N taps in a bridge: rtnl_snapshot against pyroute2.

    python3 benchmarks/snapshot_readers.py [--count 512] [--repeat 20] [--python PY ...]

Builds one network namespace ttq-bench-snap-<pid> with bridge br0 and N taps (owned by
nobody, ports of br0, up) through one `ip -batch` file, then, inside it and once per
Python, times

  rtnl      rtnl_snapshot.read_snapshot()      (opens and closes its own socket)
  pyroute2  pyroute2_reader.read_snapshot_pyroute2(ipr)  (the reference reader of
            tests/integration/targets/rtnl_snapshot, on an IPRoute opened beforehand)
  ip -j     `ip -j link show` + `ip -j addr show` (two processes: the floor of
            taps_vs_ip_batch.py)

and checks that both readers return the same snapshot. Prints the medians. The namespace
is deleted at the end, also after a failure; nothing outside it is changed. Needs root.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
COMMAND_ENV = dict(os.environ, LC_ALL='C')
SYSTEM_PYTHON = '/usr/bin/python3'
REFERENCE_DIR = os.path.join(REPO_ROOT, 'tests', 'integration', 'targets', 'rtnl_snapshot')


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=512, help='number of taps (default 512)')
    parser.add_argument('--repeat', type=int, default=20, help='reads per reader (default 20)')
    parser.add_argument('--python', action='append', dest='pythons', metavar='PY',
                        help='interpreter with pyroute2 (repeatable; default: this one and '
                        '%s when it has pyroute2)' % SYSTEM_PYTHON)
    parser.add_argument('--inner', metavar='COLLECTIONS', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def inner(collections, repeat):
    """Runs inside the namespace: time both readers, print one JSON document."""
    sys.path.insert(0, collections)
    start = time.perf_counter()
    from ansible_collections.tuntap.qemu.plugins.module_utils._links import rtnl_snapshot
    import_rtnl = time.perf_counter() - start
    start = time.perf_counter()
    sys.path.insert(0, REFERENCE_DIR)
    import pyroute2_reader
    from ansible_collections.tuntap.qemu.plugins.module_utils._links import netlink
    ipr = netlink.open_netlink()
    import_links = time.perf_counter() - start
    from importlib.metadata import version

    def timed(function, *args):
        samples = []
        for _index in range(repeat):
            start = time.perf_counter()
            value = function(*args)
            samples.append(time.perf_counter() - start)
        return value, samples

    try:
        reference, pyroute2_samples = timed(pyroute2_reader.read_snapshot_pyroute2, ipr)
    finally:
        ipr.close()
    snapshot, rtnl_samples = timed(rtnl_snapshot.read_snapshot)
    json.dump({
        'python': sys.version.split()[0],
        'pyroute2': version('pyroute2'),
        'links': len(snapshot),
        'equal': snapshot == reference,
        'import_rtnl_snapshot': import_rtnl,
        'import_links_pyroute2': import_links,
        'rtnl': rtnl_samples,
        'pyroute2_read': pyroute2_samples,
    }, sys.stdout)


def run(argv, what, **kwargs):
    process = subprocess.run(argv, env=COMMAND_ENV, check=False, capture_output=True, text=True,
                             **kwargs)
    if process.returncode != 0:
        raise RuntimeError('%s failed (exit %d): %s'
                           % (what, process.returncode, process.stderr.strip()))
    return process.stdout


def has_pyroute2(python):
    return subprocess.run([python, '-c', 'import pyroute2'], check=False,
                          capture_output=True).returncode == 0


def build(namespace, count):
    lines = ['link add br0 type bridge', 'link set br0 up']
    for index in range(count):
        lines.append('tuntap add dev tap%d mode tap user nobody' % index)
        lines.append('link set tap%d master br0 up' % index)
    run(['ip', 'netns', 'exec', namespace, 'ip', '-batch', '-'], 'ip -batch',
        input='\n'.join(lines) + '\n')


def floor_samples(namespace, repeat):
    samples = []
    for _index in range(repeat):
        start = time.perf_counter()
        for what in ('link', 'addr'):
            run(['ip', 'netns', 'exec', namespace, 'ip', '-j', what, 'show'], 'ip -j %s show' % what)
        samples.append(time.perf_counter() - start)
    return samples


def milliseconds(samples):
    return '%7.1f ms' % (statistics.median(samples) * 1000)


def main(argv=None):
    options = parse_args(sys.argv[1:] if argv is None else argv)
    if options.inner:
        inner(options.inner, options.repeat)
        return 0
    if os.geteuid() != 0:
        sys.exit('snapshot_readers: run as root (ip netns and tap devices need it)')
    pythons = options.pythons or [sys.executable] + (
        [SYSTEM_PYTHON] if os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON)
        and has_pyroute2(SYSTEM_PYTHON) else [])
    namespace = 'ttq-bench-snap-%d' % os.getpid()
    with tempfile.TemporaryDirectory(prefix='snapshot_readers.') as collections:
        os.makedirs(os.path.join(collections, 'ansible_collections', 'tuntap'))
        os.symlink(REPO_ROOT, os.path.join(collections, 'ansible_collections', 'tuntap', 'qemu'))
        run(['ip', 'netns', 'add', namespace], 'ip netns add')  # fails if it exists
        try:
            build(namespace, options.count)
            floor = floor_samples(namespace, options.repeat)
            print('%d taps in br0, medians of %d reads; ip -j link show + ip -j addr show: %s'
                  % (options.count, options.repeat, milliseconds(floor)))
            print('%-8s %-9s %6s %11s %11s %7s %6s  %s'
                  % ('python', 'pyroute2', 'links', 'rtnl', 'pyroute2', 'ratio', 'equal',
                     'import rtnl_snapshot / reference+pyroute2'))
            failed = False
            for python in pythons:
                result = json.loads(run(['ip', 'netns', 'exec', namespace, python, __file__,
                                         '--inner', collections, '--repeat', str(options.repeat)],
                                        'timing with %s' % python))
                rtnl = statistics.median(result['rtnl'])
                reference = statistics.median(result['pyroute2_read'])
                print('%-8s %-9s %6d %11s %11s %6.1fx %6s  %s / %s' % (
                    result['python'], result['pyroute2'], result['links'],
                    milliseconds(result['rtnl']), milliseconds(result['pyroute2_read']),
                    reference / rtnl, result['equal'],
                    milliseconds([result['import_rtnl_snapshot']]).strip(),
                    milliseconds([result['import_links_pyroute2']]).strip()))
                failed = failed or not result['equal']
        finally:
            subprocess.run(['ip', 'netns', 'delete', namespace], env=COMMAND_ENV, check=False)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
