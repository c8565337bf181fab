# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Persistent tun/tap devices through the /dev/net/tun ioctls.

Netlink cannot create tun/tap devices; `ip tuntap add` and `tunctl` use these same
ioctls.  Everything else about a tap (MTU, state, master, addresses) goes through
netlink in links.py.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct

TUN_DEVICE = '/dev/net/tun'

TUNSETIFF = 0x400454ca
TUNSETPERSIST = 0x400454cb
TUNSETOWNER = 0x400454cc
TUNSETGROUP = 0x400454ce

IFF_TUN = 0x0001
IFF_TAP = 0x0002
IFF_MULTI_QUEUE = 0x0100
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000

# IFLA_TUN_TYPE values reported by the kernel
TUN_TYPES = {IFF_TUN: 'tun', IFF_TAP: 'tap'}

NO_OWNER = 0xffffffff  # (uid_t)-1: the kernel's "not set"


class TunError(Exception):
    """A tun/tap ioctl failed; the message names the device and the step."""


def tun_flags(mode, multi_queue, vnet_hdr):
    """The TUNSETIFF flags for a device of this shape."""
    flags = (IFF_TAP if mode == 'tap' else IFF_TUN) | IFF_NO_PI
    if multi_queue:
        flags |= IFF_MULTI_QUEUE
    if vnet_hdr:
        flags |= IFF_VNET_HDR
    return flags


def configure_tun(name, mode, owner, group, multi_queue, vnet_hdr, persist=True):
    """Create (or attach to) tun/tap `name`, set its owner and group and persistence.

    owner/group None leave the current value (unset on a new device).  Attaching to a
    device that a process (a running QEMU) holds open fails with EBUSY.
    """
    flags = tun_flags(mode, multi_queue, vnet_hdr)
    try:
        fd = os.open(TUN_DEVICE, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise TunError('cannot open %s to manage %s: %s' % (TUN_DEVICE, name, exc.strerror))
    try:
        _ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode('utf-8'), flags), name,
               'attach (TUNSETIFF)')
        if owner is not None:
            _ioctl(fd, TUNSETOWNER, owner, name, 'set owner (TUNSETOWNER)')
        if group is not None:
            _ioctl(fd, TUNSETGROUP, group, name, 'set group (TUNSETGROUP)')
        _ioctl(fd, TUNSETPERSIST, 1 if persist else 0, name, 'set persistence (TUNSETPERSIST)')
    finally:
        os.close(fd)


def _ioctl(fd, request, argument, name, step):
    try:
        fcntl.ioctl(fd, request, argument)
    except OSError as exc:
        hint = ''
        if exc.errno == errno.EBUSY:
            hint = '; the device is held open by a process (a running guest?)'
        elif exc.errno == errno.EPERM:
            hint = '; this needs CAP_NET_ADMIN (run as root or with become)'
        elif exc.errno == errno.EINVAL:
            hint = '; the device exists with another mode or multi_queue setting'
        raise TunError('%s: %s failed: %s%s' % (name, step, exc.strerror, hint))
