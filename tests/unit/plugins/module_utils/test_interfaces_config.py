# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rendering of host plans as Debian interfaces.d stanzas, one case per topology."""

from __future__ import annotations

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils import interfaces_config

ROUTED = {
    'topology': 'routed',
    'taps': [{'name': 'tap0', 'user': 'qemu', 'group': None, 'addresses': ['192.168.0.1/24'], 'bridge': None},
             {'name': 'tap1', 'user': 'qemu', 'group': 'kvm', 'addresses': ['192.168.1.1/24', 'fd00:1::1/64'],
              'bridge': None}],
    'bridge': None,
}
BRIDGED_NAT = {
    'topology': 'bridged_nat',
    'taps': [{'name': 'tap0', 'user': None, 'group': None, 'addresses': [], 'bridge': 'br0'}],
    'bridge': {'name': 'br0', 'addresses': ['192.168.100.1/24'], 'ports': ['tap0'], 'uplink': None},
}
BRIDGED_LAN = {
    'topology': 'bridged_lan',
    'taps': [{'name': 'tap0', 'user': 'qemu', 'group': None, 'addresses': [], 'bridge': 'br0'}],
    'bridge': {'name': 'br0', 'addresses': ['10.0.0.14/24'], 'ports': ['tap0', 'eth0'], 'uplink': 'eth0'},
}


@pytest.mark.parametrize('plan, gateway, expected', [
    (ROUTED, None, '''
auto tap0
iface tap0 inet static
    address 192.168.0.1/24
    pre-up ip tuntap add dev tap0 mode tap user qemu
    up ip link set dev tap0 up
    up ip link set dev tap0 alias 'tuntap.qemu:tap'
    post-down ip tuntap del dev tap0 mode tap

auto tap1
iface tap1 inet static
    address 192.168.1.1/24
    pre-up ip tuntap add dev tap1 mode tap user qemu group kvm
    up ip link set dev tap1 up
    up ip link set dev tap1 alias 'tuntap.qemu:tap'
    post-down ip tuntap del dev tap1 mode tap

iface tap1 inet6 static
    address fd00:1::1/64
'''),
    (BRIDGED_NAT, None, '''
auto tap0
iface tap0 inet manual
    pre-up ip tuntap add dev tap0 mode tap
    up ip link set dev tap0 up
    up ip link set dev tap0 alias 'tuntap.qemu:tap'
    post-down ip tuntap del dev tap0 mode tap

auto br0
iface br0 inet static
    address 192.168.100.1/24
    bridge_ports tap0
    bridge_stp off
    bridge_fd 0
    bridge_maxwait 0
    up ip link set dev br0 alias 'tuntap.qemu:bridge'
'''),
    (BRIDGED_LAN, '10.0.0.1', '''
auto eth0
iface eth0 inet manual
    up ip link set dev eth0 up

auto tap0
iface tap0 inet manual
    pre-up ip tuntap add dev tap0 mode tap user qemu
    up ip link set dev tap0 up
    up ip link set dev tap0 alias 'tuntap.qemu:tap'
    post-down ip tuntap del dev tap0 mode tap

auto br0
iface br0 inet static
    address 10.0.0.14/24
    gateway 10.0.0.1
    pre-up ip address flush dev eth0 scope global
    bridge_ports tap0 eth0
    bridge_hw eth0
    bridge_stp off
    bridge_fd 0
    bridge_maxwait 0
    up ip link set dev br0 alias 'tuntap.qemu:bridge uplink=eth0'
'''),
])
def test_render_interfaces(plan, gateway, expected):
    text = interfaces_config.render_interfaces(plan, gateway)
    header = interfaces_config.HEADER.format(topology=plan['topology'])
    assert text == header + expected


def test_gateway_only_for_the_bridged_lan_bridge():
    assert 'gateway' not in interfaces_config.render_interfaces(BRIDGED_NAT, '10.0.0.1')
