# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the kernel's link state: the snapshot, the routes through a link, device facts.

A snapshot is a dict ifname -> link record (plain data, see rtnl_snapshot.decode_link()), so
the planning functions are unit-testable without a kernel.
"""

from __future__ import annotations

import socket

from ansible_collections.tuntap.qemu.plugins.module_utils._links import netlink, rtnl_snapshot

# Routes the kernel makes itself (for addresses, from router advertisements) come back on
# their own on the bridge; the others move with the uplink's addresses.
RTPROT_KERNEL = 2
RTPROT_BOOT = 3
RTPROT_RA = 9
RT_TABLE_MAIN = 254
RTNH_F_ONLINK = 4  # ifupdown's `gateway` line adds its default route with `onlink`


def read_snapshot():
    """One dump of links and one of addresses -> {ifname: record}.

    Read by rtnl_snapshot (socket + struct, decoding only the attributes a record holds:
    about 12 ms for 512 taps, where pyroute2's full decoding takes about 250 ms, and no
    `import pyroute2`). Writes stay with pyroute2. The integration target rtnl_snapshot
    proves it equal to pyroute2's decoding (the reference reader in that target) on the
    real kernel, with pyroute2 0.7 and 0.9.
    """
    return rtnl_snapshot.read_snapshot()


def _route_dumps(ipr, ifname, families):
    """(family, msg) of the main table's routes through `ifname`."""
    index = socket.if_nametoindex(ifname)
    for family in families:
        # An interrupted dump is read again with the snapshot's policy (rtnl_snapshot).
        dump = rtnl_snapshot.retry_interrupted(
            lambda family=family: tuple(ipr.get_routes(family=family, table=RT_TABLE_MAIN)),
            'RTM_GETROUTE dump', netlink.dump_interrupted())
        for msg in dump:
            if msg.get_attr('RTA_OIF') == index:
                yield family, msg


def _route_record(family, msg):
    dst = msg.get_attr('RTA_DST')
    return {
        'family': 4 if family == socket.AF_INET else 6,
        'dst': '%s/%d' % (dst, msg['dst_len']) if dst else 'default',
        'gateway': msg.get_attr('RTA_GATEWAY'),
        'metric': msg.get_attr('RTA_PRIORITY'),
        'proto': msg['proto'],
        'scope': msg['scope'],
        'onlink': bool(msg['flags'] & RTNH_F_ONLINK),
    }


def read_routes(ipr, ifname):
    """Routes of the main table through `ifname` that someone configured (not proto kernel
    or ra), as plain dicts: family, dst ('default' or 'ADDR/LEN'), gateway, metric, proto,
    scope, onlink (moved with the route, so the bridge has what ifupdown gives it at boot).
    `ipr` is a pyroute2 IPRoute (netlink.open_netlink())."""
    return [_route_record(family, msg)
            for family, msg in _route_dumps(ipr, ifname, (socket.AF_INET, socket.AF_INET6))
            if msg['proto'] not in (RTPROT_KERNEL, RTPROT_RA)]


def read_ra_routes(ipr, ifname):
    """The IPv6 routes of the main table through `ifname` that the kernel made itself, as
    read_routes() dicts: proto ra (the default route via the router, a route information
    option) and proto kernel but fe80::/64 (the on-link route of an advertised prefix, with
    an expiry or none when the router advertises an infinite lifetime, as dnsmasq's ra-only
    does; or a static address's prefix route, which goes with the address). They come back
    by themselves on the link that hears the router, so they are never moved; a link that
    becomes a bridge port without addresses hears it no longer and must let them go
    (uplink_takeover)."""
    routes = []
    for family, msg in _route_dumps(ipr, ifname, (socket.AF_INET6,)):
        record = _route_record(family, msg)
        if msg['proto'] == RTPROT_RA or (msg['proto'] == RTPROT_KERNEL and record['dst'] != 'fe80::/64'):
            routes.append(record)
    return routes


def describe_route(route):
    """'default via 10.0.0.1 metric 5', as `ip route` would say it."""
    text = route['dst']
    if route.get('gateway'):
        text += ' via %s' % route['gateway']
    if route.get('metric') is not None:
        text += ' metric %d' % route['metric']
    if route.get('onlink'):
        text += ' onlink'
    return text


def ports_of(snapshot, bridge):
    """Names of the links enslaved to `bridge`, sorted."""
    return sorted(name for name, link in snapshot.items() if link['master'] == bridge)


def isolated_ports_of(snapshot, bridge):
    """Names of the ports of `bridge` that are isolated (BR_ISOLATED), sorted."""
    return sorted(name for name, link in snapshot.items()
                  if link['master'] == bridge and link.get('isolated'))


def device_facts(snapshot, name):
    """What the modules return about one device (`dynamic` and `autoconf` only when it holds
    such addresses). A port's `isolated` is not among them: bridge_port returns the bridge's
    isolated_ports."""
    link = snapshot.get(name)
    if link is None:
        return None
    return dict((key, value) for key, value in link.items()
                if key not in ('master_index', 'isolated')
                and not (key in ('dynamic', 'autoconf') and not value))
