# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Applying a LinkPlan: its typed actions in order, through pyroute2 and tun ioctls.

The only writer of the link subsystem, and with reading.read_routes() the only user of
pyroute2 (netlink.py imports it on first use).
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from ansible_collections.tuntap.qemu.plugins.module_utils._links import (
    dhcp_client, netlink, router_solicit, tuntap)
from ansible_collections.tuntap.qemu.plugins.module_utils._links.actions import (
    AddrAdd, AddrDel, BridgeCreate, Delete, DhcpMove, LinkSet, PortIsolate, RouteDel, RouteReplace,
    Solicit, Tun)
from ansible_collections.tuntap.qemu.plugins.module_utils._links.reading import (
    RT_TABLE_MAIN, RTNH_F_ONLINK)

USER_HZ = 100  # bridge timers are given in clock_t
IFA_F_NODAD = 0x02  # linux/if_addr.h
# What the kernel answers for an address or a route that is not there (any more).
GONE = (errno.EADDRNOTAVAIL, errno.ESRCH, errno.ENOENT)


class LinkError(Exception):
    """Applying a plan failed; the message names the device and the step."""


def apply_plan(ipr, plan):
    """Carry out plan.actions in order.  Raises LinkError naming the device and step."""
    index = dict((name, link['ifindex']) for name, link in plan.snapshot.items())
    failures = netlink.errors()

    def ifindex(name):
        if name not in index:
            index[name] = socket.if_nametoindex(name)
        return index[name]

    for action in plan.actions:
        name = action.name
        try:
            if isinstance(action, Delete):
                ipr.link('del', index=ifindex(name))
                index.pop(name, None)
            elif isinstance(action, Tun):
                tuntap.configure_tun(name, action.mode, action.owner, action.group,
                                     action.multi_queue, action.vnet_hdr)
            elif isinstance(action, BridgeCreate):
                ipr.link('add', ifname=name, kind='bridge', **_bridge_kwargs(action.attrs))
            elif isinstance(action, LinkSet):
                ipr.link('set', index=ifindex(name), **_set_kwargs(action.changes, ifindex))
            elif isinstance(action, PortIsolate):
                # pyroute2 0.7 and 0.9 send an RTM_NEWLINK with IFLA_BRPORT_ISOLATED in
                # IFLA_INFO_SLAVE_DATA (kind bridge_slave), as `ip link set dev PORT type
                # bridge_slave isolated on|off` does.
                ipr.brport('set', index=ifindex(name), isolated=1 if action.isolated else 0)
            elif isinstance(action, RouteReplace):
                ipr.route('replace', **_route_kwargs(action.route, ifindex(name)))
            elif isinstance(action, AddrAdd):
                kwargs = address_kwargs(action.address)
                if action.nodad:
                    kwargs['flags'] = IFA_F_NODAD
                if action.valid is not None:
                    kwargs.update(lifetime_kwargs(action.valid, action.preferred))
                ipr.addr('add', index=ifindex(name), **kwargs)
            elif isinstance(action, AddrDel):
                address, prefix = action.address.split('/')
                _deleting(action.gone_ok, ipr.addr, 'del', index=ifindex(name), address=address,
                          prefixlen=int(prefix))
            elif isinstance(action, RouteDel):
                _deleting(True, ipr.route, 'del', **_route_kwargs(action.route, ifindex(name)))
            elif isinstance(action, Solicit):
                # False: the link cannot send yet (no usable link-local address); the kernel
                # solicits itself once it has one, or the router's next advertisement comes.
                router_solicit.solicit(name)
            elif isinstance(action, DhcpMove):
                dhcp_client.move(action.source, name, action.stop, action.start)
            else:
                raise TypeError('not a link action: %r' % (action,))
        except (tuntap.TunError, dhcp_client.ClientError) as exc:
            raise LinkError('%s: %s' % (name, exc) if isinstance(exc, dhcp_client.ClientError) else str(exc))
        except failures as exc:
            raise LinkError('%s: %s failed: %s' % (name, action.describe(), exc))


def _deleting(gone_ok, request, *args, **kwargs):
    """A delete request; with gone_ok, what is gone already is no error."""
    try:
        request(*args, **kwargs)
    except netlink.errors() as exc:  # NetlinkError has the errno as `code`
        code = getattr(exc, 'code', None) or getattr(exc, 'errno', None)
        if not (gone_ok and code in GONE):
            raise


def address_kwargs(cidr):
    """pyroute2 arguments that add an address as ifupdown, networkd and `ip addr add ... brd +`
    do: an IPv4 address of a subnet with room for one gets the subnet's broadcast."""
    interface = ipaddress.ip_interface(cidr)
    kwargs = {'address': str(interface.ip), 'prefixlen': interface.network.prefixlen}
    if interface.version == 4 and interface.network.prefixlen <= 30:
        kwargs['broadcast'] = str(interface.network.broadcast_address)
    return kwargs


def lifetime_kwargs(valid, preferred):
    """pyroute2 arguments for IFA_CACHEINFO (`ip addr add ... valid_lft V preferred_lft P`).
    pyroute2 0.7 reads the lifetimes from `cacheinfo`, 0.9 from `valid`/`preferred`: both are
    given, so Debian's python3-pyroute2 and the PyPI one add the same address."""
    preferred = min(preferred, valid)
    return {'valid': valid, 'preferred': preferred, 'cacheinfo': {'valid': valid, 'preferred': preferred}}


def _route_kwargs(route, oif):
    default = '0.0.0.0/0' if route['family'] == 4 else '::/0'
    kwargs = {'dst': default if route['dst'] == 'default' else route['dst'], 'oif': oif,
              'table': RT_TABLE_MAIN, 'proto': route['proto'], 'scope': route['scope'],
              'family': socket.AF_INET if route['family'] == 4 else socket.AF_INET6}
    if route.get('gateway'):
        kwargs['gateway'] = route['gateway']
    if route.get('metric') is not None:
        kwargs['priority'] = route['metric']
    if route.get('onlink'):
        kwargs['flags'] = RTNH_F_ONLINK
    return kwargs


def _bridge_kwargs(attrs):
    kwargs = {}
    if attrs.get('mac'):
        kwargs['address'] = attrs['mac']
    if 'stp' in attrs:
        kwargs['br_stp_state'] = 1 if attrs['stp'] else 0
    if 'forward_delay' in attrs:
        kwargs['br_forward_delay'] = attrs['forward_delay'] * USER_HZ
    return kwargs


def _set_kwargs(changes, ifindex):
    kwargs = {}
    if 'mtu' in changes:
        kwargs['mtu'] = changes['mtu']
    if 'state' in changes:
        kwargs['state'] = changes['state']
    if 'master' in changes:
        kwargs['master'] = ifindex(changes['master']) if changes['master'] else 0
    if 'alias' in changes:
        kwargs['ifalias'] = changes['alias'] or ''  # IFLA_IFALIAS; '' removes it
    bridge = _bridge_kwargs(changes)
    if bridge:
        kwargs['kind'] = 'bridge'
        kwargs.update(bridge)
    return kwargs
