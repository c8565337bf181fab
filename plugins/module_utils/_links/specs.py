# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module parameters -> validated device specs for planning.plan_tap / plan_bridge.

All checks that need no kernel state happen here, for the whole request at once, so
that a bad item anywhere fails the call before anything is touched.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.tuntap.qemu.plugins.module_utils import names

# Options of one tap; a list entry of `devices` may set any of them, the top-level
# option gives the default for every entry.
TAP_OPTIONS = ('mode', 'user', 'group', 'multi_queue', 'vnet_hdr', 'mtu', 'addresses',
               'link_state', 'bridge', 'state')


def _addresses(path, values, errors):
    if values is None:
        return None
    result = []
    for index, value in enumerate(values):
        net, error = names.parse_interface_address('%s[%d]' % (path, index), value)
        if error:
            errors.append(error)
        else:
            result.append(names.normalize_address(net))
    errors.extend(names.duplicate_errors(path, result))
    return result


def _mtu(path, value, errors):
    if value is not None and not 68 <= value <= 65535:
        errors.append('%s: MTU %r is outside 68-65535' % (path, value))
    return value


def tap_specs(params):
    """Return (specs, errors) for the tap_device module's parameters."""
    errors = []
    listed = 'devices' if params.get('devices') is not None else 'names'
    if params.get('devices') is not None:
        entries = [('devices[%d]' % index, entry) for index, entry in enumerate(params['devices'])]
    elif params.get('names') is not None:
        entries = [('names[%d]' % index, {'name': name}) for index, name in enumerate(params['names'])]
    else:
        entries = [('name', {'name': params['name']})]
    specs = []
    for path, entry in entries:
        item = dict((option, entry.get(option) if entry.get(option) is not None
                     else params.get(option)) for option in TAP_OPTIONS)
        item['name'] = entry.get('name')
        specs.append(_tap_spec(path, item, errors))
    if params.get(listed) is not None:
        errors.extend(names.duplicate_errors(listed, [spec['name'] for spec in specs]))
    return specs, errors


def _tap_spec(path, item, errors):
    name_path = '%s.name' % path if path.startswith('devices') else path
    error = names.ifname_error(name_path, item['name'])
    if error:
        errors.append(error)
    prefix = path + '.' if path.startswith('devices') else ''
    owner = group = None
    if item['user'] is not None:
        owner, error = names.resolve_user(prefix + 'user', item['user'])
        if error:
            errors.append(error)
    if item['group'] is not None:
        group, error = names.resolve_group(prefix + 'group', item['group'])
        if error:
            errors.append(error)
    bridge = item['bridge']
    if bridge:
        error = names.ifname_error(prefix + 'bridge', bridge)
        if error:
            errors.append(error)
        elif bridge == item['name']:
            errors.append('%sbridge: %r is the tap itself' % (prefix, bridge))
    return {
        'name': item['name'],
        'path': name_path,
        'prefix': prefix,
        'state': item['state'] or 'present',
        'mode': item['mode'] or 'tap',
        'owner': owner,
        'group': group,
        'multi_queue': item['multi_queue'],
        'vnet_hdr': item['vnet_hdr'],
        'mtu': _mtu(prefix + 'mtu', item['mtu'], errors),
        'link_state': item['link_state'],
        'master': bridge,
        'addresses': _addresses(prefix + 'addresses', item['addresses'], errors),
    }


