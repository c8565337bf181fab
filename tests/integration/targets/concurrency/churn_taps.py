# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Another tenant of the host for churn.yml: creates and deletes taps all the time, as QEMU,
libvirt or Docker do, and checks that nobody else touches them.

    ip netns exec NS PYTHON churn_taps.py PIDFILE STATUS-FILE [RATE]

Every 1/RATE seconds (default 20 a second) it creates a persistent tap churnN (tun ioctls,
no other process) and deletes the one it made KEEP taps earlier, so RATE taps a second are
created and RATE deleted in the namespace, each change interrupting any netlink dump in
progress. Before deleting a tap it checks, in /sys/class/net, that the tap is still the one it
made (same ifindex), down, in no bridge, with MTU 1500, no alias and no owner; anything else
is a violation. STATUS-FILE (JSON, replaced atomically every few cycles and at the end) holds
the counts, the violations and `stopped`. On SIGTERM it deletes its remaining taps (checking
them the same way), writes the final status and exits; PIDFILE is written once it runs.
"""

from __future__ import annotations

import collections
import fcntl
import json
import os
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454ca
TUNSETPERSIST = 0x400454cb
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_UP = 0x1
KEEP = 5
PREFIX = 'churn'


def tun_request(name, persist):
    fd = os.open('/dev/net/tun', os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode('ascii'), IFF_TAP | IFF_NO_PI))
        fcntl.ioctl(fd, TUNSETPERSIST, 1 if persist else 0)
    finally:
        os.close(fd)


def sysfs(name, attribute):
    with open('/sys/class/net/%s/%s' % (name, attribute), encoding='ascii') as handle:
        return handle.read().strip()


def touched(name, ifindex):
    """What differs from the tap this process made: [] when it is untouched."""
    try:
        problems = []
        if int(sysfs(name, 'ifindex')) != ifindex:
            problems.append('deleted and made again (ifindex %s, was %d)'
                            % (sysfs(name, 'ifindex'), ifindex))
        if int(sysfs(name, 'flags'), 16) & IFF_UP:
            problems.append('brought up')
        if os.path.exists('/sys/class/net/%s/master' % name):
            problems.append('put into %s' % os.path.basename(
                os.readlink('/sys/class/net/%s/master' % name)))
        if sysfs(name, 'mtu') != '1500':
            problems.append('mtu %s' % sysfs(name, 'mtu'))
        if sysfs(name, 'ifalias'):
            problems.append('alias %r' % sysfs(name, 'ifalias'))
        if sysfs(name, 'owner') != '-1':
            problems.append('owner %s' % sysfs(name, 'owner'))
        return problems
    except OSError as exc:
        return ['gone: %s' % exc]


class Churn:
    def __init__(self, status_file, rate):
        self.status_file = status_file
        self.interval = 1.0 / rate
        self.alive = collections.deque()
        self.created = 0
        self.deleted = 0
        self.violations = []
        self.stopping = False
        self.started = time.time()

    def write_status(self, stopped=False):
        status = {'created': self.created, 'deleted': self.deleted, 'alive': len(self.alive),
                  'violations': self.violations, 'stopped': stopped,
                  'seconds': round(time.time() - self.started, 1)}
        with open(self.status_file + '.tmp', 'w', encoding='utf-8') as handle:
            json.dump(status, handle)
        os.replace(self.status_file + '.tmp', self.status_file)

    def delete_oldest(self):
        name, ifindex = self.alive.popleft()
        problems = touched(name, ifindex)
        if problems:
            self.violations.append('%s: %s' % (name, ', '.join(problems)))
        if os.path.exists('/sys/class/net/%s' % name):
            tun_request(name, persist=False)
        self.deleted += 1

    def run(self):
        next_at = time.monotonic()
        while not self.stopping:
            name = '%s%d' % (PREFIX, self.created % 10000)
            tun_request(name, persist=True)
            self.alive.append((name, int(sysfs(name, 'ifindex'))))
            self.created += 1
            if len(self.alive) > KEEP:
                self.delete_oldest()
            if self.created % 5 == 0:
                self.write_status()
            next_at += self.interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        while self.alive:
            self.delete_oldest()
        self.write_status(stopped=True)


def main():
    pidfile, status_file = sys.argv[1:3]
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 20.0
    churn = Churn(status_file, rate)

    def stop(_signum, _frame):
        churn.stopping = True
    signal.signal(signal.SIGTERM, stop)
    churn.write_status()
    with open(pidfile + '.tmp', 'w', encoding='ascii') as handle:
        handle.write('%d\n' % os.getpid())
    os.replace(pidfile + '.tmp', pidfile)
    churn.run()


if __name__ == '__main__':
    main()
