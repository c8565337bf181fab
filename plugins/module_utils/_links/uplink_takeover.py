# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bridged_lan uplink takeover: the uplink becomes a port of the bridge, and its
addresses and routes move to the bridge (bridge_port uplink=); and its reverse, when the
bridge goes: the uplink gets them back.

Two steps of planning.plan_bridge():

    takeover = prepare(plan, spec, have, desired)   # the check; the bridge's addresses, MAC
    ... the generic bridge actions (the uplink becomes a port) ...
    move(plan, name, takeover, desired)             # routes replaced, then the uplink lets go

and one of planning.remove_bridge(), for a bridge whose mark names the uplink it took over
(marks.py, `tuntap.qemu:bridge uplink=eth0`):

    give_back(plan, name, uplink, routes)           # before the bridge is deleted

Both keep the host reachable the same way: the link that takes the addresses holds them
before the uplink changes its master, the routes move with a replace (no moment without
them), and the link that gave them up loses them last (on the way back: with the bridge).

With readdress, the bridge gets the requested addresses and default route on purpose and the
uplink's own go; without it, the addresses (and gateway) the caller persists must be what the
host really has (uplink_check explains).

With dhcp (the uplink's address is a lease, marked `tuntap.qemu:bridge uplink=eth0 dhcp`) the
addresses move with their remaining lifetimes (they stay dynamic), and then the DHCP client
moves (move_client(): actions.DhcpMove, after the uplink let go of the addresses, so that the
old client's STOP finds nothing to flush): the lease file copied, the uplink's client stopped,
ifupdown's dhclient started on the bridge, which has the uplink's MAC and so gets the same lease.
give_back() moves it the other way, after the bridge let go of the addresses.
plan.dhcp_clients holds the clients of both links, read before planning.

What the kernel made itself from the LAN router's advertisements - SLAAC addresses, their
temporary (privacy) addresses (rtnl_snapshot.autoconf_kind(): the snapshot's `autoconf`, never
in `addresses`) and the RA routes (reading.read_ra_routes()) - is never moved: the bridge
makes its own from the router's answer to a solicitation (Solicit, router_solicit.py) once
the uplink is its port, the uplink its own when it is given back. Moving them would make
static copies that outlive the router's prefix and that nothing renews. But a bridge port
hears the router no longer, and what it still held would route the host's IPv6 to the LAN
through the port, where no answer arrives (the bridge takes every frame): the takeover lets
them go (AddrDel, RouteDel) after the uplink let go of its own addresses, as at boot, where
ifupdown's bridge-utils gives a port no IPv6 address at all (addrgenmode none).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

from ansible_collections.tuntap.qemu.plugins.module_utils._links import uplink_check
from ansible_collections.tuntap.qemu.plugins.module_utils._links import dhcp_client
from ansible_collections.tuntap.qemu.plugins.module_utils._links.actions import (
    AddrAdd, AddrDel, DhcpMove, LinkSet, RouteDel, RouteReplace, Solicit)
from ansible_collections.tuntap.qemu.plugins.module_utils._links.reading import (
    RTPROT_BOOT, RTPROT_RA, describe_route)


@dataclasses.dataclass(frozen=True)
class Takeover:
    """What moves: the uplink (None: no takeover), its addresses (with the lifetimes of the
    dynamic ones), the routes to replace, and whether its DHCP client moves too; what the
    uplink lets go without moving: the kernel's own addresses (`released`, temporary ones
    first: they may go with their SLAAC address) and RA routes (`ra_routes`)."""
    uplink: Optional[str]
    moving: List[str]
    routes: List[Dict[str, Any]]
    readdress: bool
    lifetimes: Dict[str, Dict[str, int]] = dataclasses.field(default_factory=dict)
    dhcp: bool = False
    released: List[str] = dataclasses.field(default_factory=list)
    ra_routes: List[Dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def solicits(self):
        """Whether the uplink heard an IPv6 router: the bridge then asks it at once."""
        return bool(self.released or any(route['proto'] == RTPROT_RA for route in self.ra_routes))


NO_TAKEOVER = Takeover(None, [], [], False)


def prepare(plan, spec, have, desired):
    """Check the takeover and give `desired` the bridge's addresses (and MAC on creation).

    Returns the Takeover, NO_TAKEOVER without an uplink, or None when it is refused (the
    errors are in plan.errors, nothing is planned)."""
    uplink = spec.get('uplink')
    if not uplink:
        return NO_TAKEOVER
    name = spec['name']
    moving = plan.snapshot[uplink]['addresses']
    routes = (spec.get('uplink_routes') or []) if moving else []
    readdress = bool(spec.get('readdress'))
    dhcp = bool(spec.get('dhcp'))
    lifetimes = dict((address, lifetime) for address, lifetime in
                     (plan.snapshot[uplink].get('dynamic') or {}).items() if address in moving)
    autoconf = plan.snapshot[uplink].get('autoconf') or {}
    released = sorted(autoconf, key=lambda address: (autoconf[address] != 'temporary', address))
    ra_routes = list(spec.get('uplink_ra_routes') or [])
    if spec.get('addresses') is not None and not readdress and not dhcp:
        # The addresses (and gateway) the caller persists must be what the host really has:
        # a takeover of other addresses than those written for the boot strands the host at
        # its next reboot (uplink_check explains).
        holder = uplink_check.lan_holder(plan.snapshot, uplink, name)
        held_routes = routes if holder == uplink else (spec.get('bridge_routes') or [])
        _facts, errors = uplink_check.check_uplink(plan.snapshot, held_routes, {
            'name': uplink, 'bridge': name, 'addresses': spec['addresses'],
            'gateway': spec.get('gateway'), 'exact': True}, plan.dhcp_clients)
        if errors:
            plan.errors.extend('uplink: %s; nothing was changed (readdress=true changes the '
                               "host's address on purpose)" % error for error in errors)
            return None
    if readdress:
        # On purpose: the bridge gets the requested addresses and default route; the uplink's
        # own go, and none of its routes move.
        desired['addresses'] = sorted(spec['addresses'])
        gateway = spec.get('gateway')
        routes = []
        if gateway and not any(route['dst'] == 'default' and route['family'] == 4
                               and route.get('gateway') == gateway
                               for route in spec.get('bridge_routes') or []):
            routes = [{'family': 4, 'dst': 'default', 'gateway': gateway, 'metric': None,
                       'proto': RTPROT_BOOT, 'scope': 0, 'onlink': False}]
        if have is None:
            desired['mac'] = plan.snapshot[uplink]['mac']
    elif moving:
        desired['addresses'] = sorted(set(desired['addresses']) | set(moving))
        if have is None:
            # The bridge takes the uplink's MAC: neighbours' ARP caches stay valid.
            desired['mac'] = plan.snapshot[uplink]['mac']
    return Takeover(uplink, moving, routes, readdress, lifetimes, dhcp, released, ra_routes)


def _replace_routes(plan, name, routes):
    """Routes moved onto link `name` with a replace: no moment without them."""
    for route in routes:
        plan.actions.append(RouteReplace(name, route))


def _record_uplink(plan, uplink, before, after, autoconf=None):
    """The uplink's addresses and routes (as `ip route` says them) before and after; with
    autoconf, the kernel's own addresses and RA routes it held before (and not after)."""
    before_view = {'addresses': before[0], 'routes': [describe_route(r) for r in before[1]]}
    after_view = {'addresses': after[0], 'routes': [describe_route(r) for r in after[1]]}
    if autoconf:
        before_view['autoconf'] = {'addresses': autoconf[0],
                                   'routes': [describe_route(r) for r in autoconf[1]]}
        after_view['autoconf'] = {'addresses': [], 'routes': []}
    plan.record(uplink, before_view, after_view)


def move(plan, name, takeover, desired):
    """The route and address moves to bridge `name`, after the uplink became its port; then
    the uplink lets go of the kernel's own addresses and RA routes, and the bridge solicits
    the router."""
    moving, routes, readdress = takeover.moving, takeover.routes, takeover.readdress
    if not (moving or (readdress and routes) or takeover.solicits or takeover.ra_routes):
        return
    # The bridge holds the addresses already (planned before) when the uplink becomes its
    # port; routes move with a replace (no moment without them), then the uplink lets go.
    _replace_routes(plan, name, routes)
    # The kernel's addresses go first: a static address of the same prefix deleted while a
    # SLAAC one is there leaves its prefix route behind with the SLAAC lifetime (the kernel's
    # check_cleanup_prefix_route()); deleted last, it takes its prefix route with it.
    for address in takeover.released:
        plan.actions.append(AddrDel(takeover.uplink, address, gone_ok=True))
    for address in moving:
        plan.actions.append(AddrDel(takeover.uplink, address))
    for route in takeover.ra_routes:
        plan.actions.append(RouteDel(takeover.uplink, route))
    if takeover.solicits:
        plan.actions.append(Solicit(name))
    if moving or takeover.solicits or takeover.ra_routes:
        _record_uplink(plan, takeover.uplink, (moving, [] if readdress else routes), ([], []),
                       (takeover.released, takeover.ra_routes)
                       if takeover.released or takeover.ra_routes else None)
    if moving or (readdress and routes):
        desired['routes'] = [describe_route(r) for r in routes]


def _client_move(plan, source, target):
    """The DhcpMove from `source` to `target` (None when the client runs on target alone),
    and its before/after view for the diff."""
    leaving = tuple(plan.dhcp_clients.get(source) or [])
    running = plan.dhcp_clients.get(target) or []
    if not leaving and running:
        return None
    action = DhcpMove(target, source, leaving, start=not running)
    before = {'on': source if leaving else (target if running else None),
              'clients': [' '.join(client.argv) for client in list(leaving) + list(running)]}
    after = {'on': target, 'clients': [' '.join(client.argv) for client in running] or
             [' '.join(dhcp_client.ifupdown_dhclient_argv(target))]}
    return action, before, after


def move_client(plan, name, takeover):
    """With dhcp: the uplink's DHCP client moves to bridge `name` (after the addresses did);
    nothing when the client runs on the bridge and none on the uplink (moved before)."""
    if not takeover.dhcp:
        return
    move = _client_move(plan, takeover.uplink, name)
    if move is not None:
        plan.actions.append(move[0])
        plan.record_client(move[1], move[2])


def give_back(plan, name, uplink, routes, dhcp=False):
    """The reverse of prepare() + move(), planned before bridge `name` is deleted: the uplink
    gets the bridge's addresses, leaves the bridge, the bridge's routes (read_routes()) move
    to it with a replace, and the bridge's addresses go at once - before the bridge itself,
    whose deletion takes longer.

    Adding first means both links hold the addresses for a moment; releasing the uplink
    before the routes move means its neighbour lookups (ARP, NDP) are answered on the uplink
    itself, not swallowed by the bridge it was a port of. From the release on, the bridge's
    prefix routes (older, so preferred) lead to a bridge without ports: removing its
    addresses right after the route replace ends that window in two netlink requests
    (measured on the real-host stage: 2 lost pings at 10/s when the bridge's deletion ended
    it). The bridge's own SLAAC addresses and RA routes (the kernel's) are not given: they go
    with the bridge, and the uplink, released, solicits the router for its own (Solicit).
    Returns False with an error in plan.errors when the uplink cannot take them back."""
    bridge = plan.snapshot[name]
    link = plan.snapshot.get(uplink)
    if link is None:
        plan.errors.append('%s: the bridge took over the uplink %r (its mark says so), which no '
                           'longer exists; its addresses %s and routes cannot go back; nothing '
                           'was changed' % (name, uplink, ', '.join(bridge['addresses']) or '-'))
        return False
    if link['master'] not in (None, name):
        plan.errors.append('%s: its uplink %r is now a port of %r and cannot take the '
                           "bridge's addresses back; nothing was changed"
                           % (name, uplink, link['master']))
        return False
    giving = [address for address in bridge['addresses'] if address not in link['addresses']]
    dynamic = bridge.get('dynamic') or {}
    for address in giving:
        # The host holds these addresses on the bridge already: without duplicate address
        # detection an IPv6 address is usable on the uplink at once, not after DAD's second.
        # A lease goes back with its remaining lifetime (it stays dynamic).
        lifetime = dynamic.get(address) or {}
        plan.actions.append(AddrAdd(uplink, address, nodad=':' in address, valid=lifetime.get('valid'),
                                    preferred=lifetime.get('preferred')))
    if link['master'] == name:
        plan.actions.append(LinkSet(uplink, {'master': ''}))
    _replace_routes(plan, uplink, routes)
    for address in bridge['addresses']:
        plan.actions.append(AddrDel(name, address))
    if bridge.get('autoconf'):
        # The bridge heard an IPv6 router: the uplink, which hears it again, asks at once.
        plan.actions.append(Solicit(uplink))
    if giving or routes:
        _record_uplink(plan, uplink, (link['addresses'], []),
                       (sorted(set(link['addresses']) | set(giving)), routes))
    if dhcp:
        # The bridge holds no address now: its client's STOP flushes nothing; the uplink's
        # client asks for the same lease (the lease file comes back with it).
        move = _client_move(plan, name, uplink)
        if move is not None:
            plan.actions.append(move[0])
            plan.record_client(move[1], move[2])
    return True
