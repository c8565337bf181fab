# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rtnl_snapshot.read_snapshot() against pyroute2_reader.read_snapshot_pyroute2(IPRoute()) (the
pyroute2 reference reader beside this file) on the running kernel.

Run by runme.sh inside the test namespace (`ip netns exec NS PYTHON compare_snapshots.py
EXPECTED.json`). Exits 1 with a diff when the two snapshots differ, or when the namespace
does not hold the links and values runme.sh created (so that an empty or half-built
namespace cannot pass). Reads only; changes nothing.

The collection is imported from the ansible_collections folder this file sits in (the
layout ansible-test runs targets from) or the working directory (logical path) sits in,
else from ANSIBLE_COLLECTIONS_PATH.
"""

from __future__ import annotations

import json
import os
import sys
import time


def collections_root():
    # PWD keeps the logical path when the collection folder is a symlink to a checkout.
    for path in (os.path.dirname(os.path.abspath(__file__)), os.environ.get('PWD', '')):
        while path and os.path.dirname(path) != path:
            if os.path.basename(path) == 'ansible_collections':
                return os.path.dirname(path)
            path = os.path.dirname(path)
    for root in os.environ.get('ANSIBLE_COLLECTIONS_PATH', '').split(os.pathsep):
        if root and os.path.isdir(os.path.join(root, 'ansible_collections', 'tuntap', 'qemu')):
            return root
    sys.exit('compare_snapshots: no ansible_collections/tuntap/qemu above %s or on '
             'ANSIBLE_COLLECTIONS_PATH' % __file__)


sys.path.insert(0, collections_root())

# pylint: disable=wrong-import-position
from pyroute2 import IPRoute  # noqa: E402

import pyroute2_reader  # noqa: E402  (beside this file)

from ansible_collections.tuntap.qemu.plugins.module_utils._links import rtnl_snapshot  # noqa: E402


def pyroute2_version():
    try:
        from importlib.metadata import version
        return version('pyroute2')
    except Exception:  # pylint: disable=broad-except
        return 'unknown'


def differences(expected, actual):
    """Lines naming every link and field where the snapshots differ."""
    lines = []
    for name in sorted(set(expected) | set(actual), key=str):
        if name not in actual:
            lines.append('%s: only in pyroute2_reader: %r' % (name, expected[name]))
        elif name not in expected:
            lines.append('%s: only in rtnl_snapshot.read_snapshot: %r' % (name, actual[name]))
        else:
            for field in sorted(set(expected[name]) | set(actual[name])):
                want = expected[name].get(field, '<missing>')
                have = actual[name].get(field, '<missing>')
                if want != have or type(want) is not type(have):
                    lines.append('%s.%s: links %r (%s), rtnl_snapshot %r (%s)'
                                 % (name, field, want, type(want).__name__,
                                    have, type(have).__name__))
    return lines


def _derived(record, field):
    """A record's field, or one of the views of `autoconf` runme.sh checks (the temporary
    address the kernel makes is random): autoconf_kinds (the kinds, sorted), autoconf_slaac
    (the addresses of kind slaac, sorted)."""
    autoconf = record.get('autoconf') or {}
    if field == 'autoconf_kinds':
        return sorted(autoconf.values())
    if field == 'autoconf_slaac':
        return sorted(address for address, kind in autoconf.items() if kind == 'slaac')
    return record.get(field)


def unmet_expectations(snapshot, expected_fields):
    """The fields runme.sh set that the snapshot does not show."""
    lines = []
    for name, fields in sorted(expected_fields.items()):
        record = snapshot.get(name)
        if record is None:
            lines.append('%s: missing from the namespace' % name)
            continue
        for field, value in sorted(fields.items()):
            if _derived(record, field) != value:
                lines.append('%s.%s: expected %r, read %r' % (name, field, value, _derived(record, field)))
    return lines


def stable_snapshots(attempts=20, pause=0.5):
    """(pyroute2_reader.read_snapshot_pyroute2, rtnl_snapshot.read_snapshot) read while nothing changed.

    Operational states settle a moment after a link goes up (and a bridge with STP moves
    its ports through listening and learning): read pyroute2's snapshot before and after
    ours, and start again until both agree.
    """
    ipr = IPRoute()
    try:
        for _attempt in range(attempts):
            before = pyroute2_reader.read_snapshot_pyroute2(ipr)
            snapshot = rtnl_snapshot.read_snapshot()
            if pyroute2_reader.read_snapshot_pyroute2(ipr) == before:
                return before, snapshot
            time.sleep(pause)
    finally:
        ipr.close()
    sys.exit('compare_snapshots: the links kept changing for %.0f s' % (attempts * pause))


def main():
    with open(sys.argv[1]) as handle:
        expected_fields = json.load(handle)
    reference, snapshot = stable_snapshots()
    label = 'Python %s, pyroute2 %s' % (sys.version.split()[0], pyroute2_version())

    problems = differences(reference, snapshot)
    if problems:
        print('compare_snapshots (%s): the snapshots differ:' % label)
    else:
        problems = unmet_expectations(snapshot, expected_fields)
        if problems:
            print('compare_snapshots (%s): equal, but not what runme.sh built:' % label)
    for line in problems:
        print('  ' + line)
    if problems:
        return 1
    print('compare_snapshots (%s): %d links equal: %s' % (label, len(snapshot), ', '.join(sorted(snapshot))))
    return 0


if __name__ == '__main__':
    sys.exit(main())
