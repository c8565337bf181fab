# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A router takes no router advertisement of its own: every interface guest_dhcp advertises
(a network with address6) gets net.ipv6.conf.IF.accept_ra = 0 and autoconf = 0 at runtime
(/proc/sys of the module's network namespace), before dnsmasq starts or reloads; and the
addresses the kernel autoconfigured there from our own prefix (global, not permanent:
`dynamic` in `ip -6 addr`) are deleted. Without it, a host with forwarding off makes a stray
SLAAC address from its own RA that no boot brings back (ifupdown's inet6 static sets
accept_ra=0 and autoconf=0): runtime != boot. Permanent addresses and other prefixes are
never touched; an interface that does not exist yet is skipped.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import socket
import typing

PROC_SYS = '/proc/sys'
KEY_PREFIX = 'net.ipv6.conf.'
KEYS = ('accept_ra', 'autoconf')
WANTED = '0'
IFA_FLAGS = 'IFA_FLAGS'
IFA_F_PERMANENT = 0x80
RT_SCOPE_UNIVERSE = 0


@dataclasses.dataclass(frozen=True)
class Address:
    """An IPv6 address of an interface, as the kernel dumps it."""
    interface: str
    address: str
    prefixlen: int
    permanent: bool
    scope: int = RT_SCOPE_UNIVERSE

    @property
    def cidr(self):
        return '%s/%d' % (self.address, self.prefixlen)


@dataclasses.dataclass
class Plan:
    """What changes: sysctl keys {key: (before, '0')} and the addresses to delete."""
    sysctls: typing.Dict[str, typing.Tuple[str, str]]
    delete: typing.List[Address]

    @property
    def changed(self):
        return bool(self.sysctls or self.delete)

    def diff(self):
        before = ['%s = %s' % (key, old) for key, (old, _new) in sorted(self.sysctls.items())]
        after = ['%s = %s' % (key, new) for key, (_old, new) in sorted(self.sysctls.items())]
        before += ['%s %s dynamic' % (address.interface, address.cidr) for address in self.delete]
        return {'before_header': 'runtime (/proc/sys, addresses from our own RA)',
                'after_header': 'runtime (/proc/sys, addresses from our own RA)',
                'before': ''.join(line + '\n' for line in before),
                'after': ''.join(line + '\n' for line in after)}


def advertised(request):
    """[(interface, network6)] of the networks guest_dhcp advertises."""
    return [(network.interface, network.network6) for network in request.networks if network.network6]


def sysctl_key(interface, name):
    return KEY_PREFIX + interface + '.' + name


def key_path(key, proc_sys=PROC_SYS):
    """/proc/sys/net/ipv6/conf/IF/NAME of a key (an interface name may hold a dot: a VLAN)."""
    interface, name = key[len(KEY_PREFIX):].rsplit('.', 1)
    return os.path.join(proc_sys, 'net', 'ipv6', 'conf', interface, name)


def read_sysctls(interfaces, proc_sys=PROC_SYS):
    """{key: value} of accept_ra and autoconf of each interface that exists (no key for one
    that does not)."""
    values = {}
    for interface in interfaces:
        for name in KEYS:
            key = sysctl_key(interface, name)
            try:
                with open(key_path(key, proc_sys), 'r') as handle:
                    values[key] = handle.read().strip()
            except FileNotFoundError:
                pass
    return values


def read_addresses(interfaces):
    """[Address] of the IPv6 addresses of these interfaces, through netlink (pyroute2 0.7 and
    0.9: the u32 IFA_FLAGS attribute, else ifaddrmsg's 8-bit flags)."""
    from pyroute2 import IPRoute  # pylint: disable=import-outside-toplevel
    import netaddr  # pylint: disable=import-outside-toplevel
    found = []
    wanted = set(interfaces)
    with IPRoute() as ipr:
        links = dict((link['index'], link.get_attr('IFLA_IFNAME')) for link in ipr.get_links())
        for message in ipr.get_addr(family=socket.AF_INET6):
            name = links.get(message['index'])
            address = message.get_attr('IFA_ADDRESS')
            if name not in wanted or not address:
                continue
            flags = message.get_attr(IFA_FLAGS)
            if flags is None:
                flags = message['flags']
            found.append(Address(name, str(netaddr.IPAddress(address)), message['prefixlen'],
                                 bool(flags & IFA_F_PERMANENT), message['scope']))
    return found


def plan(networks, sysctls, addresses):
    """Pure. networks: [(interface, network6)]; sysctls: read_sysctls(); addresses: [Address].
    An interface without sysctl keys does not exist: skipped."""
    import netaddr  # pylint: disable=import-outside-toplevel
    changes = {}
    delete = []
    for interface, network6 in networks:
        keys = [sysctl_key(interface, name) for name in KEYS]
        if not any(key in sysctls for key in keys):
            continue
        for key in keys:
            if key in sysctls and sysctls[key] != WANTED:
                changes[key] = (sysctls[key], WANTED)
        prefix = netaddr.IPNetwork(network6)
        for address in addresses:
            if (address.interface == interface and not address.permanent
                    and address.scope == RT_SCOPE_UNIVERSE
                    and netaddr.IPAddress(address.address) in prefix):
                delete.append(address)
    return Plan(changes, delete)


def apply(plan_, proc_sys=PROC_SYS):
    """Sysctls first (no RA of ours is taken after), then the stray addresses."""
    for key in sorted(plan_.sysctls):
        with open(key_path(key, proc_sys), 'w') as handle:
            handle.write(plan_.sysctls[key][1] + '\n')
    if not plan_.delete:
        return
    from pyroute2 import IPRoute  # pylint: disable=import-outside-toplevel
    from pyroute2.netlink.exceptions import NetlinkError  # pylint: disable=import-outside-toplevel
    with IPRoute() as ipr:
        for address in plan_.delete:
            try:
                ipr.addr('del', index=socket.if_nametoindex(address.interface),
                         address=address.address, prefixlen=address.prefixlen)
            except NetlinkError as exc:
                # Expired meanwhile (its lifetime ran out): gone is what we want.
                if getattr(exc, 'code', None) != errno.EADDRNOTAVAIL:
                    raise OSError('%s: deleting %s failed: %s' % (address.interface, address.cidr, exc))
