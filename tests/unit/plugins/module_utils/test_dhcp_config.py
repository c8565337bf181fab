# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""guest_dhcp: the request's validation (every error at once, naming the path) and the three
dnsmasq files rendered from it."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._dhcp import dhcp_config

VM1 = {'mac': '52:54:00:00:03:0A', 'address': '192.168.3.10', 'name': 'vm1'}
VM2 = {'mac': '52:54:00:00:05:0b', 'address': '192.168.5.10', 'name': 'vm2'}
PARAMS = {
    'state': 'present',
    'networks': [
        {'interface': 'tap0', 'address': '192.168.3.1/24', 'range': None, 'hosts': [VM1]},
        {'interface': 'br0', 'address': '192.168.5.1/24', 'range': ['192.168.5.100', '192.168.5.150'],
         'hosts': [VM2]},
    ],
    'domain': 'qemu.internal', 'host_name': 'hv2', 'resolvers': None, 'lease_time': '1h',
    'service': 'process', 'config_dir': '/etc/ttq', 'runtime_dir': '/run/ttq',
    'lease_file': '/var/lib/ttq/leases', 'unit_dir': '/etc/systemd/system', 'firewall': True,
    'foreign_input': 'ignore', 'allow_missing_interface': False, 'dnsmasq': None,
}


def params(**changes):
    result = copy.deepcopy(PARAMS)
    for path, value in changes.items():
        target = result
        keys = path.split('__')
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        last = keys[-1]
        target[int(last) if last.isdigit() else last] = value
    return result


def request(**changes):
    parsed, errors = dhcp_config.parse_request(params(**changes))
    assert errors == []
    return parsed


def test_valid_request():
    parsed = request()
    assert parsed.wanted
    assert [network.interface for network in parsed.networks] == ['tap0', 'br0']
    assert parsed.networks[0].hosts[0].mac == '52:54:00:00:03:0a'
    assert parsed.networks[1].range == ('192.168.5.100', '192.168.5.150')
    assert parsed.networks[1].netmask == '255.255.255.0'


def test_no_networks_is_not_wanted():
    assert not request(networks=[]).wanted
    assert not request(state='absent').wanted


@pytest.mark.parametrize('changes, expected', [
    ({'networks__0__interface': 'a/b'}, ["networks[0].interface: interface name 'a/b' contains '/'"]),
    ({'networks__0__address': '192.168.3.1'}, ["networks[0].address: '192.168.3.1' is not an interface address"]),
    ({'networks__0__address': '192.168.3.0/24'}, ['networks[0].address: \'192.168.3.0/24\' is the network address']),
    ({'networks__0__address': 'fd00::1/64'}, ['networks[0].address: \'fd00::1/64\' is not IPv4']),
    ({'networks__0__hosts__0__address': '192.168.4.10'},
     ['networks[0].hosts[0].address: 192.168.4.10 is not a host address of 192.168.3.0/24']),
    ({'networks__0__hosts__0__address': '192.168.3.255'},
     ['networks[0].hosts[0].address: 192.168.3.255 is not a host address']),
    ({'networks__0__hosts__0__address': '192.168.3.1'},
     ['networks[0].hosts[0].address: 192.168.3.1 is the address of tap0 itself']),
    ({'networks__0__hosts__0__address': 'x'}, ["networks[0].hosts[0].address: 'x' is not an IP address"]),
    ({'networks__0__hosts__0__mac': '01:00:5e:00:00:01'}, ['networks[0].hosts[0].mac: \'01:00:5e:00:00:01\' is a multicast MAC']),
    ({'networks__0__hosts__0__name': 'vm_1'}, ["networks[0].hosts[0].name: 'vm_1' is not a DNS label"]),
    ({'networks__0__hosts__0__name': '-vm'}, ["networks[0].hosts[0].name: '-vm' is not a DNS label"]),
    ({'networks__1__range': ['192.168.5.5', '192.168.5.20']},
     ['networks[1].range: 192.168.5.5-192.168.5.20 holds 192.168.5.10, the planned address of a guest']),
    ({'networks__1__range': ['192.168.5.1', '192.168.5.2']},
     ['networks[1].range: 192.168.5.1-192.168.5.2 holds 192.168.5.1, the address of br0']),
    ({'networks__1__range': ['192.168.5.200', '192.168.6.20']},
     ['networks[1].range: 192.168.5.200-192.168.6.20 is not inside the host addresses of 192.168.5.0/24']),
    ({'networks__1__range': ['192.168.5.150', '192.168.5.100']},
     ['networks[1].range: 192.168.5.150 comes after 192.168.5.100']),
    ({'networks__1__range': ['192.168.5.100']}, ["networks[1].range: ['192.168.5.100'] is not [FIRST, LAST]"]),
    ({'networks__1__hosts__0__mac': '52:54:00:00:03:0a'},
     ["networks[1].hosts[0].mac: MAC '52:54:00:00:03:0a' is listed twice (also at networks[0].hosts[0].mac)"]),
    ({'networks__1__hosts__0__name': 'VM1'},
     ["networks[1].hosts[0].name: name 'vm1' is listed twice (also at networks[0].hosts[0].name)"]),
    ({'networks__1__interface': 'tap0'}, ["networks[].interface[1]: 'tap0' is listed twice"]),
    ({'domain': 'qemu..internal'}, ["domain: 'qemu..internal' is not a DNS name"]),
    ({'domain': 'qemu_internal'}, ["domain: 'qemu_internal' is not a DNS name"]),
    ({'host_name': 'vm1'}, ["host_name: 'vm1' is also the name of a guest"]),
    ({'host_name': 'hv 2'}, ["host_name: 'hv 2' is not a DNS label"]),
    ({'lease_time': '1 hour'}, ["lease_time: '1 hour' is not a dnsmasq lease time"]),
    ({'resolvers': ['10.0.0.20', 'dns.example']}, ["resolvers[1]: 'dns.example' is not an IP address"]),
])
def test_refused(changes, expected):
    _parsed, errors = dhcp_config.parse_request(params(**changes))
    assert len(errors) == len(expected), errors
    for error, start in zip(errors, expected):
        assert error.startswith(start), error


