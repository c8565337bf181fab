# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hold tap NAME open as a running QEMU would: attach to it with TUNSETIFF, write READY
(this process's PID) once attached, then wait until killed.

    python3 held_tap.py NAME READY

Started in the background by start-stop-daemon (with its own pidfile) from a playbook of
this target; ended by PID by the playbook, or by runme.sh's cleanup hook after a failure.
"""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import sys

TUNSETIFF = 0x400454ca
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def main():
    name, ready = sys.argv[1:3]
    fd = os.open('/dev/net/tun', os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode('utf-8'), IFF_TAP | IFF_NO_PI))
    with open(ready + '.tmp', 'w') as handle:
        handle.write('%d\n' % os.getpid())
    os.rename(ready + '.tmp', ready)
    while True:
        signal.pause()


if __name__ == '__main__':
    main()
