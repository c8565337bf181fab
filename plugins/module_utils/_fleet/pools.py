# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Addresses planned from pools: each step returns new Host records with the planned
addresses (a guest's `derived` says 'address').

- 'subnets' (routed topologies): the next free /24 of the host's pool, fleet-wide, hosts in
  sorted order, each guest in list order, skipping every network the inventory names;
- 'addresses' (a bridge subnet): the next free address where the pool meets the bridge subnet;
- LAN addresses are never planned: only the LAN's owner knows which are free.
"""

from __future__ import annotations

import dataclasses

from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import nets, schema


def _planned(host, plan_one):
    """The host with plan_one(guest, where) -> planned guest (or None after reporting why)
    applied to each valid guest without an address, unless the host's pool is broken."""
    guests = []
    for guest in host.guests:
        if guest.address_given is None and guest.valid_entry and not host.pool_broken:
            guest = plan_one(guest, '%s.address' % guest.path) or guest
        guests.append(guest)
    return dataclasses.replace(host, guests=tuple(guests))


def plan_subnets(hosts, problems):
    """Give each guest of an own-subnet topology without an address the next free /24 of its
    host's pool."""
    taken = []
    for host in hosts:
        taken.extend(net for net in (host.uplink_net, host.bridge_net) if net is not None)
        if host.topology is not None and host.topology.guests.own_subnets:
            taken.extend(guest.net for guest in host.guests if guest.net is not None)

    def plan_for(host):
        def plan_one(guest, where):
            if host.pool is None:
                problems.add(host.host, '%s: missing; give ADDRESS/PREFIX such as '
                             '192.168.0.10/24, or set %s to plan one' % (where, schema.POOL))
                return None
            subnet = _free_subnet(host.pool, taken)
            if subnet is None:
                problems.add(host.host, '%s: %s %s has no free /%d subnet left'
                             % (where, schema.POOL, host.pool.cidr, schema.POOL_SUBNET_PREFIX))
                return None
            taken.append(subnet)
            gateway = nets.parse_ip(guest.gateway_given)
            first_host = subnet.first + 1
            ip = first_host + 1 if gateway is None or int(gateway) == first_host else first_host
            return guest.with_derived('address', net=nets.net(ip, subnet.prefixlen, subnet.version))
        return plan_one

    return [_planned(host, plan_for(host))
            if host.topology is not None and host.topology.guests.pool == 'subnets' else host
            for host in hosts]


def plan_bridge_addresses(host, problems):
    """Give each guest of a bridge subnet without an address the next free one of pool and bridge."""
    bridge_net = host.bridge_net
    if host.topology is None or host.topology.guests.pool != 'addresses' or bridge_net is None:
        return host
    taken = set([int(bridge_net.ip)])
    taken.update(int(guest.net.ip) for guest in host.guests if guest.net is not None)
    if host.dhcp_range is not None:
        # The dynamic range is the DHCP server's, for guests the inventory does not list.
        taken.update(range(int(host.dhcp_range[0]), int(host.dhcp_range[1]) + 1))
    pool = host.pool
    first, last = bridge_net.first, bridge_net.last
    if pool is not None:
        first, last = max(first, pool.first), min(last, pool.last)
    if bridge_net.size > 2:
        # Neither the network address nor (IPv4) the broadcast address.
        first = max(first, bridge_net.first + 1)
        if bridge_net.version == 4:
            last = min(last, bridge_net.last - 1)
    candidates = iter(range(first, last + 1))

    def plan_one(guest, where):
        if pool is None:
            problems.add(host.host, '%s: missing; give ADDRESS/PREFIX in the bridge subnet %s, '
                         'or set %s to plan one' % (where, bridge_net.cidr, schema.POOL))
            return None
        candidate = next((value for value in candidates if value not in taken), None)
        if candidate is None:
            problems.add(host.host, '%s: no free address left where %s %s meets the bridge '
                         'subnet %s' % (where, schema.POOL, pool.cidr, bridge_net.cidr))
            return None
        taken.add(candidate)
        return guest.with_derived('address', net=nets.net(candidate, bridge_net.prefixlen, bridge_net.version))

    return _planned(host, plan_one)


def _free_subnet(pool, taken):
    size = 1 << (32 - schema.POOL_SUBNET_PREFIX)
    start = pool.first
    while start + size - 1 <= pool.last:
        subnet = nets.net(start, schema.POOL_SUBNET_PREFIX, 4)
        if not any(nets.overlap(subnet, net) for net in taken):
            return subnet
        start += size
    return None