def test_every_error_at_once():
    _parsed, errors = dhcp_config.parse_request(params(
        networks__1__range=['192.168.5.5', '192.168.5.20'], networks__1__hosts__0__mac='52:54:00:00:03:0a',
        domain='bad_domain'))
    assert len(errors) == 3


def test_duplicate_address_across_networks_on_bad_network_still_found():
    # A host of a network that has other errors still counts for the duplicates.
    _parsed, errors = dhcp_config.parse_request(params(
        networks__1__address='bad', networks__1__hosts__0__mac='52:54:00:00:03:0a'))
    assert any('listed twice' in error for error in errors)


CONFIG = '''\
# Managed by tuntap.qemu (module guest_dhcp); local changes are overwritten.
# DHCP with static leases and DNS names for the QEMU guests on the internal interfaces.
# Sockets only on the interfaces below (bind-dynamic: never the wildcard address, and
# interfaces or addresses that come later are picked up), never lo or the uplink.
bind-dynamic
interface=tap0
interface=br0
except-interface=lo
# Names from our files only, not /etc/hosts; the domain is answered here and never
# forwarded; the host name resolves to the address of the interface asked on.
no-hosts
addn-hosts=/etc/ttq/names
domain=qemu.internal
local=/qemu.internal/
domain-needed
bogus-priv
localise-queries
resolv-file=/etc/resolv.conf
# Static leases (dhcp-host lines) from the plan; SIGHUP rereads them and the names.
dhcp-hostsfile=/etc/ttq/hosts
dhcp-leasefile=/var/lib/ttq/leases
dhcp-authoritative
pid-file=/run/ttq/dnsmasq.pid
user=dnsmasq
# tap0 192.168.3.0/24
dhcp-range=set:ttq0,192.168.3.0,static,255.255.255.0,1h
dhcp-option=tag:ttq0,option:router,192.168.3.1
dhcp-option=tag:ttq0,option:dns-server,192.168.3.1
# br0 192.168.5.0/24
dhcp-range=set:ttq1,192.168.5.0,static,255.255.255.0,1h
dhcp-range=set:ttq1,192.168.5.100,192.168.5.150,255.255.255.0,1h
dhcp-option=tag:ttq1,option:router,192.168.5.1
dhcp-option=tag:ttq1,option:dns-server,192.168.5.1
'''


def test_render_config():
    parsed = request()
    assert dhcp_config.render_config(parsed, parsed.path('hosts'), parsed.path('names'), 'dnsmasq') == CONFIG


