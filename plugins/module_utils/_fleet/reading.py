# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One host's variables -> a Host record, with every problem that needs only this host."""

from __future__ import annotations

import re

from ansible_collections.tuntap.qemu.plugins.module_utils import names
from ansible_collections.tuntap.qemu.plugins.module_utils._guest import guest_config, guest_plan
from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import nets, schema, topologies
from ansible_collections.tuntap.qemu.plugins.module_utils._fleet.records import Forward, Guest, Host, Vde

# A DNS label of a host name (RFC 1123): what a guest served by DHCP is named in the zone.
DNS_LABEL = re.compile(r'^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$')


def read_host(name, variables, error):
    """The Host record of inventory host `name`; problems go to error(text)."""
    if not isinstance(variables, dict):
        error('host variables are not a mapping: %r' % (variables,))
        variables = {}
    fields = {'host': name, 'uplink': schema.DEFAULT_UPLINK}

    topology = None
    value = variables.get(schema.TOPOLOGY)
    known = topologies.names()
    if value is None:
        error('%s: missing; set one of %s' % (schema.TOPOLOGY, ', '.join(known)))
    elif value not in known:
        error('%s: %r is not one of %s' % (schema.TOPOLOGY, value, ', '.join(known)))
    else:
        topology = topologies.TOPOLOGIES[value]
    fields['topology'] = topology

    uplink = variables.get(schema.UPLINK)
    if uplink is not None:
        message = names.ifname_error(schema.UPLINK, uplink)
        if message:
            error(message)
        else:
            fields['uplink'] = uplink

    address = variables.get(schema.UPLINK_ADDRESS)
    dhcp = address == schema.UPLINK_DHCP
    if dhcp:
        fields['uplink_dhcp'] = True
    elif address is not None:
        fields['uplink_net'] = nets.interface_address(schema.UPLINK_ADDRESS, address, error)
    elif topology is not None and topology.needs_uplink_address:
        error('%s: missing; %s needs the host\'s LAN address with its prefix '
              '(such as 10.0.0.11/24), or %s for a DHCP lease: it moves to the bridge, and '
              'guests must be in its subnet' % (schema.UPLINK_ADDRESS, topology.name, schema.UPLINK_DHCP))
    address6 = variables.get(schema.UPLINK_ADDRESS6)
    if address6 is not None and address6 != '':
        fields['uplink_net6'] = _uplink_address6(address6, error)
    # A missing or broken uplink address is reported once, above.
    address_reported = address is not None or (topology is not None and topology.needs_uplink_address)
    gateway = variables.get(schema.UPLINK_GATEWAY)
    if dhcp and gateway not in (None, ''):
        error('%s: %r is given with %s: %s; the lease gives the router, leave it out'
              % (schema.UPLINK_GATEWAY, gateway, schema.UPLINK_ADDRESS, schema.UPLINK_DHCP))
    else:
        fields['uplink_gateway'] = _uplink_gateway(fields.get('uplink_net'), gateway, address_reported, error)
    network = variables.get(schema.UPLINK_NETWORK)
    # Empty means none (the role's default).
    if network is not None and network != '':
        fields['uplink_network'] = _uplink_network(fields.get('uplink_net'), network, error)
    readdress = variables.get(schema.UPLINK_READDRESS)
    if readdress is not None and not isinstance(readdress, bool):
        error('%s: %r is not a boolean' % (schema.UPLINK_READDRESS, readdress))
    elif readdress and dhcp:
        error('%s: true with %s: %s; a lease is not readdressed by the inventory (the DHCP '
              'client moves to the bridge with its lease)'
              % (schema.UPLINK_READDRESS, schema.UPLINK_ADDRESS, schema.UPLINK_DHCP))
    elif readdress and topology is not None:
        if not topology.moves_uplink:
            error('%s: only bridged_lan moves the host\'s address (to the bridge); change the '
                  'uplink\'s address in its own configuration first' % schema.UPLINK_READDRESS)
        else:
            fields['uplink_readdress'] = True

    if topology is not None and topology.bridge is not None:
        bridge = variables.get(schema.BRIDGE)
        bridge = schema.DEFAULT_BRIDGE if bridge is None else bridge
        message = names.ifname_error(schema.BRIDGE, bridge)
        if message:
            error(message)
        elif bridge == fields['uplink']:
            error('%s: %r is also the uplink (%s)' % (schema.BRIDGE, bridge, schema.UPLINK))
        else:
            fields['bridge'] = bridge
    if topology is not None and topology.needs_bridge_address:
        bridge_address = variables.get(schema.BRIDGE_ADDRESS)
        if bridge_address is None:
            error('%s: missing; %s needs the guests\' gateway on the bridge with its '
                  'prefix, such as 192.168.0.1/24' % (schema.BRIDGE_ADDRESS, topology.name))
        else:
            fields['bridge_net'] = nets.interface_address(schema.BRIDGE_ADDRESS, bridge_address, error)
        bridge_net, uplink_net = fields.get('bridge_net'), fields.get('uplink_net')
        if bridge_net is not None and uplink_net is not None and nets.overlap(bridge_net, uplink_net):
            error('%s: %r overlaps the uplink subnet %s (%s)'
                  % (schema.BRIDGE_ADDRESS, bridge_address, uplink_net.cidr, schema.UPLINK_ADDRESS))

    pool = variables.get(schema.POOL)
    if pool is not None:
        fields['pool'] = _read_pool(topology, fields.get('bridge_net'), pool, error)
        # A broken pool is reported once, not again as every address it should have planned.
        fields['pool_broken'] = fields['pool'] is None

    for variable, key in ((schema.GUEST_USER, 'guest_user'), (schema.GUEST_GROUP, 'guest_group')):
        value = variables.get(variable)
        if value is not None:
            fields[key] = _owner(variable, value, error)

    fields.update(_read_dhcp(topology, fields.get('bridge_net'), variables, error))
    fields.update(_read_ipv6(topology, fields['dhcp'], variables, error))
    bridge_net6, uplink_net6 = fields.get('bridge_net6'), fields.get('uplink_net6')
    if bridge_net6 is not None and uplink_net6 is not None and nets.overlap(bridge_net6, uplink_net6):
        error('%s: %s overlaps the uplink\'s IPv6 subnet %s (%s)'
              % (fields['bridge_net6_from'], names.normalize_address(bridge_net6), uplink_net6.cidr,
                 schema.UPLINK_ADDRESS6))
        fields['bridge_net6'] = None
    if uplink_net6 is not None and fields.get('uplink_dhcp') and topology is not None and topology.moves_uplink:
        error('%s: %r is given with %s: %s, but %s moves the DHCP client to the bridge, whose lease '
              'takes no static address beside it; leave it out (the bridge takes its IPv6 address by '
              'SLAAC from the LAN\'s router)'
              % (schema.UPLINK_ADDRESS6, variables.get(schema.UPLINK_ADDRESS6), schema.UPLINK_ADDRESS,
                 schema.UPLINK_DHCP, topology.name))

    fields.update(_read_vde(topology, fields, variables.get(schema.VDE), variables.get(schema.VDE_RUNTIME_DIR), error))

    guests = variables.get(schema.GUESTS)
    if guests is None:
        guests = []
    if not isinstance(guests, list):
        error('%s: %r is not a list of guests' % (schema.GUESTS, guests))
        guests = []
    host = Host(**fields)
    guests = tuple(_read_guest(host, index, entry, error) for index, entry in enumerate(guests))
    _check_taps(host, guests, error)
    return Host(guests=guests, **fields)


