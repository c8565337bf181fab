# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rtnl_snapshot over hand-built rtnetlink messages (no kernel, no socket).

The attribute numbers below are written out from the kernel's uapi headers rather than
taken from the module, so a wrong constant there fails here.
"""

from __future__ import annotations

import errno
import socket
import struct

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._links import rtnl_snapshot

# linux/netlink.h, linux/rtnetlink.h
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_MULTI, NLM_F_DUMP_INTR = 0x02, 0x10
NLA_F_NESTED = 1 << 15
RTM_NEWLINK, RTM_GETLINK, RTM_NEWADDR, RTM_GETADDR = 16, 18, 20, 22
# linux/if_link.h
IFLA_ADDRESS, IFLA_BROADCAST, IFLA_IFNAME, IFLA_MTU = 1, 2, 3, 4
IFLA_MASTER, IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_STATS64, IFLA_EXT_MASK = 10, 16, 18, 23, 29
IFLA_IFALIAS, IFLA_CARRIER = 20, 33
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA = 1, 2, 4, 5
IFLA_TUN_OWNER, IFLA_TUN_GROUP, IFLA_TUN_TYPE, IFLA_TUN_PI = 1, 2, 3, 4
IFLA_TUN_VNET_HDR, IFLA_TUN_PERSIST, IFLA_TUN_MULTI_QUEUE, IFLA_TUN_NUM_QUEUES = 5, 6, 7, 8
IFLA_BR_FORWARD_DELAY, IFLA_BR_HELLO_TIME, IFLA_BR_STP_STATE = 1, 2, 5
IFLA_BRPORT_STATE, IFLA_BRPORT_LEARNING, IFLA_BRPORT_ISOLATED, IFLA_BRPORT_BACKUP_PORT = 1, 8, 33, 34
# linux/if_addr.h, linux/if.h
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_CACHEINFO, IFA_FLAGS, IFA_PROTO = 1, 2, 3, 6, 8, 11
IFF_UP, IFF_BROADCAST = 0x1, 0x2
IF_OPER_DOWN, IF_OPER_UP = 2, 6


# ---------------------------------------------------------------- message builders

def nla(attr_type, payload):
    length = 4 + len(payload)
    return struct.pack('=HH', length, attr_type) + payload + b'\0' * (-length % 4)


def nest(attr_type, *attrs):
    return nla(attr_type | NLA_F_NESTED, b''.join(attrs))


def u8(value):
    return struct.pack('=B', value)


def u32(value):
    return struct.pack('=I', value)


def asciiz(text):
    return text.encode('utf-8') + b'\0'


def ifinfomsg(index, flags, *attrs):
    return struct.pack('=BxHiII', socket.AF_UNSPEC, 1, index, flags, 0) + b''.join(attrs)


def ifaddrmsg(family, prefixlen, index, *attrs, flags=0):
    return struct.pack('=BBBBI', family, prefixlen, flags, 0, index) + b''.join(attrs)


def nlmsg(msg_type, body, seq=1, flags=NLM_F_MULTI):
    length = 16 + len(body)
    return struct.pack('=IHHII', length, msg_type, flags, seq, 4242) + body + b'\0' * (-length % 4)


def done(seq=1, code=0):
    return nlmsg(NLMSG_DONE, struct.pack('=i', code), seq)


def error(seq=1, code=0):
    return nlmsg(NLMSG_ERROR, struct.pack('=i', code) + struct.pack('=IHHII', 32, 18, 0x301, seq, 0),
                 seq, flags=0)


def decode_link(body):
    return rtnl_snapshot.decode_link(body, 0, len(body))


def decode_address(body):
    return rtnl_snapshot.decode_address(body, 0, len(body))


MAC = b'\x52\x54\x00\xab\xcd\xef'

TAP_WITH_OWNER = ifinfomsg(
    5, IFF_UP | IFF_BROADCAST,
    nla(IFLA_IFNAME, asciiz('tap0')),
    nla(IFLA_MTU, u32(1500)),
    nla(IFLA_OPERSTATE, u8(IF_OPER_DOWN)),
    nla(IFLA_ADDRESS, MAC),
    nla(IFLA_BROADCAST, b'\xff' * 6),
    nla(IFLA_STATS64, b'\x01' * 184),
    nla(IFLA_IFALIAS, asciiz('tuntap.qemu:tap')),
    nla(IFLA_CARRIER, u8(1)),
    nest(IFLA_LINKINFO,
         nla(IFLA_INFO_KIND, asciiz('tun')),
         nest(IFLA_INFO_DATA,
              nla(IFLA_TUN_OWNER, u32(1000)),
              nla(IFLA_TUN_GROUP, u32(0xffffffff)),
              nla(IFLA_TUN_TYPE, u8(2)),
              nla(IFLA_TUN_PI, u8(0)),
              nla(IFLA_TUN_VNET_HDR, u8(1)),
              nla(IFLA_TUN_PERSIST, u8(1)),
              nla(IFLA_TUN_MULTI_QUEUE, u8(0)),
              nla(IFLA_TUN_NUM_QUEUES, u32(0)))),
)

BRIDGE_WITH_STP = ifinfomsg(
    7, IFF_UP,
    nla(IFLA_IFNAME, asciiz('br-guests')),
    nla(IFLA_MTU, u32(9000)),
    nla(IFLA_OPERSTATE, u8(IF_OPER_UP)),
    nla(IFLA_ADDRESS, MAC),
    nla(IFLA_IFALIAS, asciiz('tuntap.qemu:bridge uplink=eth0')),
    nest(IFLA_LINKINFO,
         nla(IFLA_INFO_KIND, asciiz('bridge')),
         nest(IFLA_INFO_DATA,
              nla(IFLA_BR_FORWARD_DELAY, u32(400)),
              nla(IFLA_BR_HELLO_TIME, u32(200)),
              nla(IFLA_BR_STP_STATE, u32(1)))),
)

VETH_WITH_MASTER = ifinfomsg(
    9, 0,
    nla(IFLA_IFNAME, asciiz('veth-lan1')),   # 10 bytes: padded to 12
    nla(IFLA_MTU, u32(1400)),
    nla(IFLA_MASTER, u32(7)),
    nla(IFLA_OPERSTATE, u8(IF_OPER_DOWN)),
    nla(IFLA_ADDRESS, b'\x0a\x0b\x0c\x0d\x0e\x0f'),
    nest(IFLA_LINKINFO,
         nla(IFLA_INFO_KIND, asciiz('veth')),
         nla(IFLA_INFO_SLAVE_KIND, asciiz('bridge'))),
)

# A tap that is an isolated port of bridge 7 (the kernel's br_port_fill_attrs() sends some
# 40 IFLA_BRPORT_* attributes; the flag is one u8 among them).
TAP_ISOLATED_PORT = ifinfomsg(
    12, IFF_UP,
    nla(IFLA_IFNAME, asciiz('vm10')),
    nla(IFLA_MTU, u32(1500)),
    nla(IFLA_MASTER, u32(7)),
    nla(IFLA_OPERSTATE, u8(IF_OPER_UP)),
    nest(IFLA_LINKINFO,
         nla(IFLA_INFO_KIND, asciiz('tun')),
         nest(IFLA_INFO_DATA, nla(IFLA_TUN_TYPE, u8(2)), nla(IFLA_TUN_PERSIST, u8(1))),
         nla(IFLA_INFO_SLAVE_KIND, asciiz('bridge')),
         nest(IFLA_INFO_SLAVE_DATA,
              nla(IFLA_BRPORT_STATE, u8(3)),
              nla(IFLA_BRPORT_LEARNING, u8(1)),
              nla(IFLA_BRPORT_ISOLATED, u8(1)),
              nla(IFLA_BRPORT_BACKUP_PORT, u32(0)))),
)

TUN_BARE = ifinfomsg(
    11, IFF_UP,
    nla(IFLA_IFNAME, asciiz('tun0')),
    nla(IFLA_MTU, u32(1500)),
    nla(IFLA_OPERSTATE, u8(0)),
    # a flag-less nest: the type must match without NLA_F_NESTED too
    nla(IFLA_LINKINFO, nla(IFLA_INFO_KIND, asciiz('tun')) + nla(IFLA_INFO_DATA, nla(IFLA_TUN_TYPE, u8(1)))),
)

PHYSICAL = ifinfomsg(
    2, IFF_UP,
    nla(IFLA_IFNAME, asciiz('eth0')),
    nla(IFLA_ADDRESS, b'\xc0\x00\x02\x01'),   # four bytes, as an IP tunnel has
    nla(IFLA_OPERSTATE, u8(42)),
)

COMMON = {'master': None, 'addresses': [], 'dynamic': {}, 'autoconf': {}, 'alias': None}


@pytest.mark.parametrize('body, expected', [
    pytest.param(TAP_WITH_OWNER, dict(
        COMMON, name='tap0', ifindex=5, kind='tun', mac='52:54:00:ab:cd:ef', mtu=1500,
        state='up', operstate='down', master_index=0, mode='tap', owner=1000, group=None,
        multi_queue=False, vnet_hdr=True, persist=True, carrier=True, alias='tuntap.qemu:tap'),
        id='tap with owner, alias and carrier'),
    pytest.param(BRIDGE_WITH_STP, dict(
        COMMON, name='br-guests', ifindex=7, kind='bridge', mac='52:54:00:ab:cd:ef', mtu=9000,
        state='up', operstate='up', master_index=0, stp=True, forward_delay=4,
        alias='tuntap.qemu:bridge uplink=eth0'),
        id='bridge with stp'),
    pytest.param(VETH_WITH_MASTER, dict(
        COMMON, name='veth-lan1', ifindex=9, kind='veth', mac='0a:0b:0c:0d:0e:0f', mtu=1400,
        state='down', operstate='down', master_index=7, isolated=False),
        id='veth with master, no port data: not isolated'),
    pytest.param(TAP_ISOLATED_PORT, dict(
        COMMON, name='vm10', ifindex=12, kind='tun', mac=None, mtu=1500, state='up',
        operstate='up', master_index=7, mode='tap', owner=None, group=None,
        multi_queue=False, vnet_hdr=False, persist=True, carrier=False, isolated=True),
        id='tap, an isolated bridge port'),
    pytest.param(TUN_BARE, dict(
        COMMON, name='tun0', ifindex=11, kind='tun', mac=None, mtu=1500, state='up',
        operstate='unknown', master_index=0, mode='tun', owner=None, group=None,
        multi_queue=False, vnet_hdr=False, persist=False, carrier=False),
        id='tun without owner and address'),
    pytest.param(PHYSICAL, dict(
        COMMON, name='eth0', ifindex=2, kind=None, mac='c0:00:02:01', mtu=None, state='up',
        operstate='unknown', master_index=0), id='no linkinfo, short address, odd operstate'),
])
def test_decode_link(body, expected):
    record = decode_link(body)
    assert record == expected
    assert [type(record[key]) for key in sorted(record)] == [type(expected[key]) for key in sorted(expected)]


def test_decode_link_keeps_undecodable_name_as_bytes():
    record = decode_link(ifinfomsg(3, 0, nla(IFLA_IFNAME, b'tap\xff\0')))
    assert record['name'] == b'tap\xff'


V6 = socket.inet_pton(socket.AF_INET6, '2001:db8:0:0:1::5')
SLAAC = socket.inet_pton(socket.AF_INET6, 'fd00:10::a4ed:5eff:fe0c:623d')
LEASE_600 = nla(IFA_CACHEINFO, struct.pack('=IIII', 300, 600, 10, 20))
FOREVER = nla(IFA_CACHEINFO, struct.pack('=IIII', 0xFFFFFFFF, 0xFFFFFFFF, 10, 20))


@pytest.mark.parametrize('body, expected', [
    pytest.param(ifaddrmsg(socket.AF_INET, 24, 7, nla(IFA_ADDRESS, bytes([192, 0, 2, 1])),
                           nla(IFA_LOCAL, bytes([192, 0, 2, 1])), nla(IFA_LABEL, asciiz('br0'))),
                 (7, '192.0.2.1/24', None, None), id='v4'),
    pytest.param(ifaddrmsg(socket.AF_INET, 32, 9, nla(IFA_ADDRESS, bytes([10, 9, 9, 2])),
                           nla(IFA_LOCAL, bytes([10, 9, 9, 1]))),
                 (9, '10.9.9.1/32', None, None), id='v4 with peer: IFA_LOCAL wins'),
    pytest.param(ifaddrmsg(socket.AF_INET, 8, 1, nla(IFA_ADDRESS, bytes([127, 0, 0, 1]))),
                 (1, '127.0.0.1/8', None, None), id='v4 without IFA_LOCAL'),
    pytest.param(ifaddrmsg(socket.AF_INET6, 80, 7, nla(IFA_ADDRESS, V6)),
                 (7, '2001:db8::1:0:0:5/80', None, None), id='v6 compressed'),
    pytest.param(ifaddrmsg(socket.AF_INET6, 64, 7,
                           nla(IFA_ADDRESS, socket.inet_pton(socket.AF_INET6, 'fe80::1'))),
                 None, id='v6 link-local skipped'),
    pytest.param(ifaddrmsg(socket.AF_INET6, 64, 7), None, id='no address attribute'),
    pytest.param(ifaddrmsg(socket.AF_INET, 24, 4, nla(IFA_LOCAL, bytes([10, 44, 0, 50])),
                           nla(IFA_CACHEINFO, struct.pack('=IIII', 3000, 3599, 10, 20))),
                 (4, '10.44.0.50/24', {'valid': 3599, 'preferred': 3000}, None), id='v4 lease: finite lifetime'),
    pytest.param(ifaddrmsg(socket.AF_INET, 24, 4, nla(IFA_LOCAL, bytes([10, 44, 0, 50])),
                           nla(IFA_CACHEINFO, struct.pack('=IIII', 0xFFFFFFFF, 0xFFFFFFFF, 10, 20))),
                 (4, '10.44.0.50/24', None, None), id='v4 forever: static'),
    pytest.param(ifaddrmsg(socket.AF_INET6, 64, 4, nla(IFA_ADDRESS, V6),
                           nla(IFA_CACHEINFO, struct.pack('=IIII', 0, 120, 10, 20))),
                 (4, '2001:db8::1:0:0:5/64', {'valid': 120, 'preferred': 0}, None), id='v6 deprecated, still valid'),
    pytest.param(ifaddrmsg(socket.AF_INET6, 64, 2, nla(IFA_ADDRESS, SLAAC), LEASE_600,
                           nla(IFA_FLAGS, u32(0x100)), nla(IFA_PROTO, u8(2))),
                 (2, 'fd00:10::a4ed:5eff:fe0c:623d/64', {'valid': 600, 'preferred': 300}, 'slaac'),
                 id='v6 SLAAC (Linux 6.3+): mngtmpaddr, proto kernel_ra'),
    pytest.param(ifaddrmsg(socket.AF_INET6, 64, 2, nla(IFA_ADDRESS, SLAAC), LEASE_600,
                           nla(IFA_FLAGS, u32(0x100))),
                 (2, 'fd00:10::a4ed:5eff:fe0c:623d/64', {'valid': 600, 'preferred': 300}, 'slaac'),
                 id='v6 SLAAC (Linux 6.1): mngtmpaddr, no IFA_PROTO'),
    pytest.param(ifaddrmsg(socket.AF_INET6, 64, 2, nla(IFA_ADDRESS, SLAAC), LEASE_600,
                           nla(IFA_FLAGS, u32(0x100 | 0x20)), nla(IFA_PROTO, u8(2))),
                 (2, 'fd00:10::a4ed:5eff:fe0c:623d/64', {'valid': 600, 'preferred': 300}, 'slaac'),
                 id='v6 SLAAC deprecated'),
    pytest.param(ifaddrmsg(socket.AF_INET6, 64, 2, nla(IFA_ADDRESS, V6), LEASE_600,
                           nla(IFA_FLAGS, u32(0x01)), flags=0x01),
                 (2, '2001:db8::1:0:0:5/64', {'valid': 600, 'preferred': 300}, 'temporary'),
                 id='v6 temporary (privacy) address'),
    pytest.param(ifaddrmsg(socket.AF_INET6, 64, 2, nla(IFA_ADDRESS, V6), LEASE_600, flags=0x01),
                 (2, '2001:db8::1:0:0:5/64', {'valid': 600, 'preferred': 300}, 'temporary'),
                 id='v6 temporary, flags in ifa_flags only'),
    pytest.param(ifaddrmsg(socket.AF_INET6, 64, 2, nla(IFA_ADDRESS, SLAAC), FOREVER,
                           nla(IFA_FLAGS, u32(0x100 | 0x80)), flags=0x80),
                 (2, 'fd00:10::a4ed:5eff:fe0c:623d/64', None, None),
                 id='v6 permanent mngtmpaddr: an admin static address'),
    pytest.param(ifaddrmsg(socket.AF_INET6, 64, 2, nla(IFA_ADDRESS, SLAAC), LEASE_600,
                           nla(IFA_FLAGS, u32(0x100)), nla(IFA_PROTO, u8(99))),
                 (2, 'fd00:10::a4ed:5eff:fe0c:623d/64', {'valid': 600, 'preferred': 300}, None),
                 id='v6 mngtmpaddr of another protocol: not the kernel'),
    pytest.param(ifaddrmsg(socket.AF_INET6, 128, 2, nla(IFA_ADDRESS, V6), LEASE_600),
                 (2, '2001:db8::1:0:0:5/128', {'valid': 600, 'preferred': 300}, None),
                 id='v6 dynamic without mngtmpaddr (a DHCPv6 lease): not the kernel'),
    pytest.param(ifaddrmsg(socket.AF_INET, 24, 4, nla(IFA_LOCAL, bytes([10, 44, 0, 50])), LEASE_600,
                           nla(IFA_FLAGS, u32(0x01)), flags=0x01),
                 (4, '10.44.0.50/24', {'valid': 600, 'preferred': 300}, None),
                 id='v4 secondary (0x01 is IFA_F_SECONDARY in IPv4)'),
    pytest.param(ifaddrmsg(socket.AF_PACKET, 0, 7, nla(IFA_ADDRESS, b'\1')), None, id='other family'),
])
def test_decode_address(body, expected):
    assert decode_address(body) == expected


# ---------------------------------------------------------------- whole dumps

def link_message(index, name, seq=1, flags=NLM_F_MULTI):
    return nlmsg(RTM_NEWLINK, ifinfomsg(index, 0, nla(IFLA_IFNAME, asciiz(name))), seq, flags)


def link_reader(seq=1):
    return rtnl_snapshot.DumpReader(seq, RTM_NEWLINK, rtnl_snapshot.decode_link, 'RTM_GETLINK dump')


def test_multipart_dump_across_two_buffers():
    reader = link_reader()
    assert reader.feed(link_message(1, 'lo') + link_message(2, 'tap0')) is False
    assert reader.feed(link_message(3, 'br0') + done()) is True
    assert [item['name'] for item in reader.items] == ['lo', 'tap0', 'br0']
    assert reader.interrupted is False


def test_dump_skips_other_sequence_numbers_and_types():
    reader = link_reader(seq=5)
    data = (link_message(1, 'stale', seq=4) + nlmsg(RTM_NEWADDR, ifaddrmsg(2, 8, 1), seq=5)
            + link_message(2, 'tap0', seq=5) + done(seq=5))
    assert reader.feed(memoryview(bytearray(data))) is True
    assert [item['name'] for item in reader.items] == ['tap0']


def test_dump_interrupted_flag():
    reader = link_reader()
    reader.feed(link_message(1, 'lo', flags=NLM_F_MULTI | NLM_F_DUMP_INTR) + done())
    assert reader.interrupted is True


@pytest.mark.parametrize('data, code', [
    pytest.param(error(code=-errno.EPERM), errno.EPERM, id='NLMSG_ERROR'),
    pytest.param(link_message(1, 'lo') + done(code=-errno.EINTR), errno.EINTR, id='error in NLMSG_DONE'),
    pytest.param(nlmsg(4, b''), errno.ENOBUFS, id='NLMSG_OVERRUN'),
    pytest.param(link_message(1, 'lo')[:-4], errno.EBADMSG, id='message longer than the buffer'),
    pytest.param(nlmsg(RTM_NEWLINK, ifinfomsg(1, 0) + struct.pack('=HH', 2, IFLA_IFNAME)),
                 errno.EBADMSG, id='attribute shorter than its header'),
    pytest.param(nlmsg(RTM_NEWLINK, ifinfomsg(1, 0, nla(IFLA_MTU, u8(1)))),
                 errno.EBADMSG, id='number shorter than its type'),
    pytest.param(nlmsg(RTM_NEWLINK, b'\0' * 8), errno.EBADMSG, id='no ifinfomsg'),
])
def test_dump_errors(data, code):
    with pytest.raises(OSError) as caught:
        link_reader().feed(data)
    assert caught.value.errno == code


def test_netlink_error_names_the_dump():
    with pytest.raises(OSError, match='RTM_GETLINK dump: '):
        link_reader().feed(error(code=-errno.EACCES))


def test_ack_is_not_an_error():
    reader = link_reader()
    assert reader.feed(error(code=0) + link_message(1, 'lo') + done()) is True
    assert len(reader.items) == 1


@pytest.mark.parametrize('msg_type, body', [
    (RTM_GETLINK, struct.pack('=BxHiII', 0, 0, 0, 0, 0) + struct.pack('=HHI', 8, IFLA_EXT_MASK, 1 << 3)),
    (RTM_GETADDR, struct.pack('=BBBBI', 0, 0, 0, 0, 0)),
])
def test_dump_request(msg_type, body):
    request = rtnl_snapshot.dump_request(msg_type, 77)
    assert request == struct.pack('=IHHII', 16 + len(body), msg_type, 0x301, 77, 0) + body


def test_dump_request_refuses_other_types():
    with pytest.raises(ValueError):
        rtnl_snapshot.dump_request(RTM_NEWLINK, 1)


class FakeSocket:
    """Answers each request with the next list of buffers, recorded like a netlink socket."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.pending = []
        self.sent = []
        self.closed = False

    def send(self, data):
        self.sent.append(struct.unpack_from('=IHHII', data))
        self.pending = list(self.replies.pop(0))
        return len(data)

    def recv_into(self, buffer, size, flags):
        assert flags & socket.MSG_TRUNC
        chunk = self.pending.pop(0)
        buffer[:len(chunk)] = chunk
        assert len(chunk) <= size
        return len(chunk)

    def close(self):
        self.closed = True


