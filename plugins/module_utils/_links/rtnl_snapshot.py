# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The link snapshot of reading.read_snapshot(), read with `socket` and `struct` alone.

pyroute2 decodes every attribute of every link into objects (about 50 per link), while a
snapshot needs eight of them; for 512 taps that is ~0.2-0.27 s per snapshot against ~12 ms
here (benchmarks/snapshot_readers.py).
This module sends the same two read-only requests (an RTM_GETLINK dump and an
RTM_GETADDR dump over an AF_NETLINK/NETLINK_ROUTE socket), walks the replies with
struct.unpack_from and decodes only the attributes the snapshot uses:

    snapshot = read_snapshot()     # {ifname: record}, as reading.read_snapshot()

The records have the keys, value types and values of the pyroute2 reference reader (tests/integration/targets/rtnl_snapshot/pyroute2_reader.py), including
pyroute2's spelling of each value (MAC as lower-case 'aa:bb:..', operstate lower-cased
from pyroute2's names, addresses as inet_ntop gives them). One deliberate difference:
pyroute2 reads IFLA_ADDRESS as six bytes whatever its length, so for links whose hardware
address is not six bytes long (IP tunnels, InfiniBand) it returns bytes of the next
attribute or a truncated address; here the whole address is formatted.

The parsing functions take a bytes-like buffer and offsets, so the unit tests feed them
hand-built messages; only read_snapshot() and open_socket() touch the kernel.

A dump that links changed under is flagged NLM_F_DUMP_INTR by the kernel and read again, by
retry_interrupted(), the one retry policy of every dump reader of the collection (this one
and the pyroute2 route dumps of reading.py): an exponential backoff with jitter (DUMP_BACKOFF:
from 1 ms, doubling up to 250 ms, for up to 3 s in all), so a converge on a host where QEMU,
libvirt, Docker or another converge create and delete links goes on reading until it gets a
consistent dump, and fails only after seconds of uninterrupted churn, saying how long it tried.

Attribute numbers are those of the kernel's uapi headers (linux/netlink.h,
linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h, linux/if.h).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import random
import socket
import struct
import time

from ansible_collections.tuntap.qemu.plugins.module_utils._links import tuntap

# linux/netlink.h
NETLINK_ROUTE = 0
NLMSG_NOOP = 0x1
NLMSG_ERROR = 0x2
NLMSG_DONE = 0x3
NLMSG_OVERRUN = 0x4
NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_DUMP_INTR = 0x10
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLA_F_NESTED = 1 << 15
NLA_F_NET_BYTEORDER = 1 << 14
NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff
NLA_ALIGNTO = 4

# linux/rtnetlink.h
RTM_NEWLINK = 16
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_GETADDR = 22
RTEXT_FILTER_SKIP_STATS = 1 << 3  # no IFLA_STATS/IFLA_STATS64: a third less to send
REPLY_TYPES = {RTM_GETLINK: RTM_NEWLINK, RTM_GETADDR: RTM_NEWADDR}

# linux/if_link.h: struct ifinfomsg attributes
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_MASTER = 10
IFLA_OPERSTATE = 16
IFLA_LINKINFO = 18
IFLA_IFALIAS = 20
IFLA_EXT_MASK = 29
IFLA_CARRIER = 33
# nested in IFLA_LINKINFO
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
IFLA_INFO_SLAVE_KIND = 4
IFLA_INFO_SLAVE_DATA = 5
# nested in IFLA_INFO_DATA of kind 'tun'
IFLA_TUN_OWNER = 1
IFLA_TUN_GROUP = 2
IFLA_TUN_TYPE = 3
IFLA_TUN_VNET_HDR = 5
IFLA_TUN_PERSIST = 6
IFLA_TUN_MULTI_QUEUE = 7
# nested in IFLA_INFO_DATA of kind 'bridge'
IFLA_BR_FORWARD_DELAY = 1
IFLA_BR_STP_STATE = 5
# nested in IFLA_INFO_SLAVE_DATA of slave kind 'bridge' (a bridge port; linux/if_link.h's
# IFLA_BRPORT_*, the kernel's br_port_fill_attrs())
IFLA_BRPORT_ISOLATED = 33