def _read_vde(topology, fields, value, runtime_dir, error):
    """tuntap_qemu_vde (and _vde_runtime_dir) -> Host fields (vde: a Vde record, vde_broken
    when it is invalid)."""
    if runtime_dir is None or runtime_dir == '':
        runtime_dir = schema.DEFAULT_VDE_RUNTIME_DIR
    elif not isinstance(runtime_dir, str) or not runtime_dir.startswith('/') or '\n' in runtime_dir:
        error('%s: %r is not an absolute path' % (schema.VDE_RUNTIME_DIR, runtime_dir))
        runtime_dir = None
    if value is None or value == {} or value == '':
        return {}     # none (empty: the role's default)
    variable = schema.VDE
    if topology is not None and not topology.vde:
        error('%s: is given, but %s has no routed guest network for a VDE switch\'s tap (its guests '
              '%s); a VDE switch is for %s'
              % (variable, topology.name, 'share a bridge' if topology.shares_bridge else 'are on the LAN',
                 topologies.names_where(lambda rule: rule.vde)))
        return {'vde_broken': True}
    if not isinstance(value, dict):
        error('%s: %r is not a mapping such as {address: 192.168.20.1/24}' % (variable, value))
        return {'vde_broken': True}
    problems = []
    for key in sorted(value, key=str):
        if key not in schema.VDE_KEYS:
            problems.append('%s: unknown key %r; it takes %s' % (variable, key, ', '.join(schema.VDE_KEYS)))
    net = None
    address = value.get('address')
    where = '%s.address' % variable
    if address is None:
        problems.append('%s: missing; the host side of the VDE subnet on the switch\'s tap, with its '
                        'prefix, such as 192.168.20.1/24 (the VDE guests\' gateway)' % where)
    else:
        net = nets.interface_address(where, address, problems.append)
        if net is not None and net.version != 4:
            problems.append('%s: %r is not an IPv4 address; write ADDRESS/PREFIX such as 192.168.20.1/24'
                            % (where, address))
            net = None
        elif net is not None and net.size < 4:
            problems.append('%s: %r leaves no room for guests beside the host side; give a subnet such '
                            'as /24' % (where, address))
            net = None
        elif net is not None and net.ip in (net.network, net.broadcast):
            problems.append('%s: %r is the network or broadcast address of %s' % (where, address, net.cidr))
            net = None
    net6 = None
    address6 = value.get('address6')
    if address6 is not None and address6 != '':
        where6 = '%s.address6' % variable
        net6 = _ipv6_address(where6, address6, problems.append)
        if net6 is not None and (net6.ip.is_link_local() or net6.ip.is_multicast() or net6.size <= 2):
            problems.append('%s: %r is not a global or unique local address of a network with room for '
                            'guests, such as fd00:20::1/64' % (where6, address6))
            net6 = None
        elif net6 is not None and fields.get('dhcp') and net6.prefixlen != schema.POOL6_SUBNET_PREFIX:
            problems.append('%s: %r is a /%d, but the host advertises the VDE network for SLAAC (%s), '
                            'which needs exactly /%d' % (where6, address6, net6.prefixlen, schema.DHCP,
                                                         schema.POOL6_SUBNET_PREFIX))
            net6 = None
    tap = value.get('tap')
    tap = schema.DEFAULT_VDE_TAP if tap is None else tap
    message = names.ifname_error('%s.tap' % variable, tap)
    if message:
        problems.append(message)
    elif tap == fields.get('uplink'):
        problems.append('%s.tap: %r is also the uplink (%s)' % (variable, tap, schema.UPLINK))
    group = value.get('group')
    if group is not None:
        group = _owner('%s.group' % variable, group, problems.append)
    elif fields.get('guest_group') is not None:
        group = fields['guest_group']
    for problem in problems:
        error(problem)
    if problems or runtime_dir is None:
        return {'vde_broken': True}
    for subnet, other, other_variable in ((net, fields.get('uplink_net'), schema.UPLINK_ADDRESS),
                                          (net, fields.get('uplink_network'), schema.UPLINK_NETWORK),
                                          (net6, fields.get('uplink_net6'), schema.UPLINK_ADDRESS6)):
        if subnet is not None and other is not None and nets.overlap(subnet, other):
            error('%s.%s: %r is in %s, which overlaps the uplink subnet %s (%s)'
                  % (variable, 'address' if subnet is net else 'address6', address if subnet is net else address6,
                     subnet.cidr, other.cidr, other_variable))
            return {'vde_broken': True}
    return {'vde': Vde(tap=tap, net=net, net6=net6, group=str(group) if group is not None else None,
                       runtime_dir=runtime_dir)}