def bridge_spec(params):
    """Return (spec, errors) for the bridge_port module's parameters."""
    errors = []
    error = names.ifname_error('name', params['name'])
    if error:
        errors.append(error)
    ports = params.get('ports')
    uplink = params.get('uplink')
    if uplink:
        error = names.ifname_error('uplink', uplink)
        if error:
            errors.append(error)
        elif uplink == params['name']:
            errors.append('uplink: %r is the bridge itself' % uplink)
        ports = list(ports or [])
        if uplink not in ports:
            ports.append(uplink)
    if ports is not None:
        for index, port in enumerate(ports):
            error = names.ifname_error('ports[%d]' % index, port)
            if error:
                errors.append(error)
        errors.extend(names.duplicate_errors('ports', ports))
    forward_delay = params.get('forward_delay')
    if forward_delay is not None:
        if not 0 <= forward_delay <= 30:
            errors.append('forward_delay: %r seconds is outside 0-30' % forward_delay)
        elif params.get('stp') and forward_delay < 2:
            errors.append('forward_delay: %r seconds is below 2, the minimum with stp=true'
                          % forward_delay)
    gateway = params.get('gateway')
    readdress = bool(params.get('readdress'))
    if gateway is not None:
        if not uplink:
            errors.append('gateway: %r needs uplink (the router of the LAN the uplink is on)' % gateway)
        else:
            try:
                if ipaddress.ip_address(gateway).version != 4:
                    errors.append('gateway: %r is not an IPv4 address' % gateway)
            except ValueError:
                errors.append('gateway: %r is not an IP address' % gateway)
    dhcp = bool(params.get('dhcp'))
    addresses = params.get('addresses')
    if dhcp:
        if not uplink:
            errors.append('dhcp: needs uplink (the link whose DHCP client moves to the bridge)')
        if addresses:
            errors.append('dhcp: the bridge takes the uplink\'s lease; addresses %s are not '
                          'checked or added with it, give none' % ', '.join(addresses))
        if gateway is not None:
            errors.append('dhcp: the lease gives the router; gateway %r is not used with it' % gateway)
        if readdress:
            errors.append('dhcp: readdress changes static addresses; a lease moves with its client')
        # The bridge's addresses are the lease's: left as they are, never removed by the call.
        addresses = None
    if readdress and not (uplink and params.get('addresses')):
        errors.append('readdress: needs uplink and addresses (the addresses the bridge takes '
                      'instead of the uplink\'s)')
    isolated_ports = _isolated_ports(params, ports, uplink, errors)
    spec = {
        'name': params['name'],
        'path': 'name',
        'state': params['state'],
        'stp': params.get('stp'),
        'forward_delay': forward_delay,
        'mtu': _mtu('mtu', params.get('mtu'), errors),
        'link_state': params.get('link_state'),
        'addresses': _addresses('addresses', addresses, errors),
        'ports': ports,
        'exclusive': params.get('exclusive'),
        'move_ports': params.get('move_ports'),
        'uplink': uplink or None,
        'uplink_routes': None,
        'uplink_ra_routes': None,
        'bridge_routes': None,
        'gateway': gateway,
        'readdress': readdress,
        'dhcp': dhcp,
        'isolated_ports': isolated_ports,
    }
    return spec, errors


def _isolated_ports(params, ports, uplink, errors):
    """The ports of this call to isolate (BR_ISOLATED), or None (every port's isolation as it
    is). Each must be one of `ports` (the uplink added) and not the uplink: the guests reach
    the LAN through it, and an isolated uplink would cut the isolated guests off it."""
    isolated = params.get('isolated_ports')
    if isolated is None:
        return None
    if params.get('state') == 'absent':
        if isolated:
            errors.append('isolated_ports: %s given with state=absent; a bridge that goes has no '
                          'ports to isolate' % ', '.join(isolated))
        return None
    listed = set(ports or [])
    for index, port in enumerate(isolated):
        path = 'isolated_ports[%d]' % index
        error = names.ifname_error(path, port)
        if error:
            errors.append(error)
        elif uplink and port == uplink:
            errors.append('%s: %r is the uplink; the uplink is never isolated (isolated ports '
                          'reach it, and through it the LAN)' % (path, port))
        elif port not in listed:
            errors.append('%s: %r is not in ports; only a port this call makes a port of the '
                          'bridge can be isolated (ports: %s)'
                          % (path, port, ', '.join(ports) if ports else 'none given'))
    errors.extend(names.duplicate_errors('isolated_ports', isolated))
    return sorted(set(isolated))