@pytest.mark.parametrize('resolvers, lines, absent', [
    (None, ['resolv-file=/etc/resolv.conf'], ['no-resolv']),
    ([], ['no-resolv'], ['resolv-file=/etc/resolv.conf', 'server=']),
    (['10.0.0.20', '9.9.9.9'], ['no-resolv', 'server=10.0.0.20', 'server=9.9.9.9'], ['resolv-file=']),
])
def test_render_resolvers(resolvers, lines, absent):
    parsed = request(resolvers=resolvers)
    text = dhcp_config.render_config(parsed, '/h', '/n', 'dnsmasq').splitlines()
    for line in lines:
        assert line in text
    for start in absent:
        assert not [line for line in text if line.startswith(start)]


def test_render_without_dnsmasq_user_runs_as_root():
    parsed = request()
    text = dhcp_config.render_config(parsed, '/h', '/n', None)
    assert 'user=root' in text.splitlines()
    assert 'user=dnsmasq' not in text


def test_never_a_wildcard_socket_nor_lo():
    text = dhcp_config.render_config(request(), '/h', '/n', 'dnsmasq').splitlines()
    assert 'bind-dynamic' in text and 'except-interface=lo' in text
    assert not [line for line in text if line.startswith(('interface=lo', 'listen-address=0.0.0.0'))]


def test_render_hosts_and_names():
    parsed = request()
    assert dhcp_config.render_hosts(parsed).splitlines()[1:] == [
        '52:54:00:00:03:0a,192.168.3.10,vm1', '52:54:00:00:05:0b,192.168.5.10,vm2']
    assert dhcp_config.render_names(parsed).splitlines()[1:] == [
        '192.168.3.1 hv2.qemu.internal hv2', '192.168.3.10 vm1.qemu.internal vm1',
        '192.168.5.1 hv2.qemu.internal hv2', '192.168.5.10 vm2.qemu.internal vm2']
    for text in (dhcp_config.render_hosts(parsed), dhcp_config.render_names(parsed)):
        assert text.startswith(dhcp_config.MARK)


def test_names_without_host_name():
    assert 'hv2' not in dhcp_config.render_names(request(host_name=None))


@pytest.mark.parametrize('held, allow, expected', [
    ({'tap0': ['192.168.3.1/24'], 'br0': ['192.168.5.1/24']}, False, []),
    ({'tap0': ['192.168.3.1/24']}, False, ['networks[1].interface: br0 does not exist']),
    ({'tap0': ['192.168.3.1/24'], 'br0': []}, False,
     ['networks[1].address: br0 does not hold 192.168.5.1/24 (it has no IPv4 address)']),
    ({'tap0': ['192.168.3.1/25'], 'br0': ['192.168.5.1/24']}, False,
     ['networks[0].address: tap0 does not hold 192.168.3.1/24 (it has 192.168.3.1/25)']),
    ({}, True, []),
])
def test_interface_errors(held, allow, expected):
    errors = dhcp_config.interface_errors(request(allow_missing_interface=allow), held.get)
    assert len(errors) == len(expected), errors
    for error, start in zip(errors, expected):
        assert error.startswith(start)


# ---------------------------------------------------------------- IPv6: RA and AAAA

V6 = {'networks__0__address6': 'fd00:3::1/64', 'networks__0__hosts__0__address6': 'fd00:3::10'}


def test_address6_parsed():
    parsed = request(**V6)
    tap0, br0 = parsed.networks
    assert (tap0.address6, tap0.network6, tap0.interface_address6) == ('fd00:3::1', 'fd00:3::/64', 'fd00:3::1/64')
    assert tap0.hosts[0].address6 == 'fd00:3::10'
    assert (br0.address6, br0.network6, br0.hosts[0].address6) == (None, None, None)