def _read_dhcp(topology, bridge_net, variables, error):
    """tuntap_qemu_dhcp, _dhcp_range and _dns_domain -> Host fields."""
    fields = {}
    value = variables.get(schema.DHCP)
    default = topology.dhcp if topology is not None else False
    if value is None or value == '':
        dhcp = default
    elif not isinstance(value, bool):
        error('%s: %r is not true or false' % (schema.DHCP, value))
        dhcp = False
    elif value and topology is not None and not topology.dhcp:
        error('%s: true, but %s guests are on the LAN, whose own DHCP server gives them their '
              'addresses; leave it out' % (schema.DHCP, topology.name))
        dhcp = False
    else:
        dhcp = value
    fields['dhcp'] = dhcp

    value = variables.get(schema.DHCP_RANGE)
    if value is not None and value != '':
        dhcp_range = _dhcp_range(value, error)
        if dhcp_range is None:
            pass
        elif topology is not None and not topology.guests.unique_in_host:
            error('%s: %r is given, but %s guests have a subnet each (a tap of their own); a '
                  'dynamic range is for a shared guest subnet (bridged_nat)'
                  % (schema.DHCP_RANGE, value, topology.name))
        elif topology is not None and not dhcp:
            error('%s: %r is given, but %s is false' % (schema.DHCP_RANGE, value, schema.DHCP))
        elif bridge_net is not None and not all(address in bridge_net.cidr for address in dhcp_range):
            error('%s: %r is not inside the bridge subnet %s (%s)'
                  % (schema.DHCP_RANGE, value, bridge_net.cidr, schema.BRIDGE_ADDRESS))
        elif bridge_net is not None and (dhcp_range[0] == bridge_net.network or dhcp_range[1] == bridge_net.broadcast):
            error('%s: %r holds the network or broadcast address of %s'
                  % (schema.DHCP_RANGE, value, bridge_net.cidr))
        elif bridge_net is not None and dhcp_range[0] <= bridge_net.ip <= dhcp_range[1]:
            error('%s: %r holds the bridge address %s, the guests\' gateway (%s)'
                  % (schema.DHCP_RANGE, value, bridge_net.ip, schema.BRIDGE_ADDRESS))
        else:
            fields['dhcp_range'] = dhcp_range

    value = variables.get(schema.DNS_DOMAIN)
    if value is not None and value != '':
        if not isinstance(value, str) or not _dns_name(value):
            error('%s: %r is not a DNS domain name (labels of letters, digits and -, separated '
                  'by dots, such as qemu.internal)' % (schema.DNS_DOMAIN, value))
        else:
            fields['dns_domain'] = value.lower().rstrip('.')
    return fields


