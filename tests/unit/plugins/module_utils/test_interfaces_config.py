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
    dad-attempts 0
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
    up ip -6 address flush dev eth0 scope global
    up ip -6 route flush dev eth0 proto ra
    up ip -6 route show dev eth0 proto kernel | awk '$1 !~ /^fe80:/ {print $1}' | xargs -r -n1 ip -6 route del dev eth0 proto kernel
'''),
])
def test_render_interfaces(plan, gateway, expected):
    text = interfaces_config.render_interfaces(plan, gateway)
    header = interfaces_config.HEADER.format(topology=plan['topology'])
    assert text == header + expected


def test_gateway_only_for_the_bridged_lan_bridge():
    assert 'gateway' not in interfaces_config.render_interfaces(BRIDGED_NAT, '10.0.0.1')


BRIDGED_LAN_DHCP = {
    'topology': 'bridged_lan',
    'taps': [],
    'bridge': {'name': 'br0', 'addresses': [], 'ports': ['eth0'], 'uplink': 'eth0', 'gateway': None,
               'readdress': False, 'dhcp': True},
}
CARRY = {'uplink': 'eth0', 'method': 'static', 'allow': ['allow-hotplug'],
         'bridge_options': [['mtu', '9000'], ['dns-nameservers', '10.44.0.1']],
         'port_options': [['mtu', '9000']],
         'inet6': [{'method': 'static', 'options': [['address', '2001:db8::50/64']]}, {'method': 'auto', 'options': []}],
         'warnings': []}


@pytest.mark.parametrize('plan, carry, expected', [
    pytest.param(BRIDGED_LAN_DHCP, None, """
auto eth0
iface eth0 inet manual
    up ip link set dev eth0 up

auto br0
iface br0 inet dhcp
    pre-up ip address flush dev eth0 scope global
    bridge_ports eth0
    bridge_hw eth0
    bridge_stp off
    bridge_fd 0
    bridge_maxwait 0
    up ip link set dev br0 alias 'tuntap.qemu:bridge uplink=eth0 dhcp'
    up ip -6 address flush dev eth0 scope global
    up ip -6 route flush dev eth0 proto ra
    up ip -6 route show dev eth0 proto kernel | awk '$1 !~ /^fe80:/ {print $1}' | xargs -r -n1 ip -6 route del dev eth0 proto kernel
""", id='dhcp bridge: inet dhcp, no address, no gateway'),
    pytest.param(dict(BRIDGED_LAN, bridge=dict(BRIDGED_LAN['bridge'], gateway='10.0.0.1')), CARRY, """
auto eth0
iface eth0 inet manual
    mtu 9000
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
    mtu 9000
    dns-nameservers 10.44.0.1
    pre-up ip address flush dev eth0 scope global
    bridge_ports tap0 eth0
    bridge_hw eth0
    bridge_stp off
    bridge_fd 0
    bridge_maxwait 0
    up ip link set dev br0 alias 'tuntap.qemu:bridge uplink=eth0'
    up ip -6 address flush dev eth0 scope global
    up ip -6 route flush dev eth0 proto ra
    up ip -6 route show dev eth0 proto kernel | awk '$1 !~ /^fe80:/ {print $1}' | xargs -r -n1 ip -6 route del dev eth0 proto kernel

iface br0 inet6 static
    address 2001:db8::50/64

iface br0 inet6 auto
""", id='static bridge with the carried options'),
    pytest.param(BRIDGED_LAN_DHCP, dict(CARRY, method='dhcp', inet6=[], port_options=[]), """
auto eth0
iface eth0 inet manual
    up ip link set dev eth0 up

auto br0
iface br0 inet dhcp
    mtu 9000
    dns-nameservers 10.44.0.1
    pre-up ip address flush dev eth0 scope global
    bridge_ports eth0
    bridge_hw eth0
    bridge_stp off
    bridge_fd 0
    bridge_maxwait 0
    up ip link set dev br0 alias 'tuntap.qemu:bridge uplink=eth0 dhcp'
    up ip -6 address flush dev eth0 scope global
    up ip -6 route flush dev eth0 proto ra
    up ip -6 route show dev eth0 proto kernel | awk '$1 !~ /^fe80:/ {print $1}' | xargs -r -n1 ip -6 route del dev eth0 proto kernel
""", id='dhcp bridge with the carried options'),
])
def test_render_dhcp_and_carried(plan, carry, expected):
    text = interfaces_config.render_interfaces(plan, carry=carry)
    assert text == interfaces_config.HEADER.format(topology=plan['topology']) + expected


def test_dhcp_bridge_has_no_gateway_even_when_given():
    assert 'gateway' not in interfaces_config.render_interfaces(BRIDGED_LAN_DHCP, '10.44.0.1')
    plan = dict(BRIDGED_LAN_DHCP, bridge=dict(BRIDGED_LAN_DHCP['bridge'], gateway='10.44.0.1'))
    assert 'gateway' not in interfaces_config.render_interfaces(plan)


def test_carry_is_only_for_a_bridge_that_takes_the_uplink():
    assert interfaces_config.render_interfaces(BRIDGED_NAT, carry=CARRY) == interfaces_config.render_interfaces(BRIDGED_NAT)
    assert interfaces_config.render_interfaces(ROUTED, carry=CARRY) == interfaces_config.render_interfaces(ROUTED)


DUAL_STACK_BRIDGED_NAT = dict(BRIDGED_NAT, bridge=dict(BRIDGED_NAT['bridge'],
                                                       addresses=['192.168.100.1/24', 'fd00:3::1/64']))
V6_ONLY_TAP = {'topology': 'routed', 'bridge': None,
               'taps': [{'name': 'tap0', 'user': None, 'group': None, 'addresses': ['fd00:1::1/64'], 'bridge': None}]}


@pytest.mark.parametrize('plan, stanza', [
    (DUAL_STACK_BRIDGED_NAT, 'iface br0 inet6 static\n    address fd00:3::1/64\n    dad-attempts 0\n'),
    (V6_ONLY_TAP, 'iface tap0 inet6 static\n    address fd00:1::1/64\n    dad-attempts 0\n    pre-up ip tuntap add'),
])
def test_ipv6_addresses_without_dad(plan, stanza):
    """A tap (no carrier before its QEMU) or a bridge (none before a port has one) keeps an
    IPv6 address tentative: ifupdown's settle-dad.sh would fail the interface at boot after 6 s.
    `dad-attempts 0` makes ifupdown add it nodad; IPv4 stanzas have no such line."""
    text = interfaces_config.render_interfaces(plan)
    assert stanza in text
    assert text.count('dad-attempts 0') == 1


def _advertising(plan, *interfaces):
    """The plan with the host's DHCP server advertising IPv6 on `interfaces` (and one network
    without address6, which is not advertised)."""
    networks = [{'interface': name, 'address': '192.168.1.1/24', 'address6': 'fd00:1::1/64'} for name in interfaces]
    networks.append({'interface': 'tap9', 'address': '192.168.9.1/24', 'address6': None})
    return dict(plan, dhcp={'domain': 'qemu.internal', 'networks': networks})


@pytest.mark.parametrize('plan, stanza', [
    (_advertising(DUAL_STACK_BRIDGED_NAT, 'br0'),
     'iface br0 inet6 static\n    address fd00:3::1/64\n    dad-attempts 0\n    accept_ra 0\n'),
    (_advertising(V6_ONLY_TAP, 'tap0'),
     'iface tap0 inet6 static\n    address fd00:1::1/64\n    dad-attempts 0\n    accept_ra 0\n    pre-up ip tuntap add'),
])
def test_an_advertised_ipv6_address_takes_no_router_advertisement(plan, stanza):
    """Where the host's DHCP server advertises the IPv6 network (guest_dhcp sets accept_ra 0
    and autoconf 0 there at runtime), the boot does the same: ifupdown's inet6 static sets
    autoconf 0 by itself but accept_ra only when the stanza names it. Otherwise a host that
    does not forward (isolated) takes its own advertisements after a reboot."""
    text = interfaces_config.render_interfaces(plan)
    assert stanza in text
    assert text.count('accept_ra 0') == 1


def test_no_accept_ra_line_without_an_advertised_network():
    for plan in (DUAL_STACK_BRIDGED_NAT, V6_ONLY_TAP, _advertising(DUAL_STACK_BRIDGED_NAT, 'tap9'),
                 _advertising(V6_ONLY_TAP, 'br0')):
        assert 'accept_ra' not in interfaces_config.render_interfaces(plan)


RA_LINES = ['    up ip -6 address flush dev eth0 scope global',
            '    up ip -6 route flush dev eth0 proto ra',
            "    up ip -6 route show dev eth0 proto kernel | awk '$1 !~ /^fe80:/ {print $1}'"
            ' | xargs -r -n1 ip -6 route del dev eth0 proto kernel']


@pytest.mark.parametrize('plan, carry', [
    pytest.param(BRIDGED_LAN, None, id='static bridge'),
    pytest.param(BRIDGED_LAN_DHCP, None, id='dhcp bridge'),
    pytest.param(dict(BRIDGED_LAN, bridge=dict(BRIDGED_LAN['bridge'], gateway='10.0.0.1')), CARRY, id='carried inet6'),
])
def test_the_port_lets_go_of_its_ra_addresses_and_routes_after_enslaving(plan, carry):
    """bridged_lan on a SLAAC LAN: an uplink up before ifupdown has made its SLAAC address (the
    one br0 makes too: same MAC) and RA routes; the bridge's `up` (the port is enslaved by then,
    bridge-utils' pre-up hook) removes them, in the bridge's inet stanza, once, after bridge_ports;
    the uplink's own stanza and the inet6 stanzas carry none of it."""
    lines = interfaces_config.render_interfaces(plan, carry=carry).splitlines()
    stanza = lines[lines.index('auto br0'):]
    stanza = stanza[:stanza.index('')] if '' in stanza else stanza
    at = [stanza.index(line) for line in RA_LINES]
    assert at == sorted(at) and at[0] > stanza.index('    bridge_ports ' + ' '.join(plan['bridge']['ports']))
    assert all(lines.count(line) == 1 for line in RA_LINES)


@pytest.mark.parametrize('plan', [BRIDGED_NAT, DUAL_STACK_BRIDGED_NAT, ROUTED, V6_ONLY_TAP],
                         ids=['bridged_nat', 'dual-stack bridged_nat', 'routed', 'v6 tap'])
def test_no_ra_lines_without_an_uplink_port(plan):
    assert 'ip -6 ' not in interfaces_config.render_interfaces(plan)


# ---------------------------------------------------------------- isolated guests (issue 13)

ISOLATED_NAT = dict(BRIDGED_NAT, taps=[
    {'name': name, 'user': None, 'group': None, 'addresses': [], 'bridge': 'br0'} for name in ('vm9', 'vm10', 'vm11')],
    bridge=dict(BRIDGED_NAT['bridge'], ports=['vm10', 'vm11', 'vm9'], isolated_ports=['vm10', 'vm11']))
ISOLATED_LAN = dict(BRIDGED_LAN, bridge=dict(BRIDGED_LAN['bridge'], isolated_ports=['tap0']))


@pytest.mark.parametrize('plan, isolated', [
    pytest.param(ISOLATED_NAT, ['vm10', 'vm11'], id='two of three guests'),
    pytest.param(ISOLATED_LAN, ['tap0'], id='bridged_lan: the guest, never the uplink'),
    pytest.param(dict(ISOLATED_NAT, bridge=dict(ISOLATED_NAT['bridge'], isolated_ports=[])), [], id='none'),
    pytest.param(BRIDGED_NAT, [], id='a plan without the key: none'),
])
def test_isolated_ports_in_the_bridge_stanza(plan, isolated):
    """One `up ... bridge_slave isolated on` per isolated port, in the bridge's inet stanza after
    bridge_ports (bridge-utils' pre-up hook enslaved them: the flag is a port's)."""
    lines = interfaces_config.render_interfaces(plan).splitlines()
    flagged = [line for line in lines if 'bridge_slave' in line]
    assert flagged == ['    up ip link set dev %s type bridge_slave isolated on' % port for port in isolated]
    stanza = lines[lines.index('auto br0'):]
    stanza = stanza[:stanza.index('')] if '' in stanza else stanza
    assert all(stanza.index(line) > stanza.index('    bridge_ports ' + ' '.join(plan['bridge']['ports']))
               for line in flagged)


def test_isolated_bridge_stanza_whole():
    text = interfaces_config.render_interfaces(ISOLATED_NAT)
    assert text.endswith('''
auto br0
iface br0 inet static
    address 192.168.100.1/24
    bridge_ports vm10 vm11 vm9
    bridge_stp off
    bridge_fd 0
    bridge_maxwait 0
    up ip link set dev br0 alias 'tuntap.qemu:bridge'
    up ip link set dev vm10 type bridge_slave isolated on
    up ip link set dev vm11 type bridge_slave isolated on
''')