def test_read_dump_reads_an_interrupted_dump_again():
    sock = FakeSocket([
        [link_message(1, 'lo', seq=3, flags=NLM_F_MULTI | NLM_F_DUMP_INTR), done(seq=3)],
        [link_message(1, 'lo', seq=4), link_message(2, 'tap0', seq=4) + done(seq=4)],
    ])
    items, seq = rtnl_snapshot.read_dump(sock, rtnl_snapshot._receiver(sock), RTM_GETLINK,
                                         rtnl_snapshot.decode_link, 'RTM_GETLINK dump', 3)
    assert [item['name'] for item in items] == ['lo', 'tap0']
    assert seq == 5
    assert [sent[3] for sent in sock.sent] == [3, 4]


def test_read_dump_gives_up_after_its_backoff_budget():
    clock = FakeClock()
    budget = 0.05  # 1 + 2 + 4 + 8 + 16 ms, then the 19 ms left: 7 reads
    sock = FakeSocket([[link_message(1, 'lo', seq=seq, flags=NLM_F_MULTI | NLM_F_DUMP_INTR), done(seq=seq)]
                       for seq in range(1, 8)])
    with pytest.raises(OSError) as caught:
        rtnl_snapshot.read_dump(sock, lambda: sock.pending.pop(0), RTM_GETLINK,
                                rtnl_snapshot.decode_link, 'RTM_GETLINK dump', 1,
                                backoff=rtnl_snapshot.Backoff(budget=budget), clock=clock,
                                sleep=clock.sleep, draw=lambda: 0.0)
    assert caught.value.errno == errno.EAGAIN
    assert 'RTM_GETLINK dump: interrupted by concurrent changes 7 times in a row over 0.1 s' in str(caught.value)
    assert [sent[3] for sent in sock.sent] == list(range(1, 8))
    assert clock.now == pytest.approx(budget)