def _read_ipv6(topology, dhcp, variables, error):
    """tuntap_qemu_pool6, _bridge_address6 and _nat6 -> Host fields."""
    fields = {}
    rule = topology.guests if topology is not None else None
    refused = False
    for variable in (schema.POOL6, schema.BRIDGE_ADDRESS6, schema.NAT6):
        value = variables.get(variable)
        if value is None or value == '' or value is False:
            continue
        message = rule.ipv6_refused(topology) if rule is not None else None
        if message:
            error('%s: %s is given, but %s' % (variable, 'true' if value is True else repr(value), message))
            refused = True

    value = variables.get(schema.NAT6)
    if value is not None and value != '':
        if not isinstance(value, bool):
            error('%s: %r is not true or false' % (schema.NAT6, value))
        elif value and topology is not None and rule.ipv6_refused(topology) is None:
            if not topology.nat:
                why = ('their /64s are routed' if topology.forwarding
                       else 'the host does not route them: they never leave it')
                error('%s: true, but %s guests are not behind NAT (%s); NAT66 is for %s'
                      % (schema.NAT6, topology.name, why, topologies.names_where(lambda rule: rule.nat)))
            else:
                fields['nat6'] = True

    if refused:
        return fields
    value = variables.get(schema.POOL6)
    if value is not None and value != '':
        fields['pool6'] = _read_pool6(value, error)
        fields['pool6_broken'] = fields['pool6'] is None

    value = variables.get(schema.BRIDGE_ADDRESS6)
    if value is not None and value != '' and topology is not None:
        if not topology.needs_bridge_address:
            error('%s: %r is given, but %s has no bridge of its own; the IPv6 address of each '
                  'tap comes from %s or the guest\'s address6'
                  % (schema.BRIDGE_ADDRESS6, value, topology.name, schema.POOL6))
        else:
            net = _ipv6_address(schema.BRIDGE_ADDRESS6, value, error)
            if net is not None and dhcp and net.prefixlen != schema.POOL6_SUBNET_PREFIX:
                error('%s: %r is a /%d, but the host advertises the bridge network for SLAAC (%s), '
                      'which needs exactly /%d' % (schema.BRIDGE_ADDRESS6, value, net.prefixlen,
                                                   schema.DHCP, schema.POOL6_SUBNET_PREFIX))
                net = None
            if net is not None:
                fields['bridge_net6'], fields['bridge_net6_from'] = net, schema.BRIDGE_ADDRESS6
    elif fields.get('pool6') is not None and topology is not None and topology.needs_bridge_address:
        # Without an address of its own the bridge takes ::1 of the pool's first /64.
        first = fields['pool6'].first
        fields['bridge_net6'] = nets.net(first + 1, schema.POOL6_SUBNET_PREFIX, 6)
        fields['bridge_net6_from'] = schema.POOL6
    return fields


