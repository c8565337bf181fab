# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks across the fleet, and each guest's address and gateway against its topology.

Rules (docs/inventory.md explains them to users):
- Guest names and MACs are unique across the fleet.
- LAN-visible addresses - every host's tuntap_qemu_uplink_address and every address of a
  guest on the LAN - are unique across the fleet.
- Own guest subnets routed on the LAN (routed) may not overlap across all such hosts; with
  NAT (routed_nat) only within their host; guests behind a bridge only within their bridge.
- Any guest subnet or bridge subnet of a host may not overlap that host's uplink subnet.
"""

from __future__ import annotations

from ansible_collections.tuntap.qemu.plugins.module_utils import names
from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import nets, schema


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
    fit its topology (the error says why) or it has no address."""
    error = problems.for_host(host.host)
    rule = host.topology.guests if host.topology is not None else None
    resolved = []
    for guest in host.guests:
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
        resolved.append(rule.resolve(host, guest, error) if rule is not None else None)
    if rule is not None and rule.unique_in_host:
        _check_host_duplicates(resolved, error)
    return resolved


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
    """Own guest subnets are unique on their host; those routed on the LAN across the fleet."""
    lan_routed = []
    for host in hosts:
        topology = host.topology
        if topology is None or not topology.guests.own_subnets:
            continue
        local = []
        for item in resolved[host.host]:
            if item is None:
                continue
            guest = item.guest
            net = guest.net
            clash = next((other for other in local if nets.overlap(net, other.net)), None)
            remote = None
            if clash is None and topology.subnets_on_lan:
                remote = next((entry for entry in lan_routed if nets.overlap(net, entry[1].net)), None)
            if clash is not None:
                problems.add(host.host, '%s.address: %r is in %s, which overlaps %s of %s on '
                             'this host; each routed guest has a subnet of its own'
                             % (guest.path, nets.address_text(guest), net.cidr, clash.net.cidr, clash.label))
            elif remote is not None:
                problems.add(host.host, '%s.address: %r is in %s, which overlaps %s of %s %s; '
                             'routed guest subnets are routed on the LAN and unique across the '
                             'fleet (routed_nat ones may repeat on other hosts)'
                             % (guest.path, nets.address_text(guest), net.cidr,
                                remote[1].net.cidr, remote[0], remote[1].label))
            local.append(guest)
        if topology.subnets_on_lan:
            lan_routed.extend((host.host, guest) for guest in local)


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
                    error('%s: %s guests are not behind NAT, so they are reached at their own '
                          'address; port forwards need routed_nat or bridged_nat'
                          % (forward.path, topology.name))
                    continue
                key = (forward.protocol, forward.port)
                if key in owners:
                    error('%s: %s port %d of this host is forwarded already by %s; one host port '
                          'goes to one guest' % (forward.path, forward.protocol, forward.port, owners[key]))
                else:
                    owners[key] = '%s (%s)' % (forward.path, guest.label)
