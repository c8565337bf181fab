# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Addresses planned from pools: each step returns new Host records with the planned
addresses (a guest's `derived` says 'address').

- 'subnets' (routed topologies): the next free /24 of the host's pool, fleet-wide, hosts in
  sorted order, each guest in list order, skipping every network the inventory names;
- 'addresses' (a bridge subnet): the next free address where the pool meets the bridge subnet;
  (the VDE switch's subnet): the next free host address of it from .2, without a pool;
- LAN addresses are never planned: only the LAN's owner knows which are free.

IPv6 (a guest's `derived` says 'address6'), planned for each guest without address6 whose
address is IPv4:
- 'subnets': the next free /64 of the host's tuntap_qemu_pool6, fleet-wide as above;
- 'addresses': an address in the bridge's (the VDE switch's) /64;
the guest's address in its /64 is the SLAAC one its kernel makes from its MAC (EUI-64) when
the host advertises the network and serves the guest (slaac), else a static one (routed ::2,
bridge: the next free from ::2).
"""

from __future__ import annotations

import dataclasses

from ansible_collections.tuntap.qemu.plugins.module_utils import names
from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import guest_networks, nets, schema


def _planned(host, plan_one, rule=None):
    """The host with plan_one(guest, where) -> planned guest (or None after reporting why)
    applied to each valid guest without an address on `rule`'s network (any: None), unless
    the host's pool, which that network plans from, is broken."""
    guests = []
    pool_broken = host.pool_broken and (rule is None or getattr(rule, 'needs_pool', True))
    for guest in host.guests:
        if guest.address_given is None and guest.valid_entry and not pool_broken \
                and (rule is None or guest_networks.of_guest(host, guest) is rule):
            guest = plan_one(guest, '%s.address' % guest.path) or guest
        guests.append(guest)
    return dataclasses.replace(host, guests=tuple(guests))


def _shared_rules(host, pool):
    """The networks of the host whose guests share one subnet that `pool` ('addresses' of
    tuntap_qemu_pool, or of pool6) plans in: its topology's (a bridge), its VDE switch's."""
    if host.topology is None:
        return []
    rules = [host.topology.guests]
    if host.vde is not None:
        rules.append(guest_networks.VDE_SUBNET)
    return [rule for rule in rules if getattr(rule, pool) == 'addresses']


def plan_subnets(hosts, problems):
    """Give each guest of an own-subnet topology without an address the next free /24 of its
    host's pool."""
    taken = []
    for host in hosts:
        taken.extend(net for net in (host.uplink_net, host.bridge_net) if net is not None)
        if host.vde is not None:
            taken.append(host.vde.net)
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

    return [_planned(host, plan_for(host), host.topology.guests)
            if host.topology is not None and host.topology.guests.pool == 'subnets' else host
            for host in hosts]


def plan_shared_addresses(host, problems):
    """Give each guest of a shared subnet (a bridge's, the VDE switch's) without an address the
    next free one: of pool and bridge; of the VDE subnet from its .2 (no pool needed)."""
    for rule in _shared_rules(host, 'pool'):
        if rule.subnet(host) is not None:
            host = _plan_shared(host, rule, problems)
    return host


def _plan_shared(host, rule, problems):
    subnet = rule.subnet(host)
    taken = set([int(subnet.ip)])
    taken.update(int(guest.net.ip) for guest in host.guests if guest.net is not None)
    if host.dhcp_range is not None and rule is host.topology.guests:
        # The dynamic range is the DHCP server's, for guests the inventory does not list.
        taken.update(range(int(host.dhcp_range[0]), int(host.dhcp_range[1]) + 1))
    pool = host.pool if rule.needs_pool else None
    first, last = subnet.first, subnet.last
    if pool is not None:
        first, last = max(first, pool.first), min(last, pool.last)
    if subnet.size > 2:
        # Neither the network address nor (IPv4) the broadcast address.
        first = max(first, subnet.first + 1)
        if subnet.version == 4:
            last = min(last, subnet.last - 1)
    values = range(first, last + 1)
    if not rule.needs_pool:
        # From .2 (.1 is the usual host side), .1 last.
        values = [value for value in values if value != subnet.first + 1] + [subnet.first + 1]
    candidates = iter(values)

    def plan_one(guest, where):
        if pool is None and rule.needs_pool:
            problems.add(host.host, '%s: missing; give ADDRESS/PREFIX in %s subnet %s, '
                         'or set %s to plan one' % (where, rule.what, subnet.cidr, schema.POOL))
            return None
        candidate = next((value for value in candidates if value not in taken), None)
        if candidate is None:
            if pool is not None:
                problems.add(host.host, '%s: no free address left where %s %s meets %s '
                             'subnet %s' % (where, schema.POOL, pool.cidr, rule.what, subnet.cidr))
            else:
                problems.add(host.host, '%s: no free address left in %s subnet %s (%s)'
                             % (where, rule.what, subnet.cidr, rule.variable(host)))
            return None
        taken.add(candidate)
        return guest.with_derived('address', net=nets.net(candidate, subnet.prefixlen, subnet.version))

    return _planned(host, plan_one, rule)


def _planned6(host, plan_one, rule):
    """As _planned, for IPv6: each valid guest on `rule`'s network without address6 whose
    address is not IPv6."""
    guests = []
    for guest in host.guests:
        if guest.address6_given is None and guest.valid_entry and not host.pool6_broken \
                and (guest.net is None or guest.net.version == 4) and guest_networks.of_guest(host, guest) is rule:
            guest = plan_one(guest, '%s.address6' % guest.path) or guest
        guests.append(guest)
    return dataclasses.replace(host, guests=tuple(guests))


def _address6(host, guest, subnet, candidates):
    """The guest with its planned IPv6 address in `subnet` (a /64): SLAAC when served,
    else the next of `candidates` (None: none left)."""
    if host.advertises6 and host.served6(guest) and guest.mac is not None:
        ip = names.netaddr.EUI(guest.mac).ipv6(subnet.first)
        return guest.with_derived('address6', net6=nets.net(ip, subnet.prefixlen, 6), slaac=True)
    candidate = next(candidates, None)
    if candidate is None:
        return None
    return guest.with_derived('address6', net6=nets.net(candidate, subnet.prefixlen, 6))


def networks6(hosts):
    """Every IPv6 network the inventory names (given address6, IPv6 addresses, the bridges',
    the uplinks' tuntap_qemu_uplink_address6)."""
    taken = []
    for host in hosts:
        # The LAN's IPv6 subnet (the uplinks') is never a guest network.
        taken.extend(net for net in (host.bridge_net6, host.uplink_net6) if net is not None)
        if host.vde is not None and host.vde.net6 is not None:
            taken.append(host.vde.net6)
        for guest in host.guests:
            taken.extend(net for net in (guest.net, guest.net6) if net is not None and net.version == 6)
    return taken


def plan_subnets6(hosts, problems):
    """Give each guest of an own-subnet topology without address6 the next free /64 of its
    host's tuntap_qemu_pool6 (hosts without one: no IPv6 planned)."""
    taken = networks6(hosts)

    def plan_for(host):
        def plan_one(guest, where):
            subnet = _free_subnet(host.pool6, taken, schema.POOL6_SUBNET_PREFIX, 6)
            if subnet is None:
                problems.add(host.host, '%s: %s %s has no free /%d subnet left'
                             % (where, schema.POOL6, host.pool6.cidr, schema.POOL6_SUBNET_PREFIX))
                return None
            taken.append(subnet)
            return _address6(host, guest, subnet, iter([subnet.first + 2]))
        return plan_one

    return [_planned6(host, plan_for(host), host.topology.guests)
            if host.topology is not None and host.topology.guests.pool6 == 'subnets' and host.pool6 is not None
            else host for host in hosts]


def plan_shared_addresses6(host, problems):
    """Give each guest of a shared subnet with an IPv6 /64 (a bridge's, the VDE switch's)
    without address6 an address in it."""
    for rule in _shared_rules(host, 'pool6'):
        if rule.subnet6(host) is not None:
            host = _plan_shared6(host, rule, problems)
    return host


def _plan_shared6(host, rule, problems):
    subnet6 = rule.subnet6(host)
    taken = set([int(subnet6.ip)])
    taken.update(int(guest.net6.ip) for guest in host.guests if guest.net6 is not None)
    subnet = subnet6.cidr
    candidates = (value for value in range(subnet.first + 2, subnet.last + 1) if value not in taken)

    def plan_one(guest, where):
        planned = _address6(host, guest, subnet, candidates)
        if planned is None:
            problems.add(host.host, '%s: no free address left in %s network %s (%s)'
                         % (where, rule.what, subnet, rule.variable6(host)))
        elif planned.net6 is not None:
            taken.add(int(planned.net6.ip))
        return planned

    return _planned6(host, plan_one, rule)


def _free_subnet(pool, taken, prefix=schema.POOL_SUBNET_PREFIX, version=4):
    size = 1 << ((32 if version == 4 else 128) - prefix)
    start = pool.first
    while start + size - 1 <= pool.last:
        subnet = nets.net(start, prefix, version)
        clash = next((net for net in taken if nets.overlap(subnet, net)), None)
        if clash is None:
            return subnet
        # Past the network in the way, to the next subnet boundary.
        start = max(start + size, (clash.last + 1 + size - 1) // size * size)
    return None