def _read_pool6(value, error):
    pool, message = names.parse_network(schema.POOL6, value)
    if message:
        error(message)
        return None
    if pool.version != 6 or pool.prefixlen > schema.POOL6_SUBNET_PREFIX:
        error('%s: %r cannot hold IPv6 /%d networks; give an IPv6 network of prefix /%d or '
              'shorter, such as fd00:1::/56' % (schema.POOL6, value, schema.POOL6_SUBNET_PREFIX,
                                                schema.POOL6_SUBNET_PREFIX))
        return None
    return pool


def _ipv6_address(path, value, error):
    """An IPv6 ADDRESS/PREFIX as an IPNetwork, or None (reported)."""
    net = nets.interface_address(path, value, error)
    if net is not None and net.version != 6:
        error('%s: %r is not an IPv6 address; write ADDRESS/PREFIX such as fd00:1::10/64' % (path, value))
        return None
    return net


def _dhcp_range(value, error):
    """'A-B' or [A, B] -> (first, last) IPv4 addresses, or None (reported)."""
    if isinstance(value, str):
        parts = [part.strip() for part in value.split('-')]
    elif isinstance(value, list):
        parts = value
    else:
        parts = []
    addresses = [nets.parse_ip(part) if isinstance(part, str) else None for part in parts]
    if len(addresses) != 2 or None in addresses or any(address.version != 4 for address in addresses):
        error('%s: %r is not a range of two IPv4 addresses, such as 192.168.5.100-192.168.5.150'
              % (schema.DHCP_RANGE, value))
        return None
    if addresses[0] > addresses[1]:
        error('%s: %r ends before it starts' % (schema.DHCP_RANGE, value))
        return None
    return tuple(addresses)


def _dns_name(value):
    labels = value.rstrip('.').split('.')
    return len(value) <= 253 and all(DNS_LABEL.match(label) for label in labels)


def _uplink_gateway(uplink_net, value, address_reported, error):
    """The LAN router of the uplink's default route: an IPv4 address in the uplink subnet
    other than the host's own. Empty means none (the role's default)."""
    if value is None or value == '':
        return None
    gateway = nets.parse_ip(value) if isinstance(value, str) else None
    if gateway is None or gateway.version != 4:
        error('%s: %r is not an IPv4 address' % (schema.UPLINK_GATEWAY, value))
        return None
    if uplink_net is None:
        if not address_reported:
            error('%s: %r needs %s (the host\'s LAN address, in whose subnet the router is)'
                  % (schema.UPLINK_GATEWAY, value, schema.UPLINK_ADDRESS))
        return None
    if gateway not in uplink_net.cidr:
        error('%s: %r is outside the uplink subnet %s (%s)'
              % (schema.UPLINK_GATEWAY, value, uplink_net.cidr, schema.UPLINK_ADDRESS))
        return None
    if gateway == uplink_net.ip:
        error('%s: %r is the host\'s own address (%s)' % (schema.UPLINK_GATEWAY, value, schema.UPLINK_ADDRESS))
        return None
    return str(gateway)


