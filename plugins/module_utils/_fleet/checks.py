# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks across the fleet, and each guest's address and gateway against its topology.

Rules (docs/inventory.md explains them to users):
- Guest names and MACs are unique across the fleet.
- LAN-visible addresses - every host's tuntap_qemu_uplink_address(6) and every address of a
  guest on the LAN - are unique across the fleet.
- Own guest subnets routed on the LAN (routed) may not overlap across all such hosts; with
  NAT (routed_nat) only within their host; guests behind a bridge only within their bridge.
- Any guest subnet or bridge subnet of a host may not overlap that host's uplink subnet.
- IPv6: pools (tuntap_qemu_pool6) and IPv6 guest networks (a routed guest's /64, a bridge's)
  are unique across the fleet; address6 unique on its host.
"""

from __future__ import annotations

import dataclasses

from ansible_collections.tuntap.qemu.plugins.module_utils import names
from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import guest_networks, nets, schema, topologies


def _repeats(hosts, key):
    """(host, guest, (other host, other guest)) for every guest whose key(guest) an earlier
    guest of the fleet already has; guests whose key is None are left out."""
    seen = {}
    for host in hosts:
        for guest in host.guests:
            value = key(guest)
            if value is None:
                continue
            if value in seen:
                yield host, guest, seen[value]
            else:
                seen[value] = (host.host, guest)


def check_names(hosts, problems):
    for host, guest, (other_host, other) in _repeats(hosts, lambda guest: guest.name):
        problems.add(host.host, '%s.name: %r is also used by %s %s; guest names are '
                     'unique across the fleet (they name the runtime folder and the '
                     'default MAC)' % (guest.path, guest.name, other_host, other.path))


def check_macs(hosts, problems):
    for host, guest, (other_host, other) in _repeats(hosts, lambda guest: guest.mac):
        if guest.mac_given is None:
            shown = '%r (the default for %s)' % (guest.mac, guest.name)
        else:
            shown = repr(guest.mac_given)
        problems.add(host.host, '%s.mac: %s is also used by %s %s'
                     % (guest.path, shown, other_host, other.label))


def check_lan_addresses(hosts, problems):
    """Every uplink address and LAN guest address is unique across the fleet."""
    seen = {}
    entries = []
    for host in hosts:
        if host.uplink_net is not None:
            entries.append((host, schema.UPLINK_ADDRESS, host.uplink_net,
                            '%s (%s)' % (host.host, schema.UPLINK_ADDRESS)))
        if host.uplink_net6 is not None:
            entries.append((host, schema.UPLINK_ADDRESS6, host.uplink_net6,
                            '%s (%s)' % (host.host, schema.UPLINK_ADDRESS6)))
    for host in hosts:
        if host.topology is not None and host.topology.guests.lan_visible:
            for guest in host.guests:
                if guest.net is not None:
                    entries.append((host, '%s.address' % guest.path, guest.net,
                                    '%s %s' % (host.host, guest.label)))
    for host, path, net, label in entries:
        key = (net.version, int(net.ip))
        if key in seen:
            problems.add(host.host, '%s: %r is also used by %s; addresses on the LAN are '
                         'unique across the fleet' % (path, names.normalize_address(net), seen[key]))
        else:
            seen[key] = label


def resolve_guests(host, problems):
    """[Resolved or None] per guest of the host: None where its address or gateway does not
    fit its network (its topology's, or the VDE switch's; the error says why) or it has no
    address."""
    error = problems.for_host(host.host)
    resolved = []
    for guest in host.guests:
        rule = guest_networks.of_guest(host, guest)
        if guest.vde and host.vde is None:
            resolved.append(None)   # no switch: reading said so
            continue
        net = guest.net
        if net is None:
            if rule is not None and guest.valid_entry and guest.address_given is None:
                message = rule.missing_address(host, guest)
                if message:
                    error(message)
            resolved.append(None)
            continue
        if net.version == 4 and net.size > 2 and net.ip == net.broadcast:
            error('%s.address: %r is the broadcast address of its subnet'
                  % (guest.path, nets.address_text(guest)))
            resolved.append(None)
            continue
        item = rule.resolve(host, guest, error) if rule is not None else None
        if item is not None and guest.net6 is not None:
            fits, gateway6 = rule.resolve6(host, guest, error)
            item = dataclasses.replace(item, gateway6=gateway6) if fits else None
        resolved.append(item)
    rules = set(guest_networks.of_guest(host, guest) for guest in host.guests)
    for rule in rules:
        if rule is not None and rule.unique_in_host:
            _check_host_duplicates([item for item in resolved
                                    if item is not None and guest_networks.of_guest(host, item.guest) is rule], error)
    _check_host_duplicates6(resolved, error)
    return resolved


def _check_host_duplicates6(resolved, error):
    """A guest's IPv6 address is unique on its host."""
    seen = {}
    for item in resolved:
        if item is None or item.guest.net6 is None:
            continue
        guest = item.guest
        key = int(guest.net6.ip)
        if key in seen:
            error('%s.address6: %r is also used by %s on this host'
                  % (guest.path, _address6_text(guest), seen[key].label))
        else:
            seen[key] = guest


