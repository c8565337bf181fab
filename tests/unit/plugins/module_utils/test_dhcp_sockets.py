# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""guest_dhcp: `ss -H -l -n -u -t -p` lines (captured from dnsmasq, libvirt-style and
systemd-resolved sockets) parsed, and which of them clash with our dnsmasq."""

from __future__ import annotations

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._dhcp import dhcp_sockets

# Captured in a namespace: a libvirt-style dnsmasq (bind-interfaces, virbr0) and one with
# bind-dynamic on br0 (port 5353), then lines of systemd-resolved, a wildcard DHCP server and IPv6.
SS = '''\
udp UNCONN 0      0        192.168.70.1:5353 0.0.0.0:* users:(("dnsmasq",pid=14772,fd=5))
udp UNCONN 0      0       192.168.122.1:53   0.0.0.0:* users:(("dnsmasq",pid=14769,fd=5))
udp UNCONN 0      0         0.0.0.0%br0:67   0.0.0.0:* users:(("dnsmasq",pid=14772,fd=3))
udp UNCONN 0      0      0.0.0.0%virbr0:67   0.0.0.0:* users:(("dnsmasq",pid=14769,fd=3))
tcp LISTEN 0      32      192.168.122.1:53   0.0.0.0:* users:(("dnsmasq",pid=14769,fd=6))
tcp LISTEN 0      32       192.168.70.1:5353 0.0.0.0:* users:(("dnsmasq",pid=14772,fd=6))
udp UNCONN 0      0       127.0.0.53%lo:53   0.0.0.0:* users:(("systemd-resolve",pid=512,fd=13))
tcp LISTEN 0      4096    127.0.0.54:53      0.0.0.0:* users:(("systemd-resolve",pid=512,fd=16))
udp UNCONN 0      0             0.0.0.0:67   0.0.0.0:* users:(("dhcpd",pid=900,fd=7))
udp UNCONN 0      0                [::]:53      [::]:* users:(("named",pid=901,fd=20),("named",pid=901,fd=21))
tcp LISTEN 0      10                  *:53         *:*
udp UNCONN 0      0        [fe80::1]%br0:53     [::]:* users:(("other",pid=902,fd=3))
'''


def test_parse_ss():
    sockets = dhcp_sockets.parse_ss(SS)
    assert len(sockets) == 12
    assert sockets[2] == dhcp_sockets.Socket('udp', '0.0.0.0', 'br0', 67, (('dnsmasq', 14772),))
    assert sockets[4] == dhcp_sockets.Socket('tcp', '192.168.122.1', None, 53, (('dnsmasq', 14769),))
    assert sockets[9].address == '::' and sockets[9].processes == (('named', 901), ('named', 901))
    assert sockets[10] == dhcp_sockets.Socket('tcp', '*', None, 53, ())
    assert sockets[11].address == 'fe80::1' and sockets[11].device == 'br0'


def test_parse_ss_one_protocol():
    line = 'UNCONN 0 0 0.0.0.0%virbr0:67 0.0.0.0:* users:(("dnsmasq",pid=7,fd=3))\n'
    assert dhcp_sockets.parse_ss(line, 'udp') == [dhcp_sockets.Socket('udp', '0.0.0.0', 'virbr0', 67, (('dnsmasq', 7),))]
    assert dhcp_sockets.parse_ss('garbage\n\n', 'udp') == []


@pytest.mark.parametrize('line, interfaces, addresses, ours, why', [
    # libvirt's dnsmasq on virbr0, systemd-resolved: no conflict
    ('udp UNCONN 0 0 0.0.0.0%virbr0:67 0.0.0.0:* users:(("dnsmasq",pid=5,fd=3))', {'br0'}, {'192.168.5.1'}, set(), None),
    ('udp UNCONN 0 0 192.168.122.1:53 0.0.0.0:* users:(("dnsmasq",pid=5,fd=5))', {'br0'}, {'192.168.5.1'}, set(), None),
    ('udp UNCONN 0 0 127.0.0.53%lo:53 0.0.0.0:* users:(("systemd-resolve",pid=5,fd=13))', {'br0'}, {'192.168.5.1'}, set(), None),
    ('tcp LISTEN 0 4096 127.0.0.54:53 0.0.0.0:* users:(("systemd-resolve",pid=5,fd=16))', {'br0'}, {'192.168.5.1'}, set(), None),
    # another DHCP server on our interface, or on every interface
    ('udp UNCONN 0 0 0.0.0.0%br0:67 0.0.0.0:* users:(("dnsmasq",pid=5,fd=3))', {'br0'}, {'192.168.5.1'}, set(),
     'a DHCP server socket on br0'),
    ('udp UNCONN 0 0 0.0.0.0:67 0.0.0.0:* users:(("dhcpd",pid=5,fd=7))', {'br0'}, {'192.168.5.1'}, set(),
     'a DHCP server socket on every interface (0.0.0.0:67, bound to no device)'),
    # our own dnsmasq is never a conflict
    ('udp UNCONN 0 0 0.0.0.0:67 0.0.0.0:* users:(("dnsmasq",pid=5,fd=3))', {'br0'}, {'192.168.5.1'}, {5}, None),
    ('udp UNCONN 0 0 192.168.5.1:53 0.0.0.0:* users:(("dnsmasq",pid=5,fd=5))', {'br0'}, {'192.168.5.1'}, {5}, None),
    # DNS on our address, on every address, on every address of our interface
    ('udp UNCONN 0 0 192.168.5.1:53 0.0.0.0:* users:(("named",pid=5,fd=5))', {'br0'}, {'192.168.5.1'}, set(),
     'the DNS port udp/53 on 192.168.5.1'),
    ('tcp LISTEN 0 10 0.0.0.0:53 0.0.0.0:* users:(("named",pid=5,fd=5))', {'br0'}, {'192.168.5.1'}, set(),
     'the DNS port tcp/53 on 0.0.0.0 (every address)'),
    ('udp UNCONN 0 0 [::]:53 [::]:* users:(("named",pid=5,fd=5))', {'br0'}, {'192.168.5.1'}, set(),
     'the DNS port udp/53 on :: (every address)'),
    ('udp UNCONN 0 0 0.0.0.0%br0:53 0.0.0.0:* users:(("x",pid=5,fd=5))', {'br0'}, {'192.168.5.1'}, set(),
     'the DNS port udp/53 on 0.0.0.0%br0 (every address)'),
    # DNS on every address of another interface, DNS on another address, another port
    ('udp UNCONN 0 0 0.0.0.0%virbr0:53 0.0.0.0:* users:(("x",pid=5,fd=5))', {'br0'}, {'192.168.5.1'}, set(), None),
    ('udp UNCONN 0 0 192.168.5.2:53 0.0.0.0:* users:(("x",pid=5,fd=5))', {'br0'}, {'192.168.5.1'}, set(), None),
    ('udp UNCONN 0 0 0.0.0.0:68 0.0.0.0:* users:(("dhclient",pid=5,fd=5))', {'br0'}, {'192.168.5.1'}, set(), None),
    ('tcp LISTEN 0 10 0.0.0.0:67 0.0.0.0:* users:(("x",pid=5,fd=5))', {'br0'}, {'192.168.5.1'}, set(), None),
])
def test_conflicts(line, interfaces, addresses, ours, why):
    found = dhcp_sockets.conflicts(dhcp_sockets.parse_ss(line), interfaces, addresses, ours)
    assert [conflict.why for conflict in found] == ([why] if why else [])


def test_conflict_error_names_the_process():
    sockets = dhcp_sockets.parse_ss('udp UNCONN 0 0 0.0.0.0%br0:67 0.0.0.0:* users:(("dnsmasq",pid=77,fd=3))')
    conflict, = dhcp_sockets.conflicts(sockets, {'br0'}, set(), set())
    text = dhcp_sockets.conflict_error(conflict, {77: '/usr/sbin/dnsmasq --interface=br0'}.get)
    assert text.startswith('process 77 (dnsmasq: /usr/sbin/dnsmasq --interface=br0) holds a DHCP server socket on br0')


def test_conflict_without_a_process_name():
    conflict, = dhcp_sockets.conflicts(dhcp_sockets.parse_ss('tcp LISTEN 0 10 *:53 *:*'), {'br0'}, set(), set())
    assert conflict.pid is None
    assert 'could not name' in dhcp_sockets.conflict_error(conflict, lambda pid: None)