# linux/if_addr.h: struct ifaddrmsg attributes
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_CACHEINFO = 6
IFA_FLAGS = 8      # u32: all the IFA_F_ flags (struct ifaddrmsg's ifa_flags holds 8 of them)
IFA_PROTO = 11     # u8, Linux 6.3+: who made the address (absent when unspecified)
INFINITY_LIFE_TIME = 0xFFFFFFFF   # ifa_valid / ifa_prefered of an address without lifetime
IFA_F_TEMPORARY = 0x01            # an RFC 8981 privacy address made from a SLAAC one (IPv6)
IFA_F_PERMANENT = 0x80            # added with an infinite lifetime (by a person or a program)
IFA_F_MANAGETEMPADDR = 0x100      # the kernel makes temporary addresses from this one
IFAPROT_KERNEL_RA = 2             # IFA_PROTO of an address made from a router advertisement

# linux/if.h
IFF_UP = 0x1
# IF_OPER_UNKNOWN (0) .. IF_OPER_UP (6), as pyroute2 names them, lower-cased
OPERSTATES = ('unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up')

USER_HZ = 100  # bridge timers are reported in clock_t

NLMSGHDR = struct.Struct('=IHHII')   # len, type, flags, seq, pid
IFINFOMSG = struct.Struct('=BxHiII')  # family, pad, type, index, flags, change
IFADDRMSG = struct.Struct('=BBBBI')   # family, prefixlen, flags, scope, index
NLATTR = struct.Struct('=HH')         # len, type
IFA_CACHEINFO_STRUCT = struct.Struct('=IIII')  # ifa_prefered, ifa_valid, cstamp, tstamp
U8 = struct.Struct('=B')
U32 = struct.Struct('=I')
I32 = struct.Struct('=i')

# The kernel fills a dump reply up to 32 KiB (one message may be larger); a bigger buffer
# costs nothing but the allocation, and a truncated read is reported, not parsed.
RECEIVE_BUFFER = 1 << 20

LINK_ATTRIBUTES = frozenset((IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_OPERSTATE,
                             IFLA_LINKINFO, IFLA_IFALIAS, IFLA_CARRIER))
LINKINFO_ATTRIBUTES = frozenset((IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND,
                                 IFLA_INFO_SLAVE_DATA))
TUN_ATTRIBUTES = frozenset((IFLA_TUN_OWNER, IFLA_TUN_GROUP, IFLA_TUN_TYPE, IFLA_TUN_VNET_HDR,
                            IFLA_TUN_PERSIST, IFLA_TUN_MULTI_QUEUE))
BRIDGE_ATTRIBUTES = frozenset((IFLA_BR_FORWARD_DELAY, IFLA_BR_STP_STATE))
BRIDGE_PORT_ATTRIBUTES = frozenset((IFLA_BRPORT_ISOLATED,))
ADDRESS_ATTRIBUTES = frozenset((IFA_ADDRESS, IFA_LOCAL, IFA_CACHEINFO, IFA_FLAGS, IFA_PROTO))


def _align(length):
    return (length + NLA_ALIGNTO - 1) & ~(NLA_ALIGNTO - 1)


def _bad_message(what):
    return OSError(errno.EBADMSG, 'malformed rtnetlink reply: %s' % what)


# ---------------------------------------------------------------- attributes

def attribute_spans(data, start, end, wanted):
    """{type: (payload start, payload end)} of the `wanted` attributes in data[start:end].

    Types are masked with NLA_TYPE_MASK (the kernel marks nests with NLA_F_NESTED); the
    first attribute of a type wins, as with pyroute2's get_attr().
    """
    # The hot loop of a snapshot (~50 attributes per link): names bound locally, 4 = the
    # size of struct nlattr and of NLA_ALIGNTO.
    spans = {}
    unpack_from = NLATTR.unpack_from
    while start + 4 <= end:
        length, attr_type = unpack_from(data, start)
        if length < 4 or start + length > end:
            raise _bad_message('attribute of length %d at offset %d' % (length, start))
        attr_type &= NLA_TYPE_MASK
        if attr_type in wanted and attr_type not in spans:
            spans[attr_type] = (start + 4, start + length)
        start += (length + 3) & ~3
    return spans


def _number(data, span, number, default=None):
    if span is None:
        return default
    if span[1] - span[0] < number.size:
        raise _bad_message('attribute of %d bytes where %d are needed'
                           % (span[1] - span[0], number.size))
    return number.unpack_from(data, span[0])[0]