def _address6_text(guest):
    if guest.address6_given is not None:
        return guest.address6_given
    return names.normalize_address(guest.net6)


def check_pool6_overlaps(hosts, problems):
    """tuntap_qemu_pool6 of each host is its own: no two hosts' pools overlap."""
    seen = []
    for host in hosts:
        if host.pool6 is None:
            continue
        other = next((entry for entry in seen if nets.overlap(host.pool6, entry.pool6)), None)
        if other is not None:
            problems.add(host.host, '%s: %s overlaps %s %s of %s; IPv6 pools are unique across the fleet'
                         % (schema.POOL6, host.pool6.cidr, schema.POOL6, other.pool6.cidr, other.host))
        else:
            seen.append(host)


def check_ipv6_networks(hosts, resolved, problems):
    """IPv6 guest networks - each routed guest's, each bridge's - are unique across the fleet
    (any topology: they are routed or advertised, never repeated). A guest given only an IPv6
    address takes part too, but two of those are checked as before (check_own_subnet_overlaps)."""
    # (host, path, net, label, new, guest or None): new - a network of the IPv6 settings
    # (address6, a bridge's), not a guest given only an IPv6 address
    entries = []
    for host in hosts:
        if host.bridge_net6 is not None:
            entries.append((host.host, host.bridge_net6_from, host.bridge_net6, 'the bridge of %s' % host.host,
                            True, None))
        if host.vde is not None and host.vde.net6 is not None:
            entries.append((host.host, '%s.address6' % schema.VDE, host.vde.net6,
                            'the VDE switch of %s' % host.host, True, None))
        for item in resolved[host.host]:
            if item is None:
                continue
            guest = item.guest
            own = guest_networks.of_guest(host, guest).own_subnets
            if guest.net6 is not None and own:
                entries.append((host.host, '%s.address6' % guest.path, guest.net6,
                                '%s %s' % (host.host, guest.label), True, guest))
            elif guest.net.version == 6 and own:
                entries.append((host.host, '%s.address' % guest.path, guest.net,
                                '%s %s' % (host.host, guest.label), False, guest))
    for index, (host, path, net, _label, new, guest) in enumerate(entries):
        for other_host, _path, other, label, other_new, _guest in entries[:index]:
            if not (new or other_new) or not nets.overlap(net, other):
                continue
            if other_host == host and net.ip == other.ip:
                continue    # the same address on this host: _check_host_duplicates6 says so
            shown = _address6_text(guest) if guest is not None and new else names.normalize_address(net)
            problems.add(host, '%s: %r is in %s, which overlaps %s of %s; IPv6 guest networks are '
                         'unique across the fleet' % (path, shown, net.cidr, other.cidr, label))
            break


