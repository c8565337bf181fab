# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One IPv6 router solicitation (RFC 4861 4.1) from a link, so that the LAN's router answers
with an advertisement at once and the kernel makes the link's SLAAC addresses and RA routes
(net/ipv6/ndisc.c, addrconf.c) now, not at the router's next unsolicited advertisement
(every 200 to 600 s on a typical LAN).

    solicit('br0')     # True once sent; False when the link has no usable link-local address

The kernel solicits by itself only when a link comes up or gets its carrier (a new bridge
when its first port joins); a link that changes its master keeps its carrier: the uplink
given back by the bridge, a bridge that has a carrier through other ports. The router's
answer is the kernel's business; nothing else of the host changes.

A raw ICMPv6 socket, the kernel fills in the checksum (RFC 3542 3.1); hop limit 255, as
routers require (RFC 4861 6.1.1); the source link-layer address option with the link's MAC
(RFC 4861 4.1: it SHOULD be there when the source is not ::; the kernel's own solicitation
has it too, and the router can answer by unicast without asking for it). A link whose
link-local address is still tentative (duplicate address detection, about 1 s after it got a
carrier) cannot send yet: tried again every `pause` seconds for `wait` seconds in all (the
kernel solicits itself at the end of that detection anyway).
"""

from __future__ import annotations

import errno
import socket
import struct
import time

ICMPV6_ROUTER_SOLICITATION = 133
ND_OPT_SOURCE_LINKADDR = 1
ALL_ROUTERS = 'ff02::2'
HOP_LIMIT = 255
NOT_YET = (errno.EADDRNOTAVAIL, errno.ENETDOWN, errno.ENETUNREACH)


def message(mac=None):
    """The router solicitation: type, code, checksum (the kernel's), reserved; with `mac`
    ('aa:bb:cc:dd:ee:ff') the source link-layer address option (type 1, 8 bytes)."""
    body = struct.pack('!BBHI', ICMPV6_ROUTER_SOLICITATION, 0, 0, 0)
    if mac:
        body += struct.pack('!BB', ND_OPT_SOURCE_LINKADDR, 1) + bytes.fromhex(mac.replace(':', ''))
    return body


def link_mac(ifname):
    """The link's 6-byte MAC from sysfs, or None (another kind of address, or none)."""
    try:
        with open('/sys/class/net/%s/address' % ifname) as handle:
            mac = handle.read().strip()
    except OSError:
        return None
    return mac if len(mac) == 17 and mac != '00:00:00:00:00:00' else None


def solicit(ifname, wait=3.0, pause=0.1, clock=time.monotonic, sleep=time.sleep,
            open_socket=None, mac_of=link_mac):
    """Send one router solicitation from `ifname` to all routers; True when sent, False when
    the link could not send within `wait` seconds (no usable link-local address). Other
    errors raise OSError."""
    index = socket.if_nametoindex(ifname)
    data = message(mac_of(ifname))
    sock = (open_socket or _open_socket)(index)
    try:
        end = clock() + wait
        while True:
            try:
                sock.sendto(data, (ALL_ROUTERS, 0, 0, index))
                return True
            except OSError as exc:
                if exc.errno not in NOT_YET or clock() >= end:
                    if exc.errno in NOT_YET:
                        return False
                    raise
            sleep(pause)
    finally:
        sock.close()


def _open_socket(index):
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                         socket.IPPROTO_ICMPV6)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, HOP_LIMIT)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
    except OSError:
        sock.close()
        raise
    return sock