def _uplink_address6(value, error):
    """The uplink's static IPv6 address (tuntap_qemu_uplink_address6) as an IPNetwork, or
    None (reported): a global or unique local ADDRESS/PREFIX."""
    net = _ipv6_address(schema.UPLINK_ADDRESS6, value, error)
    if net is None:
        return None
    if net.ip.is_link_local() or net.ip.is_loopback() or net.ip.is_multicast():
        error('%s: %r is not a global or unique local address; the kernel makes the uplink\'s '
              'link-local address itself' % (schema.UPLINK_ADDRESS6, value))
        return None
    return net


def _uplink_network(uplink_net, value, error):
    """The LAN subnet (tuntap_qemu_uplink_network) as an IPNetwork, or None (reported)."""
    network, message = names.parse_network(schema.UPLINK_NETWORK, value)
    if message:
        error(message)
        return None
    if uplink_net is not None and uplink_net.cidr != network.cidr:
        error('%s: %r is not the subnet of %s %s (%s)'
              % (schema.UPLINK_NETWORK, value, schema.UPLINK_ADDRESS, names.normalize_address(uplink_net),
                 uplink_net.cidr))
        return None
    return network


def _read_pool(topology, bridge_net, value, error):
    pool, message = names.parse_network(schema.POOL, value)
    if message:
        error(message)
        return None
    kind = topology.guests.pool if topology is not None else None
    prefix = schema.POOL_SUBNET_PREFIX
    if kind == 'subnets' and (pool.version != 4 or pool.prefixlen > prefix):
        error('%s: %r cannot hold /%d subnets; routed topologies plan IPv4 /%d guest subnets '
              'from a pool of prefix /%d or shorter, such as 192.168.0.0/16'
              % (schema.POOL, value, prefix, prefix, prefix))
        return None
    if kind == 'addresses' and bridge_net is not None and not nets.overlap(pool, bridge_net):
        error('%s: %r does not overlap the bridge subnet %s (%s); %s plans guest '
              'addresses where both meet' % (schema.POOL, value, bridge_net.cidr, schema.BRIDGE_ADDRESS,
                                             topology.name))
        return None
    return pool


def _owner(path, value, error):
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == '':
        error('%s: %r is not a user or group name or numeric id' % (path, value))
        return None
    return value


