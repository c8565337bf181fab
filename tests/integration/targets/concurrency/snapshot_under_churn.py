# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The snapshot reader under churn: back-to-back rtnl_snapshot.read_snapshot() for a few
seconds while churn_taps.py creates and deletes taps in the same namespace.

    ip netns exec NS PYTHON snapshot_under_churn.py [SECONDS]

Every snapshot must succeed, and some of their dumps must have been interrupted and read
again (counted through the `sleep` that retry_interrupted() pauses with), so the retry path
ran on the real kernel; with 20 changes a second about one dump in 40 is interrupted. Prints
the counts as JSON; exits 1 when a snapshot failed or no dump was read again. The collection
is imported from the ansible_collections folder above this file or the working directory,
else from ANSIBLE_COLLECTIONS_PATH.
"""

from __future__ import annotations

import json
import os
import sys
import time


def collections_root():
    for path in (os.path.dirname(os.path.abspath(__file__)), os.environ.get('PWD', '')):
        while path and os.path.dirname(path) != path:
            if os.path.basename(path) == 'ansible_collections':
                return os.path.dirname(path)
            path = os.path.dirname(path)
    for root in os.environ.get('ANSIBLE_COLLECTIONS_PATH', '').split(os.pathsep):
        if root and os.path.isdir(os.path.join(root, 'ansible_collections', 'tuntap', 'qemu')):
            return root
    sys.exit('snapshot_under_churn: no ansible_collections/tuntap/qemu above %s or on '
             'ANSIBLE_COLLECTIONS_PATH' % __file__)


sys.path.insert(0, collections_root())

# pylint: disable=wrong-import-position
from ansible_collections.tuntap.qemu.plugins.module_utils._links import rtnl_snapshot  # noqa: E402


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    pauses = []

    def sleep(pause):
        pauses.append(pause)
        time.sleep(pause)

    snapshots = 0
    failures = []
    churn_seen = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            snapshot = rtnl_snapshot.read_snapshot(sleep=sleep)
        except OSError as exc:
            failures.append(str(exc))
            continue
        snapshots += 1
        churn_seen.update(name for name in snapshot if name.startswith('churn'))
    outcome = {'snapshots': snapshots, 'read_again': len(pauses),
               'longest_pause': max(pauses) if pauses else 0, 'failures': failures[:3],
               'churn_taps_seen': len(churn_seen)}
    print('snapshot_under_churn: %s' % json.dumps(outcome))
    if failures or not pauses or snapshots == 0 or len(churn_seen) < 10:
        sys.exit('snapshot_under_churn: every snapshot must succeed, some after reading an '
                 'interrupted dump again, while the other process churns')


if __name__ == '__main__':
    main()
