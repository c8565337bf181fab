# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollback steps: pure, (snapshot before the change, state now) -> ordered Steps.

    steps = plan_rollback(before, now)      # now: a Snapshot of the state to undo
    steps = plan_rollback(before, after_change(before))   # at arm time: the whole change

Two shapes of "before" (snapshot.Snapshot.uplink_is_port()):

(a) the uplink was not a port of the bridge - the change is a takeover (bridge_port uplink=),
    undone like uplink_takeover.give_back(): the uplink gets its addresses back (IPv6 nodad),
    leaves the bridge, the routes are replaced back onto it, the bridge loses its addresses;
    then the bridge is deleted if it did not exist (else its ports and alias are restored).
(b) the uplink was a port of the bridge - the change gives it back (leaving bridged_lan),
    undone like the takeover: the bridge is created again if gone (its recorded MAC, STP,
    forward delay, alias; up), gets its addresses, the uplink becomes its port, the routes are
    replaced onto it, the uplink loses its addresses, the former ports that exist join again.

What the kernel made from the LAN router's advertisements (SLAAC addresses, RA routes) is not
restored: the link that holds the LAN again asks the router (a `solicit` step) and the kernel
makes its own from the answer. In (b) the uplink, a port again, also lets go of the RA routes
and advertised prefix routes it got while it was on its own (a port hears the router no longer).

Either way the link that takes the addresses holds them before the uplink changes its master,
and routes move with a replace (no moment without them). The DHCP client on the link that
should not have one is stopped first, the one that ran before is started last, then the files
are written back byte for byte (or removed when they did not exist).