class FakeClock:
    """time.monotonic and time.sleep: sleeping moves the clock."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_read_snapshot(monkeypatch):
    links = [nlmsg(RTM_NEWLINK, body, seq=1) for body in (VETH_WITH_MASTER, BRIDGE_WITH_STP, TAP_WITH_OWNER)]
    addresses = [nlmsg(RTM_NEWADDR, body, seq=2) for body in (
        ifaddrmsg(socket.AF_INET6, 64, 7, nla(IFA_ADDRESS, V6)),
        ifaddrmsg(socket.AF_INET, 24, 7, nla(IFA_LOCAL, bytes([192, 0, 2, 1]))),
        ifaddrmsg(socket.AF_INET6, 64, 7, nla(IFA_ADDRESS, socket.inet_pton(socket.AF_INET6, 'fe80::1'))),
        ifaddrmsg(socket.AF_INET, 24, 99, nla(IFA_LOCAL, bytes([192, 0, 2, 9]))),  # no such link
    )]
    sock = FakeSocket([[b''.join(links[:2]), links[2] + done(seq=1)], [b''.join(addresses) + done(seq=2)]])
    monkeypatch.setattr(rtnl_snapshot, 'open_socket', lambda: sock)

    snapshot = rtnl_snapshot.read_snapshot()

    assert sock.closed
    assert [(sent[1], sent[3]) for sent in sock.sent] == [(RTM_GETLINK, 1), (RTM_GETADDR, 2)]
    assert sorted(snapshot) == ['br-guests', 'tap0', 'veth-lan1']
    assert snapshot['veth-lan1']['master'] == 'br-guests'
    assert snapshot['tap0']['master'] is None
    assert snapshot['br-guests']['addresses'] == ['192.0.2.1/24', '2001:db8::1:0:0:5/64']
    assert snapshot['tap0']['addresses'] == []


def test_read_snapshot_closes_the_socket_on_error(monkeypatch):
    sock = FakeSocket([[error(seq=1, code=-errno.EPERM)]])
    monkeypatch.setattr(rtnl_snapshot, 'open_socket', lambda: sock)
    with pytest.raises(OSError):
        rtnl_snapshot.read_snapshot()
    assert sock.closed


@pytest.mark.parametrize('links, addresses, expected', [
    pytest.param([], [], {}, id='empty'),
    pytest.param(
        [{'name': 'br0', 'ifindex': 2, 'master_index': 0, 'addresses': [], 'dynamic': {}, 'autoconf': {}},
         {'name': 'tap0', 'ifindex': 3, 'master_index': 2, 'addresses': [], 'dynamic': {}, 'autoconf': {}},
         {'name': 'tap1', 'ifindex': 4, 'master_index': 8, 'addresses': [], 'dynamic': {}, 'autoconf': {}}],
        [(2, '192.0.2.1/24', None, None), (2, '10.0.0.1/8', {'valid': 60, 'preferred': 30}, None),
         (2, 'fd00:10::1/64', {'valid': 60, 'preferred': 30}, 'slaac'),
         (2, 'fd00:10::99/64', {'valid': 60, 'preferred': 30}, 'temporary'),
         (5, '198.51.100.1/24', None, None)],
        {'br0': {'name': 'br0', 'ifindex': 2, 'master_index': 0, 'master': None,
                 'addresses': ['10.0.0.1/8', '192.0.2.1/24'],
                 'dynamic': {'10.0.0.1/8': {'valid': 60, 'preferred': 30}},
                 'autoconf': {'fd00:10::1/64': 'slaac', 'fd00:10::99/64': 'temporary'}},
         'tap0': {'name': 'tap0', 'ifindex': 3, 'master_index': 2, 'master': 'br0', 'addresses': [], 'dynamic': {},
                  'autoconf': {}},
         'tap1': {'name': 'tap1', 'ifindex': 4, 'master_index': 8, 'master': None, 'addresses': [], 'dynamic': {},
                  'autoconf': {}}},
        id='masters by index, addresses sorted, lifetimes kept, kernel-made apart, unknown index dropped'),
])
def test_snapshot_from(links, addresses, expected):
    assert rtnl_snapshot.snapshot_from(links, addresses) == expected
