# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed records of the planner: what was read of a host and its guests, and the result of
resolving a guest's address. Records are frozen; a step that derives something (a pool's
address) returns new records instead of changing the ones it was given."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Tuple

from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import schema


class Problems(object):
    """Errors of the whole fleet, each '<host>: <path>: <what>', listed by host."""

    def __init__(self):
        self._items = []

    def add(self, host, text):
        self._items.append((host, len(self._items), '%s: %s' % (host, text)))

    def for_host(self, host):
        """An error(text) function for one host."""
        return lambda text: self.add(host, text)

    def __bool__(self):
        return bool(self._items)

    def lines(self):
        return [text for _host, _seq, text in sorted(self._items)]


@dataclasses.dataclass(frozen=True)
class Forward:
    """One entry of a guest's forwards: host port -> guest port (protocol, source networks)."""
    path: str                       # tuntap_qemu_guests[N].forwards[M], for messages
    port: int
    guest_port: int
    protocol: str = 'tcp'
    source: Optional[Tuple[str, ...]] = None


@dataclasses.dataclass(frozen=True)
class Guest:
    """One entry of tuntap_qemu_guests as read (and, from a pool, completed)."""
    index: int
    path: str                       # tuntap_qemu_guests[N], for messages
    valid_entry: bool = False       # a mapping (else nothing more was read)
    name: Optional[str] = None
    tap: Optional[str] = ''         # None: a VDE guest (on the switch, no tap of its own)
    user: Any = None
    group: Any = None
    run_as: Any = None
    mac: Optional[str] = None
    mac_given: Optional[str] = None
    net: Any = None                 # netaddr.IPNetwork of its address (given or planned)
    address_given: Optional[str] = None
    gateway_given: Optional[str] = None
    net6: Any = None                # netaddr.IPNetwork of its IPv6 address6 (given or planned)
    address6_given: Optional[str] = None
    slaac: bool = False             # net6 is the SLAAC address its kernel makes (EUI-64 of its MAC)
    options: Tuple = ()             # (key, value) of the qemu_guest options given
    dhcp: bool = True               # dhcp: false keeps it static (no lease, no name)
    forwards: Tuple[Forward, ...] = ()
    isolated: bool = False          # its tap is an isolated port of the shared bridge (BR_ISOLATED)
    vde: bool = False               # on the host's VDE switch instead of a tap of its own
    derived: Tuple[str, ...] = ()   # what the plan filled in

    @property
    def label(self):
        return self.name if self.name is not None else self.path

    def with_derived(self, key, **changes):
        return dataclasses.replace(self, derived=self.derived + (key,), **changes)


@dataclasses.dataclass(frozen=True)
class Vde:
    """tuntap_qemu_vde as read: the switch's tap and the host side of the VDE subnet on it."""
    tap: str
    net: Any                        # netaddr.IPNetwork of its address (the VDE guests' gateway)
    net6: Any = None                # netaddr.IPNetwork of its address6, or None
    group: Optional[str] = None     # the group that may connect to the switch's socket
    runtime_dir: str = schema.DEFAULT_VDE_RUNTIME_DIR  # tuntap_qemu_vde_runtime_dir

    @property
    def socket(self):
        return '%s/%s.ctl' % (self.runtime_dir.rstrip('/') or '', self.tap)

    @property
    def mode(self):
        return '0770' if self.group is not None else '0700'


@dataclasses.dataclass(frozen=True)
class Host:
    """One hypervisor's variables as read; topology is its Topology rule (None when invalid)."""
    host: str
    topology: Any = None
    uplink: str = ''
    uplink_net: Any = None
    uplink_net6: Any = None         # netaddr.IPNetwork of tuntap_qemu_uplink_address6 (static IPv6)
    uplink_gateway: Optional[str] = None
    uplink_readdress: bool = False
    uplink_dhcp: bool = False       # tuntap_qemu_uplink_address: dhcp
    uplink_network: Any = None      # netaddr.IPNetwork of tuntap_qemu_uplink_network (the LAN)
    bridge: Optional[str] = None
    bridge_net: Any = None
    pool: Any = None
    pool_broken: bool = False
    pool6: Any = None               # netaddr.IPNetwork of tuntap_qemu_pool6 (/64s are planned from it)
    pool6_broken: bool = False
    bridge_net6: Any = None         # the bridge's IPv6 address (given, or ::1 of the pool6's first /64)
    bridge_net6_from: Optional[str] = None  # the variable it comes from, for messages
    nat6: bool = False              # tuntap_qemu_nat6: masquerade the IPv6 guest networks (NAT66)
    guest_user: Any = None
    guest_group: Any = None
    guests: Tuple[Guest, ...] = ()
    dhcp: bool = False              # tuntap_qemu_dhcp (default: the topology's)
    dhcp_range: Optional[Tuple[Any, Any]] = None    # (first, last) netaddr.IPAddress
    dns_domain: str = schema.DEFAULT_DNS_DOMAIN
    vde: Optional[Vde] = None       # tuntap_qemu_vde (None: no VDE switch)
    vde_broken: bool = False        # tuntap_qemu_vde is given but invalid (reported once)

    def served_by_dhcp(self, guest):
        """The guest gets a static lease and a name from this host's DHCP server (DHCPv4: an
        IPv6 guest is not served)."""
        return self.dhcp and guest.dhcp and guest.net is not None and guest.net.version == 4

    def served6(self, guest):
        """The guest takes its IPv6 address by SLAAC from this host's router advertisements
        (when the plan gives it none): the host runs its DHCP server and the guest is not static."""
        return self.dhcp and guest.dhcp

    @property
    def advertises6(self):
        """The host sends router advertisements on its internal IPv6 networks (which must then be
        /64: SLAAC)."""
        return self.dhcp

    @property
    def lan(self):
        """(the LAN subnet as an IPNetwork, the variable that names it), or (None, None) when
        the inventory does not know it (a DHCP uplink without tuntap_qemu_uplink_network)."""
        if self.uplink_net is not None:
            return self.uplink_net, schema.UPLINK_ADDRESS
        if self.uplink_network is not None:
            return self.uplink_network, schema.UPLINK_NETWORK
        return None, None


@dataclasses.dataclass(frozen=True)
class Resolved:
    """A guest whose address and gateway fit its topology: the gateway it gets (or None),
    and what was derived on the way."""
    guest: Guest
    gateway: Optional[str]
    gateway6: Optional[str] = None  # the host side of its IPv6 network (None without address6)