def _check_host_duplicates(resolved, error):
    """Guests behind one bridge: addresses unique in the bridge subnet."""
    seen = {}
    for item in resolved:
        if item is None:
            continue
        guest = item.guest
        key = int(guest.net.ip)
        if key in seen:
            error('%s.address: %r is also used by %s on this host'
                  % (guest.path, nets.address_text(guest), seen[key].label))
        else:
            seen[key] = guest


def check_own_subnet_overlaps(hosts, resolved, problems):
    """Own guest subnets - each routed guest's, the VDE switch's - are unique on their host;
    those routed on the LAN across the fleet. A VDE guest is in its switch's subnet."""
    lan_routed = []
    for host in hosts:
        topology = host.topology
        if topology is None or not topology.guests.own_subnets:
            continue
        # (path, shown value, net, label) of each own subnet of this host
        subnets = []
        if host.vde is not None:
            subnets.append(('%s.address' % schema.VDE, names.normalize_address(host.vde.net), host.vde.net,
                            'the VDE switch (%s)' % schema.VDE))
        subnets.extend(('%s.address' % item.guest.path, nets.address_text(item.guest), item.guest.net,
                        item.guest.label) for item in resolved[host.host]
                       if item is not None and not item.guest.vde)
        local = []
        for path, shown, net, label in subnets:
            clash = next((other for other in local if nets.overlap(net, other[2])), None)
            remote = None
            if clash is None and topology.subnets_on_lan:
                remote = next((entry for entry in lan_routed if nets.overlap(net, entry[1][2])), None)
            if clash is not None:
                problems.add(host.host, '%s: %r is in %s, which overlaps %s of %s on '
                             'this host; each routed guest has a subnet of its own%s'
                             % (path, shown, net.cidr, clash[2].cidr, clash[3],
                                ' (a guest on the VDE switch has vde: true)' if host.vde is not None else ''))
            elif remote is not None:
                problems.add(host.host, '%s: %r is in %s, which overlaps %s of %s %s; '
                             'routed guest subnets are routed on the LAN and unique across the '
                             'fleet (routed_nat ones may repeat on other hosts)'
                             % (path, shown, net.cidr, remote[1][2].cidr, remote[0], remote[1][3]))
            local.append((path, shown, net, label))
        if topology.subnets_on_lan:
            lan_routed.extend((host.host, entry) for entry in local)


def check_guest_services(hosts, problems):
    """DHCP and port forwards of each host's guests (issue 12):
    - a dynamic range holds no guest address (planned or given, DHCP or not);
    - forwards only to guests behind NAT, and one forward per protocol and host port."""
    for host in hosts:
        error = problems.for_host(host.host)
        topology = host.topology
        if host.dhcp_range is not None:
            first, last = host.dhcp_range
            for guest in host.guests:
                if guest.net is not None and guest.net.version == 4 and first <= guest.net.ip <= last:
                    error('%s: %s-%s holds %s.address %s (%s); a dynamic range must leave the '
                          'planned addresses out' % (schema.DHCP_RANGE, first, last, guest.path,
                                                     guest.net.ip, guest.label))
        owners = {}
        for guest in host.guests:
            for forward in guest.forwards:
                if topology is not None and not topology.forwards:
                    why = ('so they are reached at their own address' if topology.forwarding
                           else 'and the host does not route to them: they never leave it')
                    error('%s: %s guests are not behind NAT, %s; port forwards need %s'
                          % (forward.path, topology.name, why,
                             topologies.names_where(lambda rule: rule.forwards, 'or')))
                    continue
                key = (forward.protocol, forward.port)
                if key in owners:
                    error('%s: %s port %d of this host is forwarded already by %s; one host port '
                          'goes to one guest' % (forward.path, forward.protocol, forward.port, owners[key]))
                else:
                    owners[key] = '%s (%s)' % (forward.path, guest.label)