def _string(data, span):
    """A NUL-terminated string attribute; bytes when it is not UTF-8 (as pyroute2 does)."""
    if span is None:
        return None
    value = bytes(data[span[0]:span[1]]).strip(b'\0')
    try:
        return value.decode('utf-8')
    except UnicodeDecodeError:
        return value


def _operstate(code):
    if code is None or code >= len(OPERSTATES):
        return 'unknown'
    return OPERSTATES[code]


def _hardware_address(data, span):
    if span is None:
        return None
    return bytes(data[span[0]:span[1]]).hex(':')


# ---------------------------------------------------------------- messages

def decode_link(data, start, end):
    """The body of one RTM_NEWLINK message (from its ifinfomsg on) -> link record.

    The record is that of the pyroute2 reference reader (tests/integration/targets/rtnl_snapshot/pyroute2_reader.py): name, ifindex, kind, mac, mtu, state,
    operstate, master_index, master (None; set by snapshot_from()), addresses ([]), dynamic
    ({}: the addresses with a finite lifetime, such as a DHCP lease: {'ADDRESS/PREFIX':
    {'valid': seconds, 'preferred': seconds}}, filled by snapshot_from()), autoconf ({}: the
    IPv6 addresses the kernel made itself from router advertisements, which are in neither
    `addresses` nor `dynamic`: {'ADDRESS/PREFIX': 'slaac' or 'temporary'}, see
    autoconf_kind()), alias (IFLA_IFALIAS, None when unset: the mark of marks.py), and
    mode/owner/group/multi_queue/vnet_hdr/persist/carrier for kind 'tun' (carrier: a process
    holds the device open), stp/forward_delay for kind 'bridge', and for a port of a bridge
    (IFLA_INFO_SLAVE_KIND 'bridge', whatever its own kind) isolated (IFLA_BRPORT_ISOLATED, the
    kernel's BR_ISOLATED: the port forwards to no other isolated port of its bridge).
    """
    if end - start < IFINFOMSG.size:
        raise _bad_message('RTM_NEWLINK shorter than struct ifinfomsg')
    index, flags = IFINFOMSG.unpack_from(data, start)[2:4]
    attrs = attribute_spans(data, start + IFINFOMSG.size, end, LINK_ATTRIBUTES)
    info = {}
    if IFLA_LINKINFO in attrs:
        info = attribute_spans(data, attrs[IFLA_LINKINFO][0], attrs[IFLA_LINKINFO][1],
                               LINKINFO_ATTRIBUTES)
    kind = _string(data, info.get(IFLA_INFO_KIND))
    operstate = _number(data, attrs.get(IFLA_OPERSTATE), U8)
    record = {
        'name': _string(data, attrs.get(IFLA_IFNAME)),
        'ifindex': index,
        'kind': kind,
        'mac': _hardware_address(data, attrs.get(IFLA_ADDRESS)),
        'mtu': _number(data, attrs.get(IFLA_MTU), U32),
        'state': 'up' if flags & IFF_UP else 'down',
        'operstate': _operstate(operstate),
        'master_index': _number(data, attrs.get(IFLA_MASTER), U32, 0),
        'master': None,
        'addresses': [],
        'dynamic': {},
        'autoconf': {},
        'alias': _string(data, attrs.get(IFLA_IFALIAS)) or None,
    }
    data_span = info.get(IFLA_INFO_DATA)
    if kind == 'tun':
        tun = attribute_spans(data, data_span[0], data_span[1], TUN_ATTRIBUTES) if data_span else {}
        owner = _number(data, tun.get(IFLA_TUN_OWNER), U32)
        group = _number(data, tun.get(IFLA_TUN_GROUP), U32)
        record.update({
            'mode': tuntap.TUN_TYPES.get(_number(data, tun.get(IFLA_TUN_TYPE), U8), 'unknown'),
            'owner': None if owner in (None, tuntap.NO_OWNER) else owner,
            'group': None if group in (None, tuntap.NO_OWNER) else group,
            'multi_queue': bool(_number(data, tun.get(IFLA_TUN_MULTI_QUEUE), U8, 0)),
            'vnet_hdr': bool(_number(data, tun.get(IFLA_TUN_VNET_HDR), U8, 0)),
            'persist': bool(_number(data, tun.get(IFLA_TUN_PERSIST), U8, 0)),
            'carrier': bool(_number(data, attrs.get(IFLA_CARRIER), U8, 0)),
        })
    elif kind == 'bridge':
        bridge = (attribute_spans(data, data_span[0], data_span[1], BRIDGE_ATTRIBUTES)
                  if data_span else {})
        record.update({
            'stp': bool(_number(data, bridge.get(IFLA_BR_STP_STATE), U32, 0)),
            'forward_delay': _number(data, bridge.get(IFLA_BR_FORWARD_DELAY), U32, 0) // USER_HZ,
        })
    if _string(data, info.get(IFLA_INFO_SLAVE_KIND)) == 'bridge':
        port_span = info.get(IFLA_INFO_SLAVE_DATA)
        port = (attribute_spans(data, port_span[0], port_span[1], BRIDGE_PORT_ATTRIBUTES)
                if port_span else {})
        record['isolated'] = bool(_number(data, port.get(IFLA_BRPORT_ISOLATED), U8, 0))
    return record


