# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Holds the host lock of the network namespace it runs in, as a module would, for lock_held.yml.

    ip netns exec NS PYTHON hold_lock.py PIDFILE RELEASE-FILE NAME

Takes the lock through the collection's host_lock (the same file and holder record as every
module), then writes its PID into PIDFILE (runme.sh waits for it), holds the lock until
RELEASE-FILE exists (the playbook creates it) and one second more, so that the module run
after that must wait for it, then releases it and exits. runme.sh stops it by that PID if it
is still running. The collection is imported from the ansible_collections folder above this
file or the working directory, else from ANSIBLE_COLLECTIONS_PATH.
"""

from __future__ import annotations

import os
import sys
import time

HOLD_AFTER_RELEASE = 1.0
LONGEST = 300.0


def collections_root():
    for path in (os.path.dirname(os.path.abspath(__file__)), os.environ.get('PWD', '')):
        while path and os.path.dirname(path) != path:
            if os.path.basename(path) == 'ansible_collections':
                return os.path.dirname(path)
            path = os.path.dirname(path)
    for root in os.environ.get('ANSIBLE_COLLECTIONS_PATH', '').split(os.pathsep):
        if root and os.path.isdir(os.path.join(root, 'ansible_collections', 'tuntap', 'qemu')):
            return root
    sys.exit('hold_lock: no ansible_collections/tuntap/qemu above %s or on '
             'ANSIBLE_COLLECTIONS_PATH' % __file__)


sys.path.insert(0, collections_root())

# pylint: disable=wrong-import-position
from ansible_collections.tuntap.qemu.plugins.module_utils import host_lock  # noqa: E402


def main():
    pidfile, release_file, name = sys.argv[1:4]
    lock = host_lock.HostLock(host_lock.lock_path(os.environ), name, timeout=10)
    lock.acquire()
    with open(pidfile + '.tmp', 'w', encoding='ascii') as handle:
        handle.write('%d\n' % os.getpid())
    os.replace(pidfile + '.tmp', pidfile)
    deadline = time.monotonic() + LONGEST
    while not os.path.exists(release_file) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(HOLD_AFTER_RELEASE)
    lock.release()


if __name__ == '__main__':
    main()
