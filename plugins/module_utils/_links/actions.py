# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The actions of a LinkPlan, applied in order by applying.apply_plan().

Every kind there is:

    Delete(name)                                    delete the link
    Tun(name, mode, owner, group, multi_queue, vnet_hdr)
                                                    create or reconfigure a tap/tun device
    BridgeCreate(name, attrs)                       create a bridge; attrs: stp,
                                                    forward_delay (s), mac
    LinkSet(name, changes)                          set mtu, state, master ('' = release),
                                                    stp, forward_delay, alias (the mark of
                                                    marks.py; '' = none) of an existing link
    PortIsolate(name, isolated)                     set or clear the bridge port flag
                                                    BR_ISOLATED (IFLA_BRPORT_ISOLATED) of
                                                    port `name`: an isolated port forwards
                                                    to no other isolated port of its bridge
    AddrAdd(name, address) / AddrDel(name, address) 'ADDRESS/PREFIX'; AddrAdd(..., nodad=True)
                                                    skips IPv6 duplicate address detection
                                                    (an address this host holds already);
                                                    AddrAdd(..., valid=S, preferred=S) adds
                                                    it with those lifetimes (a DHCP lease
                                                    moved: it stays dynamic)
    AddrDel(..., gone_ok=True)                      and an address already gone is no
                                                    error (one the kernel made itself, which
                                                    may expire or go with its parent)
    RouteReplace(name, route)                       a route (reading.read_routes() dict)
                                                    through `name`, replaced in one step
                                                    (to the bridge on a takeover, back to
                                                    the uplink when the bridge goes)
    RouteDel(name, route)                           a route the kernel learnt from a router
                                                    advertisement (reading.read_ra_routes())
                                                    through `name`; gone already is no error
    Solicit(name)                                   one IPv6 router solicitation from `name`
                                                    (router_solicit.py): the kernel makes
                                                    the link's SLAAC addresses and RA routes
                                                    from the answer
    DhcpMove(name, source, stop, start)             the DHCP client moves from link `source`
                                                    to `name`: the lease file copied, the
                                                    clients `stop` ended by pid, ifupdown's
                                                    dhclient started on `name` if `start`

Each is a frozen dataclass: compared by value (the unit tests compare whole action lists),
and `describe()` says what it does for an error message.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

from ansible_collections.tuntap.qemu.plugins.module_utils._links.reading import describe_route


@dataclasses.dataclass(frozen=True)
class Delete:
    name: str

    def describe(self):
        return 'deleting the link'


@dataclasses.dataclass(frozen=True)
class Tun:
    name: str
    mode: str
    owner: Optional[int]
    group: Optional[int]
    multi_queue: bool
    vnet_hdr: bool

    def describe(self):
        return 'configuring the %s device' % self.mode


@dataclasses.dataclass(frozen=True)
class BridgeCreate:
    name: str
    attrs: Dict[str, Any]

    def describe(self):
        return 'creating the bridge'


@dataclasses.dataclass(frozen=True)
class LinkSet:
    name: str
    changes: Dict[str, Any]

    def describe(self):
        return 'setting %s' % ', '.join('%s=%s' % item for item in sorted(self.changes.items()))


@dataclasses.dataclass(frozen=True)
class PortIsolate:
    name: str
    isolated: bool

    def describe(self):
        return 'isolating the bridge port' if self.isolated else 'ending the isolation of the bridge port'


@dataclasses.dataclass(frozen=True)
class AddrAdd:
    name: str
    address: str
    nodad: bool = False
    valid: Optional[int] = None
    preferred: Optional[int] = None

    def describe(self):
        if self.valid is not None:
            return 'adding address %s (valid_lft %d preferred_lft %d)' % (self.address, self.valid, self.preferred)
        return 'adding address %s' % self.address


@dataclasses.dataclass(frozen=True)
class AddrDel:
    name: str
    address: str
    gone_ok: bool = False

    def describe(self):
        return 'removing address %s' % self.address


@dataclasses.dataclass(frozen=True)
class RouteReplace:
    name: str
    route: Dict[str, Any]

    def describe(self):
        return 'moving route %s' % describe_route(self.route)


@dataclasses.dataclass(frozen=True)
class RouteDel:
    name: str
    route: Dict[str, Any]

    def describe(self):
        return 'removing route %s (learnt from a router advertisement)' % describe_route(self.route)


@dataclasses.dataclass(frozen=True)
class Solicit:
    name: str

    def describe(self):
        return 'sending a router solicitation'


@dataclasses.dataclass(frozen=True)
class DhcpMove:
    name: str
    source: str
    stop: Tuple[Any, ...] = ()      # dhcp_client.Client of `source` (or stray ones of `name`)
    start: bool = True

    def describe(self):
        what = ['stopping %s' % ', '.join(client.describe() for client in self.stop)] if self.stop else []
        if self.start:
            what.append('starting dhclient on %s' % self.name)
        return 'moving the DHCP client from %s (%s)' % (self.source, '; '.join(what) or 'nothing to do')