def _read_guest(host, index, entry, error):
    path = '%s[%d]' % (schema.GUESTS, index)
    fields = {'index': index, 'path': path, 'tap': 'tap%d' % index,
              'user': host.guest_user, 'group': host.guest_group}
    derived = []
    if not isinstance(entry, dict):
        error('%s: %r is not a mapping with at least a name' % (path, entry))
        return Guest(**fields)
    fields['valid_entry'] = True
    for key in sorted(entry, key=str):
        if key not in schema.GUEST_KEYS:
            error('%s: unknown key %r; a guest takes %s' % (path, key, ', '.join(schema.GUEST_KEYS)))

    name = entry.get('name')
    if name is None:
        error('%s.name: missing; every guest needs a name' % path)
    elif not isinstance(name, str) or not guest_plan.GUEST_NAME.match(name):
        error('%s.name: %r must be 1-63 characters of letters, digits, ., _ and -, starting '
              'with a letter or digit' % (path, name))
    else:
        fields['name'] = name

    for key in schema.GUEST_ATTACHMENT_KEYS:
        value = entry.get(key)
        if value is not None and not isinstance(value, bool):
            error('%s.%s: %r is not true or false' % (path, key, value))
        elif value:
            fields[key] = True
    topology = host.topology
    if fields.get('isolated') and fields.get('vde'):
        error('%s.isolated: true, but the guest is on the VDE switch (vde: true), which has no isolated '
              'ports; give one of them' % path)
        fields['isolated'] = False
    elif fields.get('isolated') and topology is not None and not topology.shares_bridge:
        error('%s.isolated: true, but %s guests have a tap and a subnet of their own, so they reach each '
              'other only through the host; isolation is for guests that share a bridge (%s)'
              % (path, topology.name, topologies.names_where(lambda rule: rule.shares_bridge)))
        fields['isolated'] = False
    if fields.get('vde'):
        if topology is not None and not topology.vde:
            error('%s.vde: true, but %s has no VDE switch; a VDE switch is for %s'
                  % (path, topology.name, topologies.names_where(lambda rule: rule.vde)))
        elif host.vde is None and not host.vde_broken:
            error('%s.vde: true, but the host has no VDE switch; set %s' % (path, schema.VDE))
        if entry.get('tap') is not None:
            error('%s.tap: %r is given, but the guest is on the VDE switch (vde: true), whose tap is the '
                  'host\'s; leave it out' % (path, entry['tap']))
        fields['tap'] = None
    elif entry.get('tap') is None:
        derived.append('tap')
    else:
        fields['tap'] = entry['tap']

    for key in ('user', 'group', 'run_as'):
        if entry.get(key) is not None:
            fields[key] = _owner('%s.%s' % (path, key), entry[key], error)
    if fields.get('run_as') is None:
        fields['run_as'] = fields['user']

    if entry.get('mac') is None:
        if fields.get('name') is not None:
            fields['mac'] = guest_config.stable_mac(fields['name'], 0)
            derived.append('mac')
    else:
        mac, message = names.parse_mac('%s.mac' % path, entry['mac'])
        if message:
            error(message)
        else:
            fields['mac'], fields['mac_given'] = mac, entry['mac']

    if entry.get('address') is not None:
        fields['address_given'] = entry['address']
        fields['net'] = nets.interface_address('%s.address' % path, entry['address'], error)
    if entry.get('gateway') is not None:
        fields['gateway_given'] = entry['gateway']
    address6 = entry.get('address6')
    if address6 is not None:
        where = '%s.address6' % path
        message = host.topology.guests.ipv6_refused(host.topology) if host.topology is not None else None
        net = fields.get('net')
        if message:
            error('%s: %r is given, but %s' % (where, address6, message))
        elif net is not None and net.version == 6:
            error('%s: %r is given, but address %r is IPv6 already; a dual-stack guest has its '
                  'IPv4 address in address' % (where, address6, entry['address']))
        else:
            fields['address6_given'] = address6
            fields['net6'] = _ipv6_address(where, address6, error)

    dhcp = entry.get('dhcp')
    if dhcp is not None:
        if not isinstance(dhcp, bool):
            error('%s.dhcp: %r is not true or false' % (path, dhcp))
        else:
            fields['dhcp'] = dhcp
    if fields.get('name') is not None and host.dhcp and fields.get('dhcp', True) \
            and not DNS_LABEL.match(fields['name']):
        error('%s.name: %r is not a DNS label (letters, digits and - only), which a guest served '
              'by DHCP is named by in %s; rename it, or give it dhcp: false'
              % (path, fields['name'], host.dns_domain))
    forwards = entry.get('forwards')
    if forwards is not None:
        fields['forwards'] = _read_forwards('%s.forwards' % path, forwards, error)

    fields['options'] = tuple(sorted(_qemu_options(path, entry, error).items()))
    return Guest(derived=tuple(derived), **fields)