def autoconf_kind(family, flags, proto):
    """'slaac', 'temporary' or None: is this address one the kernel made itself from a router
    advertisement (SLAAC, RFC 4862) or from such an address (a privacy address, RFC 8981)?

    flags: IFA_FLAGS (or ifa_flags); proto: IFA_PROTO or None. The kernel gives every address
    it makes from a prefix of an RA IFA_F_MANAGETEMPADDR (net/ipv6/addrconf.c,
    addrconf_prefix_rcv_add_addr(), since Linux 3.14) and, from Linux 6.3 on, IFA_PROTO
    IFAPROT_KERNEL_RA; the temporary addresses it makes from those carry IFA_F_TEMPORARY.
    Neither is IFA_F_PERMANENT, which every address added with an infinite lifetime has (an
    admin's `ip -6 addr add ... mngtmpaddr` is static, not the kernel's). They come back by
    themselves on the link that hears the router, so they are never moved or persisted.
    Another IFA_PROTO (a program's own) says the address is not the kernel's.
    """
    if family != socket.AF_INET6 or flags & IFA_F_PERMANENT:
        return None
    if proto not in (None, 0, IFAPROT_KERNEL_RA):
        return None
    if flags & IFA_F_TEMPORARY:
        return 'temporary'
    if flags & IFA_F_MANAGETEMPADDR or proto == IFAPROT_KERNEL_RA:
        return 'slaac'
    return None


def decode_address(data, start, end):
    """The body of one RTM_NEWADDR message -> (ifindex, 'ADDRESS/PREFIX', lifetime, autoconf).

    IFA_LOCAL is preferred over IFA_ADDRESS (on a point-to-point link IFA_ADDRESS is the
    peer). None for an IPv6 link-local address (fe80:) and for families other than IPv4
    and IPv6. lifetime is None for an address that lives forever (no IFA_CACHEINFO, or its
    ifa_valid is INFINITY_LIFE_TIME: the kernel's IFA_F_PERMANENT), else the remaining
    {'valid': seconds, 'preferred': seconds} of struct ifa_cacheinfo (a DHCP lease: what
    `ip addr` shows as valid_lft / preferred_lft and `dynamic`). autoconf is
    autoconf_kind() of its flags (IFA_FLAGS, else ifa_flags) and IFA_PROTO.
    """
    if end - start < IFADDRMSG.size:
        raise _bad_message('RTM_NEWADDR shorter than struct ifaddrmsg')
    family, prefixlen, flags, _scope, index = IFADDRMSG.unpack_from(data, start)
    if family not in (socket.AF_INET, socket.AF_INET6):
        return None
    attrs = attribute_spans(data, start + IFADDRMSG.size, end, ADDRESS_ATTRIBUTES)
    span = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
    if span is None:
        return None
    raw = bytes(data[span[0]:span[1]])
    # pyroute2 picks the family by the length, which is what the kernel sends for each.
    address = socket.inet_ntop(socket.AF_INET6 if len(raw) > 8 else socket.AF_INET, raw)
    if address.startswith('fe80:'):
        return None
    lifetime = None
    cache = attrs.get(IFA_CACHEINFO)
    if cache is not None and cache[1] - cache[0] >= IFA_CACHEINFO_STRUCT.size:
        preferred, valid = IFA_CACHEINFO_STRUCT.unpack_from(data, cache[0])[:2]
        if valid != INFINITY_LIFE_TIME:
            lifetime = {'valid': valid, 'preferred': preferred}
    flags = _number(data, attrs.get(IFA_FLAGS), U32, flags)
    autoconf = autoconf_kind(family, flags, _number(data, attrs.get(IFA_PROTO), U8))
    return index, '%s/%d' % (address, prefixlen), lifetime, autoconf


