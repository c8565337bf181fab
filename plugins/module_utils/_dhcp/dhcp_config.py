# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The request of guest_dhcp as typed records, its validation (every error at once), and the
files of our dnsmasq rendered from it: the main configuration, the static leases
(dhcp-hostsfile) and the names (addn-hosts). Pure functions; netaddr only.

IPv6: a network with `address6` (the host's IPv6 address on the interface, exactly /64) is
advertised (enable-ra and an RA-only dhcp-range for its prefix: SLAAC, the host's link-local
address as default router, no DHCPv6); a host's `address6` is an AAAA record of its name.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing

from ansible_collections.tuntap.qemu.plugins.module_utils import names

MARK = '# Managed by tuntap.qemu'
CONF_NAME = 'dnsmasq.conf'
HOSTS_NAME = 'hosts'
NAMES_NAME = 'names'
PIDFILE_NAME = 'dnsmasq.pid'
RA_PREFIXLEN = 64   # SLAAC needs exactly a /64

_LABEL = re.compile(r'^(?!-)[a-z0-9-]{1,63}(?<!-)$', re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Host:
    mac: str
    address: str
    name: str
    address6: typing.Optional[str] = None   # an AAAA record of the name (no prefix)


@dataclasses.dataclass(frozen=True)
class Network:
    interface: str
    address: str          # the interface's address, without prefix
    prefixlen: int
    network: str          # the subnet's network address
    netmask: str
    range: typing.Optional[typing.Tuple[str, str]]
    hosts: typing.Tuple[Host, ...]
    address6: typing.Optional[str] = None   # the interface's IPv6 address, without prefix
    network6: typing.Optional[str] = None   # its /64 in CIDR form: advertised (RA, SLAAC)

    @property
    def cidr(self):
        return '%s/%d' % (self.network, self.prefixlen)

    @property
    def interface_address6(self):
        """'ADDRESS/64' as the interface holds it, or None."""
        return '%s/%d' % (self.address6, RA_PREFIXLEN) if self.address6 else None


@dataclasses.dataclass(frozen=True)
class Request:
    state: str
    networks: typing.Tuple[Network, ...]
    domain: str
    host_name: typing.Optional[str]
    resolvers: typing.Optional[typing.Tuple[str, ...]]
    lease_time: str
    service: str
    config_dir: str
    runtime_dir: str
    lease_file: str
    unit_dir: str
    firewall: bool
    foreign_input: str
    allow_missing_interface: bool
    dnsmasq: typing.Optional[str]

    @property
    def wanted(self):
        """dnsmasq should run: present with at least one network."""
        return self.state == 'present' and bool(self.networks)

    def path(self, name):
        return os.path.join(self.config_dir, name)

    @property
    def pidfile(self):
        return os.path.join(self.runtime_dir, PIDFILE_NAME)

    @property
    def conf_file(self):
        return self.path(CONF_NAME)


def label_error(path, value):
    if not isinstance(value, str) or not _LABEL.match(value):
        return ('%s: %r is not a DNS label (1-63 letters, digits and hyphens, not starting or '
                'ending with a hyphen)' % (path, value))
    return None


def domain_error(path, value):
    if not isinstance(value, str) or not value or len(value) > 253:
        return '%s: %r is not a DNS name' % (path, value)
    bad = [label for label in value.rstrip('.').split('.') if label_error(path, label)]
    if bad or value.startswith('.'):
        return '%s: %r is not a DNS name (bad label %r)' % (path, value, (bad or [''])[0])
    return None


_LEASE_TIME = re.compile(r'^(infinite|\d+[smhdw]?)$')


def parse_request(params):
    """(Request, errors): the module's parameters checked as a whole (nothing read yet)."""
    netaddr = names._netaddr()
    errors = []
    domain = params.get('domain') or 'qemu.internal'
    error = domain_error('domain', domain)
    if error:
        errors.append(error)
    domain = domain.rstrip('.').lower()
    host_name = params.get('host_name')
    if host_name is not None:
        error = label_error('host_name', host_name)
        if error:
            errors.append(error)
    lease_time = str(params.get('lease_time') or '1h')
    if not _LEASE_TIME.match(lease_time):
        errors.append("lease_time: %r is not a dnsmasq lease time (such as 1h, 45m, 3600, "
                      "infinite)" % lease_time)
    resolvers = params.get('resolvers')
    if resolvers is not None:
        for index, resolver in enumerate(resolvers):
            try:
                netaddr.IPAddress(resolver)
            except (netaddr.AddrFormatError, ValueError, TypeError):
                errors.append('resolvers[%d]: %r is not an IP address' % (index, resolver))
        resolvers = tuple(resolvers)
    networks = []
    all_macs, all_addresses, all_names = [], [], []
    networks6 = []
    interfaces = []
    for index, raw in enumerate(params.get('networks') or []):
        network, hosts, net_errors = _parse_network('networks[%d]' % index, raw, netaddr)
        errors += net_errors
        interfaces.append(raw.get('interface'))
        if network is not None:
            networks.append(network)
            if network.network6:
                networks6.append(('networks[%d].address6' % index, network.network6))
        for host_index, host in enumerate(hosts):
            where = 'networks[%d].hosts[%d]' % (index, host_index)
            all_macs.append((where + '.mac', host.mac))
            all_addresses.append((where + '.address', host.address))
            if host.address6 is not None:
                all_addresses.append((where + '.address6', host.address6))
            all_names.append((where + '.name', host.name.lower()))
    errors += names.duplicate_errors('networks[].interface', interfaces)
    errors += _duplicates('IPv6 network', networks6)
    for what, values in (('MAC', all_macs), ('address', all_addresses), ('name', all_names)):
        errors += _duplicates(what, values)
    if host_name is not None and host_name.lower() in [name for _path, name in all_names]:
        errors.append('host_name: %r is also the name of a guest' % host_name)
    request = Request(
        state=params.get('state') or 'present', networks=tuple(networks), domain=domain,
        host_name=host_name, resolvers=resolvers, lease_time=lease_time,
        service=params.get('service') or 'auto', config_dir=params['config_dir'],
        runtime_dir=params['runtime_dir'], lease_file=params['lease_file'],
        unit_dir=params['unit_dir'], firewall=bool(params.get('firewall', True)),
        foreign_input=params.get('foreign_input') or 'ignore',
        allow_missing_interface=bool(params.get('allow_missing_interface')),
        dnsmasq=params.get('dnsmasq'))
    return request, errors


def _duplicates(what, values):
    seen = {}
    errors = []
    for path, value in values:
        if value in seen:
            errors.append('%s: %s %r is listed twice (also at %s)' % (path, what, value, seen[value]))
        else:
            seen[value] = path
    return errors


def _parse_network(path, raw, netaddr):
    errors = []
    interface = raw.get('interface')
    error = names.ifname_error(path + '.interface', interface)
    if error:
        errors.append(error)
    net, error = names.parse_interface_address(path + '.address', raw.get('address'))
    if error:
        errors.append(error)
    elif net.version != 4:
        errors.append('%s.address: %r is not IPv4 (DHCP here is IPv4)' % (path, raw.get('address')))
        net = None
    elif net.prefixlen > 30:
        errors.append('%s.address: %r leaves no room for guests (at most /30)' % (path, raw.get('address')))
        net = None
    net6 = None
    if raw.get('address6') is not None:
        net6 = _parse_address6(path + '.address6', raw['address6'], errors)
    hosts = []
    host_addresses = set()
    for index, host in enumerate(raw.get('hosts') or []):
        where = '%s.hosts[%d]' % (path, index)
        mac, error = names.parse_mac(where + '.mac', host.get('mac'))
        if error:
            errors.append(error)
        error = label_error(where + '.name', host.get('name'))
        if error:
            errors.append(error)
        address = _address(where + '.address', host.get('address'), netaddr, errors)
        if address is not None and net is not None:
            if address not in net or address in (net.network, net.broadcast):
                errors.append('%s.address: %s is not a host address of %s (the subnet of %s)'
                              % (where, address, net.cidr, interface))
            elif address == net.ip:
                errors.append('%s.address: %s is the address of %s itself' % (where, address, interface))
        if address is not None:
            host_addresses.add(address)
        address6 = None
        if host.get('address6') is not None:
            address6 = _host_address6(where + '.address6', host['address6'], net6, interface,
                                      netaddr, errors)
        hosts.append(Host(mac or str(host.get('mac')), str(address) if address else str(host.get('address')),
                          str(host.get('name')),
                          str(address6) if address6 else None))
    dhcp_range = None
    if raw.get('range') is not None:
        dhcp_range = _parse_range(path + '.range', raw['range'], net, host_addresses, interface,
                                  netaddr, errors)
    if errors or net is None:
        return None, hosts, errors
    return Network(interface=interface, address=str(net.ip), prefixlen=net.prefixlen,
                   network=str(net.network), netmask=str(net.netmask), range=dhcp_range,
                   hosts=tuple(hosts), address6=str(net6.ip) if net6 is not None else None,
                   network6=str(net6.cidr) if net6 is not None else None), hosts, errors


def _parse_address6(path, value, errors):
    """The interface's IPv6 address with prefix (IPNetwork), or None with an error: IPv6,
    exactly /64 (it is advertised: SLAAC makes addresses only in a /64), not link-local."""
    net, error = names.parse_interface_address(path, value)
    if error:
        errors.append(error)
        return None
    if net.version != 6:
        errors.append('%s: %r is not IPv6 (write the interface\'s IPv6 address with prefix, such as '
                      'fd00:1::1/64)' % (path, value))
        return None
    if net.prefixlen != RA_PREFIXLEN:
        errors.append('%s: %r is a /%d; router advertisements for SLAAC need exactly a /64'
                      % (path, value, net.prefixlen))
        return None
    if net.ip.is_link_local():
        errors.append('%s: %r is link-local; advertise a global or unique local /64' % (path, value))
        return None
    return net


def _host_address6(path, value, net6, interface, netaddr, errors):
    try:
        address = netaddr.IPAddress(value)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        errors.append('%s: %r is not an IPv6 address (without prefix)' % (path, value))
        return None
    if address.version != 6:
        errors.append('%s: %r is not IPv6' % (path, value))
        return None
    if net6 is not None:
        if address not in net6 or address == net6.network:
            errors.append('%s: %s is not a host address of %s (the IPv6 subnet of %s)'
                          % (path, address, net6.cidr, interface))
            return None
        if address == net6.ip:
            errors.append('%s: %s is the IPv6 address of %s itself' % (path, address, interface))
            return None
    return address


def _address(path, value, netaddr, errors):
    try:
        address = netaddr.IPAddress(value)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        errors.append('%s: %r is not an IP address' % (path, value))
        return None
    if address.version != 4:
        errors.append('%s: %r is not IPv4' % (path, value))
        return None
    return address


def _parse_range(path, value, net, host_addresses, interface, netaddr, errors):
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        errors.append('%s: %r is not [FIRST, LAST]' % (path, value))
        return None
    before = len(errors)
    first = _address(path + '[0]', value[0], netaddr, errors)
    last = _address(path + '[1]', value[1], netaddr, errors)
    if len(errors) > before:
        return None
    if first > last:
        errors.append('%s: %s comes after %s' % (path, first, last))
        return None
    if net is None:
        return None
    for address in (first, last):
        if address not in net or address in (net.network, net.broadcast):
            errors.append('%s: %s-%s is not inside the host addresses of %s (the subnet of %s)'
                          % (path, first, last, net.cidr, interface))
            return None
    if first <= net.ip <= last:
        errors.append('%s: %s-%s holds %s, the address of %s' % (path, first, last, net.ip, interface))
    for address in sorted(host_addresses):
        if first <= address <= last:
            errors.append('%s: %s-%s holds %s, the planned address of a guest'
                          % (path, first, last, address))
    return (str(first), str(last))


def tag(index):
    return 'ttq%d' % index


def render_config(request, hosts_file, names_file, user):
    """The main dnsmasq configuration (text)."""
    lines = [
        '%s (module guest_dhcp); local changes are overwritten.' % MARK,
        '# DHCP with static leases and DNS names for the QEMU guests on the internal interfaces.',
        '# Sockets only on the interfaces below (bind-dynamic: never the wildcard address, and',
        '# interfaces or addresses that come later are picked up), never lo or the uplink.',
        'bind-dynamic',
    ]
    lines += ['interface=%s' % network.interface for network in request.networks]
    lines += [
        'except-interface=lo',
        '# Names from our files only, not /etc/hosts; the domain is answered here and never',
        '# forwarded; the host name resolves to the address of the interface asked on.',
        'no-hosts',
        'addn-hosts=%s' % names_file,
        'domain=%s' % request.domain,
        'local=/%s/' % request.domain,
        'domain-needed',
        'bogus-priv',
        'localise-queries',
    ]
    if request.resolvers is None:
        lines += ['resolv-file=/etc/resolv.conf']
    else:
        lines += ['no-resolv'] + ['server=%s' % resolver for resolver in request.resolvers]
    lines += [
        '# Static leases (dhcp-host lines) from the plan; SIGHUP rereads them and the names.',
        'dhcp-hostsfile=%s' % hosts_file,
        'dhcp-leasefile=%s' % request.lease_file,
        'dhcp-authoritative',
        'pid-file=%s' % request.pidfile,
    ]
    if any(network.network6 for network in request.networks):
        lines += [
            '# Router advertisements (SLAAC, the host\'s link-local address as router and DNS',
            '# server) on the networks with an IPv6 prefix below; RA only, no DHCPv6.',
            'enable-ra',
        ]
    if user:
        lines.append('user=%s' % user)
    else:
        lines.append('# No dnsmasq user on this host: dnsmasq keeps running as root.')
        lines.append('user=root')
    for index, network in enumerate(request.networks):
        name = tag(index)
        lines += [
            '# %s %s' % (network.interface, network.cidr),
            'dhcp-range=set:%s,%s,static,%s,%s' % (name, network.network, network.netmask,
                                                   request.lease_time),
        ]
        if network.range:
            lines.append('dhcp-range=set:%s,%s,%s,%s,%s' % (name, network.range[0], network.range[1],
                                                            network.netmask, request.lease_time))
        lines += [
            'dhcp-option=tag:%s,option:router,%s' % (name, network.address),
            'dhcp-option=tag:%s,option:dns-server,%s' % (name, network.address),
        ]
        if network.network6:
            # The prefix is advertised on the interface holding an address in it (checked).
            lines += [
                '# %s %s: router advertisements' % (network.interface, network.network6),
                'dhcp-range=set:%s,%s,ra-only,%d' % (name, network.network6.split('/')[0],
                                                     RA_PREFIXLEN),
            ]
    return '\n'.join(lines) + '\n'


def render_hosts(request):
    """The dhcp-hostsfile: MAC,address,name per guest."""
    lines = ['%s (module guest_dhcp): static leases; local changes are overwritten.' % MARK]
    for network in request.networks:
        for host in network.hosts:
            lines.append('%s,%s,%s' % (host.mac, host.address, host.name))
    return '\n'.join(lines) + '\n'


def render_names(request):
    """The addn-hosts file: every guest, and the host at each interface address."""
    lines = ['%s (module guest_dhcp): names of the guests; local changes are overwritten.' % MARK]
    for network in request.networks:
        if request.host_name:
            for address in (network.address, network.address6):
                if address:
                    lines.append('%s %s.%s %s' % (address, request.host_name, request.domain,
                                                  request.host_name))
        for host in network.hosts:
            for address in (host.address, host.address6):
                if address:
                    lines.append('%s %s.%s %s' % (address, host.name, request.domain, host.name))
    return '\n'.join(lines) + '\n'


def interface_errors(request, addresses_of):
    """The interfaces must exist and hold their address (and address6). addresses_of(name) ->
    list of 'ADDRESS/PREFIX' texts (IPv4 and IPv6, as netaddr writes them), or None when the
    interface does not exist."""
    errors = []
    if request.allow_missing_interface:
        return errors
    for index, network in enumerate(request.networks):
        held = addresses_of(network.interface)
        if held is None:
            errors.append('networks[%d].interface: %s does not exist (allow_missing_interface '
                          'serves it once it appears)' % (index, network.interface))
            continue
        wanted = [('address', '%s/%d' % (network.address, network.prefixlen), 4)]
        if network.address6:
            wanted.append(('address6', network.interface_address6, 6))
        for field, address, version in wanted:
            if address not in held:
                same = [text for text in held if (':' in text) == (version == 6)]
                errors.append('networks[%d].%s: %s does not hold %s (it has %s)'
                              % (index, field, network.interface, address,
                                 ', '.join(same) or 'no IPv%d address' % version))
    return errors
