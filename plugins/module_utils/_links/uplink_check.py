# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Does the host's uplink hold what the inventory says it holds?

The roles converge the host from the inventory, and they persist the inventory's uplink
address and gateway (bridged_lan writes them into the bridge's stanza). At runtime the
bridged_lan takeover moves whatever the uplink really holds. When the two differ, the host
works until its next boot and then comes up on the wrong subnet. So before anything
changes, the addresses and the default route of the uplink (or, once the takeover is done,
of the bridge that holds them) are compared with the inventory; any difference is an error
and nothing is touched.

    holder = lan_holder(snapshot, 'eth0', bridge='br0')
    facts, errors = check_uplink(snapshot, routes_of_holder, spec, clients)

A DHCP uplink (spec dhcp) is checked for a lease instead: the holder has a dynamic IPv4
address (one with a finite lifetime, rtnl_snapshot's `dynamic`) and a DHCP client runs on it.
A static check that moves the uplink (exact) refuses an uplink whose address is a lease: the
takeover would make a static copy of it and leave the client on a bridge port.

What the kernel makes itself from the LAN router's advertisements is not compared: SLAAC
addresses and their temporary ones (the snapshot's `autoconf`, apart from `addresses`) and
RA routes (read_routes() leaves them out) come back by themselves on whichever link hears the
router, at runtime as at boot, so an exact check neither counts nor persists them; the facts
list the addresses as `autoconf`. A static IPv6 address is compared like an IPv4 one.

Pure functions over a link snapshot (reading.read_snapshot()) and routes
(reading.read_routes()); nothing here touches the kernel.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.tuntap.qemu.plugins.module_utils import names
from ansible_collections.tuntap.qemu.plugins.module_utils._links import dhcp_client, reading


def _interface(text):
    return ipaddress.ip_interface(text)


def spec_errors(params):
    """Errors of the uplink_info parameters (name, bridge, addresses, gateway)."""
    errors = []
    for key in ('name', 'bridge'):
        if params.get(key) is not None:
            message = names.ifname_error(key, params[key])
            if message:
                errors.append(message)
    for index, address in enumerate(params.get('addresses') or []):
        _net, message = names.parse_interface_address('addresses[%d]' % index, address)
        if message:
            errors.append(message)
    if params.get('dhcp') and (params.get('addresses') or params.get('gateway')):
        errors.append('dhcp: a lease is checked, not addresses or gateway; give neither')
    gateway = params.get('gateway')
    if gateway is not None:
        try:
            if ipaddress.ip_address(gateway).version != 4:
                errors.append('gateway: %r is not an IPv4 address' % gateway)
        except ValueError:
            errors.append('gateway: %r is not an IP address' % gateway)
    return errors


def lan_holder(snapshot, uplink, bridge=None):
    """The link that holds the host's LAN addresses: the uplink itself, or the bridge it is a
    port of once the takeover moved them there (a port without addresses of its own).
    None when the uplink does not exist."""
    link = snapshot.get(uplink)
    if link is None:
        return None
    master = link.get('master')
    if link['addresses'] or master is None:
        return uplink
    if bridge is not None and master != bridge:
        return uplink
    master_link = snapshot.get(master)
    if master_link is None or master_link.get('kind') != 'bridge':
        return uplink
    return master


def _default_routes(routes, family):
    return [route for route in routes if route['dst'] == 'default' and route['family'] == family]


def _lease(snapshot, holder):
    """The holder's first dynamic IPv4 address (ADDRESS/PREFIX), or None."""
    dynamic = snapshot[holder].get('dynamic') or {}
    leases = sorted(address for address in dynamic if _interface(address).version == 4)
    return leases[0] if leases else None


def _client_facts(client):
    return {'pid': client.pid, 'program': client.program, 'argv': list(client.argv),
            'pidfile': client.pidfile, 'leasefile': client.leasefile}


def check_lease(snapshot, spec, clients):
    """(facts, errors) of a DHCP uplink: the uplink or (after the takeover) its bridge holds a
    dynamic IPv4 address and a DHCP client runs on it. clients: {ifname: [dhcp_client.Client]}."""
    name = spec['name']
    holder = lan_holder(snapshot, name, spec.get('bridge'))
    if holder is None:
        return {'name': name, 'exists': False}, ['%s: no such interface on this host' % name]
    lease = _lease(snapshot, holder)
    running = clients.get(holder) or []
    facts = {'name': name, 'exists': True, 'holder': holder, 'master': snapshot[name].get('master'),
             'addresses': sorted(snapshot[holder]['addresses']), 'lease': lease,
             'dhcp_client': _client_facts(running[0]) if running else None}
    where = name if holder == name else '%s (through the bridge %s, which holds its addresses)' % (name, holder)
    errors = []
    if lease is None:
        errors.append('%s holds %s, no DHCP lease (no IPv4 address with a finite lifetime)'
                      % (where, ', '.join(facts['addresses']) or 'no address'))
    if not running:
        errors.append('no DHCP client (%s) runs on %s' % (', '.join(dhcp_client.PROGRAMS), holder))
    return facts, errors


def lease_error(snapshot, holder, clients):
    """The error of a static check whose uplink holds a lease (a dynamic address, or a DHCP
    client runs on it), else None."""
    lease = _lease(snapshot, holder)
    running = clients.get(holder) or []
    if lease is None and not running:
        return None
    what = 'holds %s as a DHCP lease' % lease if lease else 'has a DHCP client'
    who = ' (%s)' % ', '.join(client.describe() for client in running) if running else ''
    return '%s %s%s; set tuntap_qemu_uplink_address: dhcp' % (holder, what, who)


def check_uplink(snapshot, routes, spec, clients=None):
    """(facts, errors) for one uplink.

    spec: name (the uplink), bridge (a bridge that may hold its addresses already, or None),
    addresses (what it must hold, ADDRESS/PREFIX; None = not checked), gateway (the IPv4
    router of its default route; None = not checked, except with exact), exact (bridged_lan:
    everything the uplink holds moves to the bridge at runtime, and only what is named here
    comes back at boot, so it must hold exactly these addresses, its IPv4 default route must
    be via `gateway` (or absent without one) and no other configured route may go through it).
    routes: reading.read_routes() of the holder (lan_holder()).
    clients: {ifname: [dhcp_client.Client]} of the holder (exact and dhcp read them).
    """
    if spec.get('dhcp'):
        return check_lease(snapshot, spec, clients or {})
    name = spec['name']
    holder = lan_holder(snapshot, name, spec.get('bridge'))
    if holder is None:
        return {'name': name, 'exists': False}, ['%s: no such interface on this host' % name]
    have = sorted(snapshot[holder]['addresses'], key=lambda text: (_interface(text).version, _interface(text)))
    defaults = _default_routes(routes, 4)
    have_gateway = defaults[0].get('gateway') if defaults else None
    facts = {
        'name': name,
        'exists': True,
        'holder': holder,
        'master': snapshot[name].get('master'),
        'addresses': have,
        'autoconf': sorted(snapshot[holder].get('autoconf') or {}, key=_interface),
        'gateway': have_gateway,
        'routes': [reading.describe_route(route) for route in routes],
    }
    where = name if holder == name else '%s (through the bridge %s, which holds its addresses)' % (name, holder)
    held = ', '.join(have) or 'no address'
    errors = []
    wanted = spec.get('addresses')
    if wanted is not None:
        wanted_set = set(_interface(address) for address in wanted)
        have_set = set(_interface(address) for address in have)
        missing = sorted(wanted_set - have_set, key=lambda item: (item.version, item))
        if missing:
            errors.append('%s holds %s, not %s' % (where, held, ', '.join(str(item) for item in missing)))
        extra = sorted(have_set - wanted_set, key=lambda item: (item.version, item))
        if spec.get('exact') and extra and not missing:
            errors.append('%s also holds %s, which would move to the bridge now but not come back '
                          'at boot' % (where, ', '.join(str(item) for item in extra)))
    gateway = spec.get('gateway')
    if gateway is not None:
        if not defaults:
            errors.append('%s has no IPv4 default route, but the gateway is %s' % (where, gateway))
        elif ipaddress.ip_address(gateway) != ipaddress.ip_address(have_gateway or '0.0.0.0'):
            errors.append('the default route of %s is via %s, not %s'
                          % (where, have_gateway or 'no gateway', gateway))
    elif spec.get('exact') and defaults:
        errors.append('%s has the default route via %s, which would move to the bridge now but '
                      'not come back at boot without the gateway' % (where, have_gateway))
    if spec.get('exact'):
        message = lease_error(snapshot, holder, clients or {})
        if message:
            errors.append(message)
        others = [route for route in routes
                  if not (route['dst'] == 'default' and route['family'] == 4)]
        if others:
            errors.append('%s has the route(s) %s, which would move to the bridge now but not '
                          'come back at boot' % (where, ', '.join(reading.describe_route(route) for route in others)))
    return facts, errors