@pytest.mark.parametrize('changes, expected', [
    ({'networks__0__address6': 'fd00:3::1/80'},
     ["networks[0].address6: 'fd00:3::1/80' is a /80; router advertisements for SLAAC need exactly a /64"]),
    ({'networks__0__address6': 'fd00:3::/56'},
     ["networks[0].address6: 'fd00:3::/56' is the network address"]),
    ({'networks__0__address6': 'fd00:3::1'}, ["networks[0].address6: 'fd00:3::1' is not an interface address"]),
    ({'networks__0__address6': '192.168.3.1/24'}, ["networks[0].address6: '192.168.3.1/24' is not IPv6"]),
    ({'networks__0__address6': 'fe80::1/64'}, ["networks[0].address6: 'fe80::1/64' is link-local"]),
    ({'networks__0__address6': 'fd00:3::1/64', 'networks__1__address6': 'fd00:3::2/64'},
     ["networks[1].address6: IPv6 network 'fd00:3::/64' is listed twice (also at networks[0].address6)"]),
    ({'networks__0__hosts__0__address6': 'fd00:4::10'},
     ['networks[0].hosts[0].address6: fd00:4::10 is not a host address of fd00:3::/64 (the IPv6 subnet of tap0)']),
    ({'networks__0__hosts__0__address6': 'fd00:3::1'},
     ['networks[0].hosts[0].address6: fd00:3::1 is the IPv6 address of tap0 itself']),
    ({'networks__0__hosts__0__address6': 'fd00:3::10/64'},
     ["networks[0].hosts[0].address6: 'fd00:3::10/64' is not an IPv6 address (without prefix)"]),
    ({'networks__0__hosts__0__address6': '192.168.3.10'}, ["networks[0].hosts[0].address6: '192.168.3.10' is not IPv6"]),
    ({'networks__1__hosts__0__address6': 'fd00:3::10'},
     ["networks[1].hosts[0].address6: address 'fd00:3::10' is listed twice (also at networks[0].hosts[0].address6)"]),
])
def test_address6_refused(changes, expected):
    _parsed, errors = dhcp_config.parse_request(params(**dict(V6, **changes)))
    assert len(errors) == len(expected), errors
    for error, start in zip(errors, expected):
        assert error.startswith(start), error


def test_a_host_address6_without_an_advertised_network_is_an_aaaa_only():
    parsed = request(networks__1__hosts__0__address6='fd00:9::10')
    assert parsed.networks[1].hosts[0].address6 == 'fd00:9::10'
    assert 'enable-ra' not in dhcp_config.render_config(parsed, '/h', '/n', 'dnsmasq').splitlines()


def test_render_config_advertises_the_prefix():
    lines = dhcp_config.render_config(request(**V6), '/h', '/n', 'dnsmasq').splitlines()
    assert lines.count('enable-ra') == 1
    assert 'dhcp-range=set:ttq0,fd00:3::,ra-only,64' in lines
    assert [line for line in lines if 'ra-only' in line] == ['dhcp-range=set:ttq0,fd00:3::,ra-only,64']
    # No DHCPv6: no IPv6 range of another mode.
    assert not [line for line in lines if line.startswith('dhcp-range=') and ':' in line.split(',')[1]
                and 'ra-only' not in line]


def test_without_address6_no_router_advertisements():
    text = dhcp_config.render_config(request(), '/h', '/n', 'dnsmasq')
    assert 'enable-ra' not in text and 'ra-only' not in text


def test_names_have_aaaa_records():
    names = dhcp_config.render_names(request(**V6)).splitlines()[1:]
    assert names == [
        '192.168.3.1 hv2.qemu.internal hv2', 'fd00:3::1 hv2.qemu.internal hv2',
        '192.168.3.10 vm1.qemu.internal vm1', 'fd00:3::10 vm1.qemu.internal vm1',
        '192.168.5.1 hv2.qemu.internal hv2', '192.168.5.10 vm2.qemu.internal vm2']
    # The static leases stay IPv4.
    assert 'fd00' not in dhcp_config.render_hosts(request(**V6))


@pytest.mark.parametrize('held, expected', [
    (['192.168.3.1/24', 'fd00:3::1/64', 'fe80::1/64'], []),
    (['192.168.3.1/24', 'fe80::1/64'],
     ['networks[0].address6: tap0 does not hold fd00:3::1/64 (it has fe80::1/64)']),
    (['192.168.3.1/24'], ['networks[0].address6: tap0 does not hold fd00:3::1/64 (it has no IPv6 address)']),
    (['fd00:3::1/64'], ['networks[0].address: tap0 does not hold 192.168.3.1/24 (it has no IPv4 address)']),
])
def test_interface_errors_address6(held, expected):
    addresses = {'tap0': held, 'br0': ['192.168.5.1/24']}
    errors = dhcp_config.interface_errors(request(**V6), addresses.get)
    assert errors == expected
