# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A valid Host record -> its plan: exactly what the roles hand to each module (taps for
tap_device, the bridge for bridge_port, the NAT sources for masquerade, the uplink check for
uplink_info, the guests for qemu_guest). The plan is plain data (the action plugin returns it)."""

from __future__ import annotations

from ansible_collections.tuntap.qemu.plugins.module_utils import names
from ansible_collections.tuntap.qemu.plugins.module_utils._guest import guest_config
from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import guest_networks, reading, schema, topologies


def host_plan(host, resolved):
    """The plan of `host`; resolved: checks.resolve_guests() of it (no None: it is valid)."""
    topology = host.topology
    rule = topology.guests
    # The host's guest networks: (kind, its guests) - the topology's, then the VDE switch's.
    groups = [(rule, [item for item in resolved if not item.guest.vde])]
    if host.vde is not None:
        groups.append((guest_networks.VDE_SUBNET, [item for item in resolved if item.guest.vde]))
    # tap_device's devices: the taps exist before their bridge; bridge_port makes them its ports.
    # A VDE guest has no tap; the switch has one, with the host side of the VDE subnet.
    taps = [{'name': item.guest.tap, 'user': item.guest.user, 'group': item.guest.group,
             'addresses': rule.tap_addresses(item) + rule.tap_addresses6(item)} for item in groups[0][1]]
    if host.vde is not None:
        taps.append({'name': host.vde.tap, 'user': None, 'group': None,
                     'addresses': [names.normalize_address(net) for net in (host.vde.net, host.vde.net6)
                                   if net is not None]})
    networks = [network for kind, items in groups for network in kind.internal_networks(host, items)]
    networks6 = [network for kind, items in groups for network in kind.internal_networks6(host, items)]
    nat = []
    if topology.nat:
        # masquerade's rules: one entry per guest network (IPv6 ones with NAT66 only).
        nat = [{'source': [source], 'out_interface': host.uplink}
               for source in networks + (networks6 if host.nat6 else [])]
    # ip_forward's families: IPv6 too where a guest network is IPv6 (a guest given only an
    # IPv6 address included).
    families = ['ipv4']
    if topology.forwarding and (networks6 or any(item.guest.net.version == 6 for item in resolved)):
        families.append('ipv6')
    bridge = None
    ports = [tap['name'] for tap in taps]
    # bridge_port's isolated ports (BR_ISOLATED): the taps of the isolated guests, never the uplink.
    isolated_ports = sorted(item.guest.tap for item in resolved if item.guest.isolated)
    if topology.bridge == topologies.INTERNAL:
        addresses = [names.normalize_address(net) for net in (host.bridge_net, host.bridge_net6) if net is not None]
        bridge = {'name': host.bridge, 'addresses': addresses,
                  'ports': ports, 'uplink': None, 'gateway': None,
                  'readdress': False, 'dhcp': False, 'isolated_ports': isolated_ports}
    elif topology.bridge == topologies.UPLINK:
        # A DHCP uplink: the bridge holds the lease (the client moves to it), no static address.
        # The uplink's static IPv6 address moves with its IPv4 one and is persisted on the bridge.
        addresses = [] if host.uplink_dhcp else [names.normalize_address(host.uplink_net)]
        addresses += _uplink_addresses6(host)
        bridge = {'name': host.bridge, 'addresses': addresses,
                  'ports': ports + [host.uplink], 'uplink': host.uplink,
                  'gateway': host.uplink_gateway, 'readdress': host.uplink_readdress,
                  'dhcp': host.uplink_dhcp, 'isolated_ports': isolated_ports}
    if host.uplink_dhcp:
        uplink_address = schema.UPLINK_DHCP
    elif host.uplink_net is not None:
        uplink_address = names.normalize_address(host.uplink_net)
    else:
        uplink_address = None
    return {
        'topology': topology.name,
        'uplink': host.uplink,
        'uplink_address': uplink_address,
        'uplink_gateway': host.uplink_gateway,
        'uplink_network': str(host.uplink_network.cidr) if host.uplink_network is not None else None,
        'uplink_check': _uplink_check(host, uplink_address),
        # confirmed_change's (and uplink_stanza's) parameters: the uplink a port of the bridge
        # (bridged_lan), or out of any bridge of ours that took it over (every other topology).
        'uplink_change': {'uplink': host.uplink, 'bridge': host.bridge or schema.DEFAULT_BRIDGE,
                          'takeover': topology.moves_uplink},
        'forwarding': topology.forwarding,
        'forwarding_families': families,
        'taps': taps,
        'bridge': bridge,
        'nat': nat,
        # guest_dhcp's parameters (None: no DHCP on this host), port_forward's list form.
        # vde_switch's parameters (None: no VDE switch on this host).
        'vde': _vde(host.vde),
        'dhcp': _dhcp(host, groups),
        'port_forwards': [_forward(item.guest, forward) for item in resolved for forward in item.guest.forwards],
        'guests': [_guest_plan(item, host.served_by_dhcp(item.guest), host.vde) for item in resolved],
    }


def _vde(vde):
    if vde is None:
        return None
    return {'tap': vde.tap, 'socket': vde.socket, 'group': vde.group, 'mode': vde.mode}


def _dhcp(host, groups):
    """One network per internal interface (each routed tap, the bridge, the VDE switch's tap)
    that has a guest served by DHCP, the bridge's dynamic range or an IPv6 network (router
    advertisements): a static lease (MAC -> planned address, name, IPv6 address for its AAAA
    record) per served guest. groups: [(kind of guest network, its Resolved guests)]."""
    if not host.dhcp:
        return None
    networks = []
    for kind, resolved in groups:
        # The dynamic range is the topology's shared subnet's (tuntap_qemu_dhcp_range).
        dhcp_range = host.dhcp_range if kind is host.topology.guests else None
        for interface, address, address6, items in kind.dhcp_networks(host, resolved):
            served = [item.guest for item in items if host.served_by_dhcp(item.guest)]
            if not served and dhcp_range is None and address6 is None:
                continue
            networks.append(_dhcp_network(interface, address, address6, dhcp_range, served))
    if not networks:
        return None
    label = host.host.split('.')[0]
    return {'domain': host.dns_domain, 'networks': networks,
            'host_name': label if reading.DNS_LABEL.match(label) else None}


def _dhcp_network(interface, address, address6, dhcp_range, served):
    return {
        'interface': interface,
        'address': address,
        'address6': address6,
        'range': [str(value) for value in dhcp_range] if dhcp_range is not None else None,
        'hosts': [{'mac': guest.mac, 'address': str(guest.net.ip), 'name': guest.name,
                   'address6': str(guest.net6.ip) if guest.net6 is not None else None} for guest in served],
    }


def _forward(guest, forward):
    return {'port': forward.port, 'protocol': forward.protocol, 'destination': str(guest.net.ip),
            'destination_port': forward.guest_port,
            'source': list(forward.source) if forward.source is not None else None}


def _uplink_addresses6(host):
    """[tuntap_qemu_uplink_address6 with prefix], or [] without it."""
    return [names.normalize_address(host.uplink_net6)] if host.uplink_net6 is not None else []


def _uplink_check(host, uplink_address):
    """The uplink_info parameters that compare the host with its inventory before anything
    changes (None when the inventory names no uplink address, or the host is readdressed on
    purpose). A topology that moves the uplink's addresses to its bridge persists only the
    inventory's addresses (IPv4 and the static IPv6 one) and gateway, so there they must match
    exactly."""
    if uplink_address is None or host.uplink_readdress:
        return None
    exact = host.topology.moves_uplink
    addresses6 = _uplink_addresses6(host)
    if host.uplink_dhcp:
        # Only a topology that moves the uplink checks a lease: the uplink (or the bridge,
        # after the takeover) holds a dynamic address and a DHCP client runs on it. Elsewhere
        # a static IPv6 address beside the lease is checked on its own.
        if not exact:
            if not addresses6:
                return None
            return {
                'name': host.uplink,
                'bridge': None,
                'addresses': addresses6,
                'gateway': None,
                'exact': False,
                'dhcp': False,
                'hint': ('%s: the inventory (%s %s) is not what the host holds; nothing was changed. '
                         'Correct the inventory' % (host.host, schema.UPLINK_ADDRESS6, addresses6[0])),
            }
        return {
            'name': host.uplink,
            'bridge': host.bridge,
            'addresses': [],
            'gateway': None,
            'exact': False,
            'dhcp': True,
            'hint': ('%s: the inventory (%s %s) expects a DHCP lease on %s (or %s after the '
                     'takeover) and a DHCP client running there; nothing was changed. Correct the '
                     'inventory, or start the DHCP client'
                     % (host.host, schema.UPLINK_ADDRESS, schema.UPLINK_DHCP, host.uplink, host.bridge)),
        }
    return {
        'name': host.uplink,
        'bridge': host.bridge if exact else None,
        'addresses': [uplink_address] + addresses6,
        'gateway': host.uplink_gateway,
        'exact': exact,
        'dhcp': False,
        'hint': ('%s: the inventory (%s %s%s%s) is not what the host holds; nothing was changed. '
                 'Correct the inventory%s'
                 % (host.host, schema.UPLINK_ADDRESS, uplink_address,
                    ', %s %s' % (schema.UPLINK_ADDRESS6, addresses6[0]) if addresses6 else '',
                    ', %s %s' % (schema.UPLINK_GATEWAY, host.uplink_gateway) if host.uplink_gateway else '',
                    ', or set %s: true to change the host\'s address on purpose' % schema.UPLINK_READDRESS
                    if exact else '')),
    }


def _guest_plan(resolved, dhcp, vde):
    guest = resolved.guest
    network, _errors = guest_config.guest_network(guest.path, names.normalize_address(guest.net),
                                                  resolved.gateway)
    network6 = None
    if guest.net6 is not None:
        network6, _errors = guest_config.guest_network(guest.path, names.normalize_address(guest.net6),
                                                       resolved.gateway6)
        network6['slaac'] = guest.slaac
    plan = {
        'name': guest.name,
        'tap': guest.tap,
        'mac': guest.mac,
        'user': guest.user,
        'group': guest.group,
        'run_as': guest.run_as,
        'address': network['address'],
        'ip': network['ip'],
        'prefixlen': network['prefixlen'],
        'netmask': network['netmask'],
        'network': network['network'],
        'gateway': network['gateway'],
        'kernel_ip': (guest_config.render_kernel_ip(network, guest.name)
                      if network['version'] == 4 else None),
        'interfaces_stanza': guest_config.render_interfaces_stanza(network, inet6=network6),
        'address6': network6['address'] if network6 else None,
        'ip6': network6['ip'] if network6 else None,
        'gateway6': network6['gateway'] if network6 else None,
        'slaac': guest.slaac,
        'derived': sorted(guest.derived),
        # Its address is a static lease of the host's DHCP server (and its name in the zone).
        'dhcp': dhcp,
        # An isolated port of the bridge; on the VDE switch (its socket; tap None).
        'isolated': guest.isolated,
        'vde': vde.socket if guest.vde else None,
    }
    plan.update(guest.options)
    if 'kernel' in plan and not dhcp:
        # A guest booted from a kernel gets the kernel ip= argument unless its append names
        # one already (Debian's initramfs-tools and the lab guest both read it); a guest
        # served by DHCP asks for its address, as stock images do.
        given = plan.get('append') or ''
        extra = plan['kernel_ip'] if plan['kernel_ip'] and 'ip=' not in given else ''
        append = ' '.join(part for part in (given, extra) if part)
        if append:
            plan['append'] = append
    return plan