def snapshot_from(links, addresses):
    """Link records (dump order) and (ifindex, address, lifetime, autoconf) of decode_address()
    -> {ifname: record}.

    As the pyroute2 reference reader: addresses of unknown links are dropped, each record's
    addresses are sorted and `master` is the name of the link at master_index; addresses
    with a lifetime are also in the record's `dynamic`; the kernel's own (autoconf) are in
    `autoconf` alone.
    """
    by_index = dict((record['ifindex'], record) for record in links)
    for index, address, lifetime, autoconf in addresses:
        record = by_index.get(index)
        if record is None:
            continue
        if autoconf:
            record['autoconf'][address] = autoconf
            continue
        record['addresses'].append(address)
        if lifetime is not None:
            record['dynamic'][address] = lifetime
    snapshot = {}
    for record in by_index.values():
        master = by_index.get(record['master_index'])
        record['master'] = master['name'] if master else None
        record['addresses'].sort()
        snapshot[record['name']] = record
    return snapshot


# ---------------------------------------------------------------- dumps

def dump_request(msg_type, seq):
    """An RTM_GETLINK or RTM_GETADDR dump request for all families (AF_UNSPEC)."""
    if msg_type == RTM_GETLINK:
        extended_mask = NLATTR.pack(NLATTR.size + U32.size, IFLA_EXT_MASK) \
            + U32.pack(RTEXT_FILTER_SKIP_STATS)
        body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + extended_mask
    elif msg_type == RTM_GETADDR:
        body = IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    else:
        raise ValueError('no dump request for message type %d' % msg_type)
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), msg_type, NLM_F_REQUEST | NLM_F_DUMP,
                         seq, 0) + body


class DumpReader:
    """Collects the decoded messages of one dump, fed one received buffer at a time.

    feed(data) returns True once NLMSG_DONE has been seen. NLMSG_ERROR (and an error
    code in NLMSG_DONE) raise OSError with the kernel's errno; messages of another
    sequence number are skipped. `interrupted` tells that the kernel flagged the dump
    as inconsistent (NLM_F_DUMP_INTR: the links changed while it was read).
    """

    def __init__(self, seq, msg_type, decode, what):
        self.seq = seq
        self.msg_type = msg_type
        self.decode = decode
        self.what = what
        self.items = []
        self.interrupted = False
        self.done = False

    def _error(self, code):
        return OSError(code, '%s: %s' % (self.what, os.strerror(code)))

    def feed(self, data):
        offset = 0
        size = len(data)
        while offset + NLMSGHDR.size <= size and not self.done:
            length, msg_type, flags, seq = NLMSGHDR.unpack_from(data, offset)[:4]
            if length < NLMSGHDR.size or offset + length > size:
                raise _bad_message('message of length %d at offset %d of %d bytes'
                                   % (length, offset, size))
            body, end = offset + NLMSGHDR.size, offset + length
            offset += _align(length)
            if seq != self.seq:
                continue
            if flags & NLM_F_DUMP_INTR:
                self.interrupted = True
            if msg_type == self.msg_type:
                item = self.decode(data, body, end)
                if item is not None:
                    self.items.append(item)
            elif msg_type == NLMSG_DONE:
                code = -_number(data, (body, end), I32, 0) if end - body >= I32.size else 0
                if code > 0:
                    raise self._error(code)
                self.done = True
            elif msg_type == NLMSG_ERROR:
                code = -_number(data, (body, end), I32)
                if code > 0:
                    raise self._error(code)
            elif msg_type == NLMSG_OVERRUN:
                raise self._error(errno.ENOBUFS)
        return self.done