def _read_forwards(path, value, error):
    if not isinstance(value, list):
        error('%s: %r is not a list of port forwards, such as [{port: 2201, guest_port: 22}]'
              % (path, value))
        return ()
    forwards = []
    for index, entry in enumerate(value):
        where = '%s[%d]' % (path, index)
        if not isinstance(entry, dict):
            error('%s: %r is not a mapping with at least a port' % (where, entry))
            continue
        problems = []
        for key in sorted(entry, key=str):
            if key not in schema.FORWARD_KEYS:
                problems.append('%s: unknown key %r; a forward takes %s'
                                % (where, key, ', '.join(schema.FORWARD_KEYS)))
        port = _port('%s.port' % where, entry.get('port'), problems, required=True)
        guest_port = _port('%s.guest_port' % where, entry.get('guest_port'), problems)
        protocol = entry.get('protocol')
        protocol = 'tcp' if protocol is None else protocol
        if protocol not in schema.FORWARD_PROTOCOLS:
            problems.append('%s.protocol: %r is not one of %s'
                            % (where, protocol, ', '.join(schema.FORWARD_PROTOCOLS)))
        source = entry.get('source')
        if source is not None:
            source = _source_networks('%s.source' % where, source, problems)
        for problem in problems:
            error(problem)
        if not problems:
            forwards.append(Forward(path=where, port=port, protocol=protocol, source=source,
                                    guest_port=guest_port if guest_port is not None else port))
    return tuple(forwards)


def _port(path, value, problems, required=False):
    if value is None:
        if required:
            problems.append('%s: missing; the host port (1-65535)' % path)
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        problems.append('%s: %r is not a port (1-65535)' % (path, value))
        return None
    return value


def _source_networks(path, value, problems):
    if not isinstance(value, list) or not value:
        problems.append('%s: %r is not a list of networks in CIDR form, such as [10.0.0.0/24]'
                        % (path, value))
        return None
    found = []
    for index, item in enumerate(value):
        network, message = names.parse_network('%s[%d]' % (path, index), item)
        if message:
            problems.append(message)
        elif network.version != 4:
            problems.append('%s[%d]: %r is not an IPv4 network; the guests behind NAT are IPv4'
                            % (path, index, item))
        else:
            found.append(str(network.cidr))
    problems.extend(names.duplicate_errors(path, found))
    return tuple(found)


def _qemu_options(path, entry, error):
    options = {}
    for key in schema.QEMU_OPTIONS:
        value = entry.get(key)
        if value is None:
            continue
        where = '%s.%s' % (path, key)
        if key in schema.QEMU_STRINGS:
            if not isinstance(value, str):
                error('%s: %r is not a string' % (where, value))
                continue
        elif key in schema.QEMU_CHOICES:
            if value not in schema.QEMU_CHOICES[key]:
                error('%s: %r is not one of %s' % (where, value, ', '.join(schema.QEMU_CHOICES[key])))
                continue
        elif key in schema.QEMU_INTEGERS:
            number = _positive_int(value)
            if number is None:
                error('%s: %r is not a positive whole number' % (where, value))
                continue
            value = number
        elif key in schema.QEMU_BOOLEANS:
            if not isinstance(value, bool):
                error('%s: %r is not true or false' % (where, value))
                continue
        elif not isinstance(value, list) or not all(isinstance(arg, str) for arg in value):
            error('%s: %r is not a list of strings' % (where, value))
            continue
        options[key] = value
    return options


def _positive_int(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and value > 0:
        return value
    return None


def _check_taps(host, guests, error):
    """Tap names: valid, unique on the host, not the uplink or the bridge."""
    seen = {}
    if host.vde is not None:
        seen[host.vde.tap] = 'the VDE switch (%s.tap)' % schema.VDE
    for guest in guests:
        if not guest.valid_entry or guest.vde:
            continue
        tap = guest.tap
        where = '%s.tap' % guest.path
        default = ' (the default for list position %d)' % guest.index if 'tap' in guest.derived else ''
        message = names.ifname_error(where, tap)
        if message:
            error(message)
            continue
        if tap in seen:
            owner = seen[tap]
            error('%s: %r%s is also the tap of %s on this host'
                  % (where, tap, default, owner if isinstance(owner, str) else owner.label))
        elif tap == host.uplink:
            error('%s: %r%s is the uplink (%s)' % (where, tap, default, schema.UPLINK))
        elif tap == host.bridge:
            error('%s: %r%s is the bridge (%s)' % (where, tap, default, schema.BRIDGE))
        else:
            seen[tap] = guest