Every step is idempotent - an address is replaced, a route replaced, a deletion of what is
gone already is success (`tolerate`: the `ip` error that says so), and the address steps
compare with `ip -json` at rollback time - so the same steps are right whatever part of the
change had happened when the timer fires: none, half or all. `now` only adds what the change
brought that the steps must take away (the bridge's new addresses and ports).

No imports from the collection: rollback_helper ships only the plan (plan.json), and the
unit tests run this module on its own.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import List, Optional

MISSING_DEVICE = 'Cannot find device'
MISSING_ADDRESS = 'Cannot assign requested address'
MISSING_ROUTE = 'No such process'
EXISTS = 'File exists'


@dataclasses.dataclass(frozen=True)
class Step:
    """One rollback step; `text` says it as a person would read it.

    kind    ip: run `ip` + argv; an error whose text has one of `tolerate` means done already
            addresses: dev gets `addresses` (replace; IPv6 nodad); exact: its other global
                    addresses go (read with `ip -json address show dev DEV` at rollback time)
            dhcp_stop: end the DHCP client on `dev` of one of `pidfiles` (its cmdline checked)
            dhcp_start: start `argv` unless a client on `dev` runs (its pidfile: `pidfile`)
            file_write: write the saved copy `saved` to `path` atomically, `mode`, `uid`, `gid`
            file_remove: remove `path` if it is there
            solicit: one IPv6 router solicitation from `dev` (done when it cannot send: the
                    router's next advertisement comes anyway)
    """
    kind: str
    text: str
    argv: List[str] = dataclasses.field(default_factory=list)
    tolerate: List[str] = dataclasses.field(default_factory=list)
    dev: Optional[str] = None
    addresses: List[dict] = dataclasses.field(default_factory=list)
    exact: bool = False
    pidfiles: List[str] = dataclasses.field(default_factory=list)
    pidfile: Optional[str] = None
    path: Optional[str] = None
    saved: Optional[str] = None
    mode: Optional[int] = None
    uid: Optional[int] = None
    gid: Optional[int] = None

    def to_json(self):
        return dataclasses.asdict(self)


def default_pidfile(ifname):
    """ifupdown's dhclient pidfile of an interface."""
    return '/run/dhclient.%s.pid' % ifname


def _ip(text, *argv, tolerate=()):
    return Step('ip', text, argv=[str(word) for word in argv], tolerate=list(tolerate))


def _addresses(dev, addresses, exact):
    entries = [dataclasses.asdict(address) for address in addresses]
    words = ', '.join(entry['address'] for entry in entries) or 'no addresses'
    text = ('%s holds exactly %s' if exact else '%s gets %s') % (dev, words)
    return Step('addresses', text, dev=dev, addresses=entries, exact=exact)


def route_argv(route, dev):
    """`ip route replace` argv (after `ip`) of a snapshot.Route on `dev`."""
    argv = ['-6'] if route.family == 6 else ['-4']
    argv += ['route', 'replace', route.dst]
    if route.gateway:
        argv += ['via', route.gateway]
    argv += ['dev', dev]
    if route.metric is not None:
        argv += ['metric', str(route.metric)]
    if route.proto is not None:
        argv += ['proto', str(route.proto)]
    if route.onlink:
        argv.append('onlink')
    return argv


def _route_text(route, dev):
    text = route.dst + (' via %s' % route.gateway if route.gateway else '')
    if route.metric is not None:
        text += ' metric %d' % route.metric
    return 'route %s%s moves to %s' % (text, ' onlink' if route.onlink else '', dev)


def _routes(routes, dev):
    return [Step('ip', _route_text(route, dev), argv=route_argv(route, dev)) for route in routes]


def _dhcp_swap(before, now, off, on):
    """Stop the client on `off` (a link that had none before), start the recorded ones."""
    steps = []
    had = dict((client.ifname, client) for client in before.dhcp)
    if off not in had:
        running = [client.pidfile for client in now.dhcp if client.ifname == off and client.pidfile]
        pidfiles = sorted(set([default_pidfile(off)] + running))
        steps.append(Step('dhcp_stop', 'the DHCP client on %s stops' % off, dev=off,
                          pidfiles=pidfiles))
    starts = []
    for ifname in (on, off):
        client = had.get(ifname)
        if client is not None:
            starts.append(Step('dhcp_start', 'the DHCP client on %s runs again: %s'
                               % (ifname, ' '.join(client.argv)), dev=ifname,
                               argv=list(client.argv), pidfile=client.pidfile))
    return steps, starts


def _undo_takeover(before, now):
    """Shape (a): the uplink was not a port of the bridge."""
    uplink, bridge = before.uplink, before.bridge
    steps = []
    if uplink.addresses:
        steps.append(_addresses(uplink.name, uplink.addresses, exact=False))
    if uplink.state == 'up':
        steps.append(_ip('%s is up' % uplink.name, 'link', 'set', 'dev', uplink.name, 'up'))
    if uplink.master:
        steps.append(_ip('%s is a port of %s again' % (uplink.name, uplink.master),
                         'link', 'set', 'dev', uplink.name, 'master', uplink.master))
    else:
        steps.append(_ip('%s leaves %s' % (uplink.name, bridge.name),
                         'link', 'set', 'dev', uplink.name, 'nomaster'))
    steps += _routes(uplink.routes, uplink.name)
    steps += _solicit(uplink)
    if not bridge.exists:
        # Its addresses go before the (slower) deletion: its prefix routes are older than
        # the uplink's and lead to a bridge without the uplink (uplink_takeover.give_back).
        steps.append(Step('addresses', '%s loses its addresses' % bridge.name, dev=bridge.name,
                          exact=True, tolerate=[MISSING_DEVICE]))
        steps.append(_ip('%s is deleted (it did not exist before)' % bridge.name,
                         'link', 'delete', 'dev', bridge.name, tolerate=[MISSING_DEVICE]))
        return steps
    steps.append(_addresses(bridge.name, bridge.addresses, exact=True))
    steps += _routes(bridge.routes, bridge.name)
    for port in sorted(set(now.bridge.ports) - set(bridge.ports) - {uplink.name}):
        steps.append(_ip('%s leaves %s' % (port, bridge.name), 'link', 'set', 'dev', port,
                         'nomaster', tolerate=[MISSING_DEVICE]))
    steps += _join_ports(bridge, uplink.name)
    steps.append(_alias(bridge))
    return steps


def _alias(bridge):
    return _ip('%s has the alias %r again' % (bridge.name, bridge.alias or ''),
               'link', 'set', 'dev', bridge.name, 'alias', bridge.alias or '')


def _join_ports(bridge, uplink):
    return [_ip('%s is a port of %s again' % (port, bridge.name), 'link', 'set', 'dev', port,
                'master', bridge.name, tolerate=[MISSING_DEVICE])
            for port in bridge.ports if port != uplink]


def _undo_give_back(before, now):
    """Shape (b): the uplink was a port of the bridge."""
    uplink, bridge = before.uplink, before.bridge
    del now
    steps = [
        _ip('%s exists (a bridge, STP %s, forward delay %d s)'
            % (bridge.name, 'on' if bridge.stp else 'off', bridge.forward_delay),
            'link', 'add', 'name', bridge.name, 'type', 'bridge',
            'stp_state', 1 if bridge.stp else 0, 'forward_delay', bridge.forward_delay * 100,
            tolerate=[EXISTS]),
    ]
    if bridge.mac:
        steps.append(_ip('%s has the MAC %s' % (bridge.name, bridge.mac),
                         'link', 'set', 'dev', bridge.name, 'address', bridge.mac))
    steps.append(_alias(bridge))
    steps.append(_ip('%s is up' % bridge.name, 'link', 'set', 'dev', bridge.name, 'up'))
    steps.append(_addresses(bridge.name, bridge.addresses, exact=True))
    steps.append(_ip('%s is a port of %s again' % (uplink.name, bridge.name),
                     'link', 'set', 'dev', uplink.name, 'master', bridge.name))
    if uplink.state == 'up':
        steps.append(_ip('%s is up' % uplink.name, 'link', 'set', 'dev', uplink.name, 'up'))
    steps += _routes(bridge.routes, bridge.name)
    steps.append(_addresses(uplink.name, uplink.addresses, exact=True))
    if bridge.autoconf:
        steps += _release_ra_routes(uplink.name, bridge.autoconf)
    steps += _join_ports(bridge, uplink.name)
    steps += _solicit(bridge)
    return steps


def _solicit(link):
    """The solicit step of a link that heard an IPv6 router before the change, or none."""
    if not link.autoconf:
        return []
    return [Step('solicit', "%s asks the LAN's IPv6 router for its SLAAC addresses again"
                 % link.name, dev=link.name)]


def _release_ra_routes(dev, autoconf):
    """A port again: the routes it learnt from the router while on its own go (proto ra, and
    the advertised prefixes' routes, which a static address of the prefix can leave behind)."""
    steps = [_ip('the routes %s learnt from router advertisements go' % dev,
                 '-6', 'route', 'flush', 'dev', dev, 'proto', 'ra')]
    for prefix in sorted(set(str(ipaddress.ip_interface(address).network) for address in autoconf)):
        steps.append(_ip('the route to the advertised prefix %s through %s goes' % (prefix, dev),
                         '-6', 'route', 'del', prefix, 'dev', dev, 'proto', 'kernel',
                         tolerate=[MISSING_ROUTE, MISSING_DEVICE]))
    return steps


def _files(before):
    steps = []
    for index, saved in enumerate(before.files):
        if saved.exists:
            steps.append(Step('file_write', '%s is written back (%d bytes, mode %04o, owner %d:%d)'
                              % (saved.path, len(saved.content or b''), saved.mode, saved.uid,
                                 saved.gid),
                              path=saved.path, saved=saved_name(index), mode=saved.mode,
                              uid=saved.uid, gid=saved.gid))
        else:
            steps.append(Step('file_remove', '%s is removed (it did not exist)' % saved.path,
                              path=saved.path))
    return steps


def saved_name(index):
    """The name of the saved copy of file number `index` in the rollback folder."""
    return 'files/%d' % index


def plan_rollback(before, now):
    """The ordered Steps that bring the host from `now` back to `before` (both Snapshots)."""
    if before.uplink_is_port():
        link_steps = _undo_give_back(before, now)
        stop, start = _dhcp_swap(before, now, off=before.uplink.name, on=before.bridge.name)
    else:
        link_steps = _undo_takeover(before, now)
        stop, start = _dhcp_swap(before, now, off=before.bridge.name, on=before.uplink.name)
    return stop + link_steps + start + _files(before)


def moved_client(client, ifname):
    """The DHCP client of `client` moved to `ifname` as bridge_port moves it: the interface
    replaced in its argv and file names (/run/dhclient.eth0.pid -> /run/dhclient.br0.pid)."""
    old = client.ifname

    def moved(word):
        return ifname if word == old else word.replace('.%s.' % old, '.%s.' % ifname)
    return dataclasses.replace(client, ifname=ifname, argv=[moved(word) for word in client.argv],
                               pidfile=moved(client.pidfile) if client.pidfile
                               else default_pidfile(ifname))


def after_change(before):
    """The state the change leads to, for the arm-time plan: (a) the takeover done - the
    uplink a port of the bridge without addresses, the bridge with them and the routes;
    (b) the give-back done - the bridge gone, the uplink with its addresses and routes."""
    uplink, bridge = before.uplink, before.bridge
    moved = list(uplink.addresses) + list(bridge.addresses)
    routes = list(uplink.routes) + list(bridge.routes)
    if before.uplink_is_port():
        new_uplink = dataclasses.replace(uplink, master=None, addresses=moved, routes=routes)
        new_bridge = dataclasses.replace(bridge, exists=False, addresses=[], ports=[], routes=[])
        dhcp = [moved_client(client, uplink.name) for client in before.dhcp
                if client.ifname == bridge.name]
    else:
        new_uplink = dataclasses.replace(uplink, master=bridge.name, addresses=[], routes=[])
        new_bridge = dataclasses.replace(bridge, exists=True, addresses=moved, routes=routes,
                                         mac=bridge.mac or uplink.mac,
                                         ports=sorted(set(bridge.ports) | {uplink.name}))
        dhcp = [moved_client(client, bridge.name) for client in before.dhcp
                if client.ifname == uplink.name]
    return dataclasses.replace(before, uplink=new_uplink, bridge=new_bridge, dhcp=dhcp, files=[])


def describe(steps):
    """The steps as text lines, numbered."""
    return ['%d. %s' % (number, step.text) for number, step in enumerate(steps, 1)]