def open_socket():
    """A NETLINK_ROUTE socket in the current network namespace (the caller closes it)."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.bind((0, 0))
    except OSError:
        sock.close()
        raise
    return sock


def _receiver(sock):
    buffer = bytearray(RECEIVE_BUFFER)
    view = memoryview(buffer)

    def receive():
        length = sock.recv_into(buffer, RECEIVE_BUFFER, socket.MSG_TRUNC)
        if length > RECEIVE_BUFFER:
            raise OSError(errno.EMSGSIZE, 'rtnetlink reply of %d bytes exceeds the %d byte buffer'
                          % (length, RECEIVE_BUFFER))
        return view[:length]
    return receive


@dataclasses.dataclass(frozen=True)
class Backoff:
    """How long to wait before reading an interrupted dump again, and for how long in all.

    The pause before retry n (1, 2, ...) is first * factor ** (n - 1), at most `longest`, of
    which a random part (up to half) is left out, so that two readers interrupted by the same
    change do not retry in step. Retries stop once `budget` seconds have passed since the
    first read; the last pause is shortened to end at the budget, and one more read is made.
    """

    first: float = 0.001
    factor: float = 2.0
    longest: float = 0.25
    budget: float = 3.0

    def pause(self, retry, draw):
        """The pause before retry number `retry`; draw() is uniform in [0, 1)."""
        ceiling = min(self.longest, self.first * self.factor ** min(retry - 1, 64))
        return ceiling * (1.0 - draw() / 2.0)


# 1, 2, 4 .. 128 ms, then 250 ms: about 20 reads in 3 s. A link dump of 512 taps takes ~12 ms,
# so a dump fails only when links change more often than every few milliseconds for 3 s.
DUMP_BACKOFF = Backoff()


class DumpInterrupted(OSError):
    """The kernel flagged a dump as inconsistent (NLM_F_DUMP_INTR); read it again."""

    def __init__(self, what):
        super().__init__(errno.EAGAIN, '%s: interrupted by a concurrent change' % what)


def retry_interrupted(read, what, interrupted=(DumpInterrupted,), backoff=DUMP_BACKOFF,
                      clock=time.monotonic, sleep=time.sleep, draw=random.random):
    """read() until it does not raise one of `interrupted`; its result.

    The pauses between the reads follow `backoff`. After its budget, OSError(EAGAIN) names
    `what`, the number of reads and the seconds they took. clock, sleep and draw are
    time.monotonic, time.sleep and random.random, replaced by the unit tests.
    """
    start = clock()
    reads = 0
    while True:
        reads += 1
        try:
            return read()
        except interrupted:
            pass
        elapsed = clock() - start
        if elapsed >= backoff.budget:
            raise OSError(errno.EAGAIN, '%s: interrupted by concurrent changes %d times in a row '
                          'over %.1f s (links or addresses of this network namespace were '
                          'created or deleted all the time); nothing was changed, run again '
                          'once the host is quieter' % (what, reads, elapsed))
        sleep(min(backoff.pause(reads, draw), backoff.budget - elapsed))


def read_dump(sock, receive, msg_type, decode, what, seq, **retry):
    """Send one dump request and decode the replies; read again if it was interrupted
    (retry_interrupted(), which gets `retry`).

    Returns (items, next sequence number).
    """
    sequence = [seq]

    def read_once():
        reader = DumpReader(sequence[0], REPLY_TYPES[msg_type], decode, what)
        sequence[0] += 1
        sock.send(dump_request(msg_type, reader.seq))
        while not reader.feed(receive()):
            pass
        if reader.interrupted:
            raise DumpInterrupted(what)
        return reader.items

    items = retry_interrupted(read_once, what, **retry)
    return items, sequence[0]


def read_snapshot(**retry):
    """One dump of links and one of addresses -> {ifname: record} (see decode_link()).

    `retry` goes to retry_interrupted() (the concurrency integration target counts the
    pauses through its `sleep`)."""
    sock = open_socket()
    try:
        receive = _receiver(sock)
        links, seq = read_dump(sock, receive, RTM_GETLINK, decode_link, 'RTM_GETLINK dump', 1,
                               **retry)
        addresses = read_dump(sock, receive, RTM_GETADDR, decode_address, 'RTM_GETADDR dump',
                              seq, **retry)[0]
    finally:
        sock.close()
    return snapshot_from(links, addresses)
