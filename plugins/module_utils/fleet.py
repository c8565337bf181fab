# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet plan: every hypervisor's inventory validated at once, then its derived plan.

    plan, errors = plan_fleet({'hv1': {'tuntap_qemu_topology': 'routed', ...}, ...})

The input is the `tuntap_qemu_*` variables of each host (docs/inventory.md describes them).
The output is, per host, what the topology roles converge: taps, the bridge, forwarding,
NAT and the guests with every default filled in (tap names, stable MACs, gateways, and
subnets or addresses planned from a pool).  Pure functions over plain data; nothing here
looks at a host.  Every problem of the whole fleet is collected in one pass, each naming
the host, the variable path and the value; the plan is only built when there is none.

Rules that the issue left open (docs/inventory.md explains them to users):
- Guest names and MACs are unique across the fleet.
- LAN-visible addresses - every host's tuntap_qemu_uplink_address and every bridged_lan
  guest address - are unique across the fleet.
- routed guest subnets are routed on the LAN, so they may not overlap across all routed
  hosts; routed_nat subnets only within their host (NAT hides them), bridged_nat guests
  only within their bridge: two NAT hosts may both use 192.168.0.10.
- Any guest subnet or bridge subnet of a host may not overlap that host's uplink subnet.
- A pool plans /24 subnets for routed topologies (fleet-wide, hosts in sorted order, each
  guest in list order, skipping every network the inventory names) and host addresses in
  the bridge subnet for bridged_nat.  bridged_lan addresses are never planned: only the
  LAN's owner knows which LAN addresses are free.
"""

from __future__ import annotations

from ansible_collections.tuntap.qemu.plugins.module_utils import guest_config, guest_plan, names

TOPOLOGIES = ('routed', 'routed_nat', 'bridged_nat', 'bridged_lan')
ROUTED = ('routed', 'routed_nat')
BRIDGED = ('bridged_nat', 'bridged_lan')

TOPOLOGY = 'tuntap_qemu_topology'
UPLINK = 'tuntap_qemu_uplink'
UPLINK_ADDRESS = 'tuntap_qemu_uplink_address'
UPLINK_GATEWAY = 'tuntap_qemu_uplink_gateway'
UPLINK_READDRESS = 'tuntap_qemu_uplink_readdress'
BRIDGE = 'tuntap_qemu_bridge'
BRIDGE_ADDRESS = 'tuntap_qemu_bridge_address'
POOL = 'tuntap_qemu_pool'
GUEST_USER = 'tuntap_qemu_guest_user'
GUEST_GROUP = 'tuntap_qemu_guest_group'
GUESTS = 'tuntap_qemu_guests'
# The host variables the plan reads; the action plugin fetches exactly these.
HOST_VARIABLES = (TOPOLOGY, UPLINK, UPLINK_ADDRESS, UPLINK_GATEWAY, UPLINK_READDRESS, BRIDGE,
                  BRIDGE_ADDRESS, POOL, GUEST_USER, GUEST_GROUP, GUESTS)

DEFAULT_UPLINK = 'eth0'
DEFAULT_BRIDGE = 'br0'
POOL_SUBNET_PREFIX = 24

# qemu_guest options a guest entry may carry; they are passed on only when given.
QEMU_STRINGS = ('kernel', 'initrd', 'append', 'disk', 'machine')
QEMU_CHOICES = {'disk_format': ('raw', 'qcow2'), 'accel': ('kvm', 'tcg', 'auto')}
QEMU_INTEGERS = ('memory', 'cpus')
QEMU_BOOLEANS = ('autostart',)
QEMU_OPTIONS = QEMU_STRINGS + tuple(sorted(QEMU_CHOICES)) + QEMU_INTEGERS + QEMU_BOOLEANS + ('extra_args',)
GUEST_KEYS = ('name', 'tap', 'user', 'group', 'run_as', 'mac', 'address', 'gateway') + QEMU_OPTIONS


class Problems(object):
    """Errors of the whole fleet, each '<host>: <path>: <what>', listed by host."""

    def __init__(self):
        self._items = []

    def add(self, host, text):
        self._items.append((host, len(self._items), '%s: %s' % (host, text)))

    def __bool__(self):
        return bool(self._items)

    def lines(self):
        return [text for _host, _seq, text in sorted(self._items)]


def plan_fleet(inventory):
    """({host: host_plan}, []) for a valid fleet, else (None, [every problem]).

    `inventory` maps inventory_hostname to that host's variables (plain data); only the
    names in HOST_VARIABLES are read.
    """
    problems = Problems()
    hosts = [_read_host(host, inventory[host], problems) for host in sorted(inventory)]
    _check_fleet_names(hosts, problems)
    _check_fleet_macs(hosts, problems)
    _plan_routed_subnets(hosts, problems)
    for host in hosts:
        if host['topology'] == 'bridged_nat':
            _plan_bridged_nat_addresses(host, problems)
    for host in hosts:
        _check_addresses(host, problems)
    _check_lan_addresses(hosts, problems)
    _check_routed_overlaps(hosts, problems)
    if problems:
        return None, problems.lines()
    return dict((host['host'], _host_plan(host)) for host in hosts), []


def summary(plan):
    """One line per guest (and per host without guests) to show the plan to a human."""
    lines = []
    for host in sorted(plan):
        spec = plan[host]
        if not spec['guests']:
            lines.append('%s %s: no guests' % (host, spec['topology']))
        for guest in spec['guests']:
            lines.append('%s %s: %s on %s, mac %s, %s via %s' % (
                host, spec['topology'], guest['name'], guest['tap'], guest['mac'],
                guest['address'], guest['gateway'] or 'no gateway'))
    return lines


# ---------------------------------------------------------------- reading one host

def _read_host(name, variables, problems):
    def error(text):
        problems.add(name, text)

    if not isinstance(variables, dict):
        error('host variables are not a mapping: %r' % (variables,))
        variables = {}
    host = {'host': name, 'topology': None, 'uplink': DEFAULT_UPLINK, 'uplink_net': None,
            'uplink_gateway': None, 'uplink_readdress': False,
            'bridge': None, 'bridge_net': None, 'pool': None, 'pool_broken': False,
            'guest_user': None, 'guest_group': None, 'guests': []}

    topology = variables.get(TOPOLOGY)
    if topology is None:
        error('%s: missing; set one of %s' % (TOPOLOGY, ', '.join(TOPOLOGIES)))
    elif topology not in TOPOLOGIES:
        error('%s: %r is not one of %s' % (TOPOLOGY, topology, ', '.join(TOPOLOGIES)))
    else:
        host['topology'] = topology

    uplink = variables.get(UPLINK)
    if uplink is not None:
        message = names.ifname_error(UPLINK, uplink)
        if message:
            error(message)
        else:
            host['uplink'] = uplink

    address = variables.get(UPLINK_ADDRESS)
    if address is not None:
        host['uplink_net'] = _interface_address(UPLINK_ADDRESS, address, error)
    elif topology == 'bridged_lan':
        error('%s: missing; bridged_lan needs the host\'s LAN address with its prefix '
              '(such as 10.0.0.11/24): it moves to the bridge, and guests must be in its subnet'
              % UPLINK_ADDRESS)

    # A missing or broken uplink address is reported once, above.
    address_reported = address is not None or topology == 'bridged_lan'
    host['uplink_gateway'] = _uplink_gateway(host, variables.get(UPLINK_GATEWAY), address_reported, error)
    readdress = variables.get(UPLINK_READDRESS)
    if readdress is not None and not isinstance(readdress, bool):
        error('%s: %r is not a boolean' % (UPLINK_READDRESS, readdress))
    elif readdress:
        if topology != 'bridged_lan':
            error('%s: only bridged_lan moves the host\'s address (to the bridge); change the '
                  'uplink\'s address in its own configuration first' % UPLINK_READDRESS)
        else:
            host['uplink_readdress'] = True

    if host['topology'] in BRIDGED:
        bridge = variables.get(BRIDGE)
        bridge = DEFAULT_BRIDGE if bridge is None else bridge
        message = names.ifname_error(BRIDGE, bridge)
        if message:
            error(message)
        elif bridge == host['uplink']:
            error('%s: %r is also the uplink (%s)' % (BRIDGE, bridge, UPLINK))
        else:
            host['bridge'] = bridge
    if host['topology'] == 'bridged_nat':
        bridge_address = variables.get(BRIDGE_ADDRESS)
        if bridge_address is None:
            error('%s: missing; bridged_nat needs the guests\' gateway on the bridge with its '
                  'prefix, such as 192.168.0.1/24' % BRIDGE_ADDRESS)
        else:
            host['bridge_net'] = _interface_address(BRIDGE_ADDRESS, bridge_address, error)
        bridge_net, uplink_net = host['bridge_net'], host['uplink_net']
        if bridge_net is not None and uplink_net is not None and _overlap(bridge_net, uplink_net):
            error('%s: %r overlaps the uplink subnet %s (%s)'
                  % (BRIDGE_ADDRESS, bridge_address, uplink_net.cidr, UPLINK_ADDRESS))

    pool = variables.get(POOL)
    if pool is not None:
        host['pool'] = _read_pool(host, pool, error)
        # A broken pool is reported once, not again as every address it should have planned.
        host['pool_broken'] = host['pool'] is None

    for variable, key in ((GUEST_USER, 'guest_user'), (GUEST_GROUP, 'guest_group')):
        value = variables.get(variable)
        if value is not None:
            host[key] = _owner(variable, value, error)

    guests = variables.get(GUESTS)
    if guests is None:
        guests = []
    if not isinstance(guests, list):
        error('%s: %r is not a list of guests' % (GUESTS, guests))
        guests = []
    host['guests'] = [_read_guest(host, index, guest, error) for index, guest in enumerate(guests)]
    _check_taps(host, error)
    return host


def _uplink_gateway(host, value, address_reported, error):
    """The LAN router of the uplink's default route: an IPv4 address in the uplink subnet
    other than the host's own. Empty means none (the role's default)."""
    if value is None or value == '':
        return None
    gateway = _parse_ip(value) if isinstance(value, str) else None
    if gateway is None or gateway.version != 4:
        error('%s: %r is not an IPv4 address' % (UPLINK_GATEWAY, value))
        return None
    uplink_net = host['uplink_net']
    if uplink_net is None:
        if not address_reported:
            error('%s: %r needs %s (the host\'s LAN address, in whose subnet the router is)'
                  % (UPLINK_GATEWAY, value, UPLINK_ADDRESS))
        return None
    if gateway not in uplink_net.cidr:
        error('%s: %r is outside the uplink subnet %s (%s)'
              % (UPLINK_GATEWAY, value, uplink_net.cidr, UPLINK_ADDRESS))
        return None
    if gateway == uplink_net.ip:
        error('%s: %r is the host\'s own address (%s)' % (UPLINK_GATEWAY, value, UPLINK_ADDRESS))
        return None
    return str(gateway)


def _interface_address(path, value, error):
    net, message = names.parse_interface_address(path, value)
    if message:
        error(message)
        return None
    return net


def _read_pool(host, value, error):
    pool, message = names.parse_network(POOL, value)
    if message:
        error(message)
        return None
    if host['topology'] in ROUTED and (pool.version != 4 or pool.prefixlen > POOL_SUBNET_PREFIX):
        error('%s: %r cannot hold /%d subnets; routed topologies plan IPv4 /%d guest subnets '
              'from a pool of prefix /%d or shorter, such as 192.168.0.0/16'
              % (POOL, value, POOL_SUBNET_PREFIX, POOL_SUBNET_PREFIX, POOL_SUBNET_PREFIX))
        return None
    bridge_net = host['bridge_net']
    if host['topology'] == 'bridged_nat' and bridge_net is not None and not _overlap(pool, bridge_net):
        error('%s: %r does not overlap the bridge subnet %s (%s); bridged_nat plans guest '
              'addresses where both meet' % (POOL, value, bridge_net.cidr, BRIDGE_ADDRESS))
        return None
    return pool


def _owner(path, value, error):
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == '':
        error('%s: %r is not a user or group name or numeric id' % (path, value))
        return None
    return value


def _read_guest(host, index, entry, error):
    path = '%s[%d]' % (GUESTS, index)
    guest = {'index': index, 'path': path, 'valid_entry': False, 'name': None, 'tap': 'tap%d' % index,
             'derived': [], 'user': host['guest_user'], 'group': host['guest_group'],
             'run_as': None, 'mac': None, 'mac_given': None, 'net': None,
             'address_given': None, 'gateway_given': None, 'options': {}}
    if not isinstance(entry, dict):
        error('%s: %r is not a mapping with at least a name' % (path, entry))
        return guest
    guest['valid_entry'] = True
    for key in sorted(entry, key=str):
        if key not in GUEST_KEYS:
            error('%s: unknown key %r; a guest takes %s' % (path, key, ', '.join(GUEST_KEYS)))

    name = entry.get('name')
    if name is None:
        error('%s.name: missing; every guest needs a name' % path)
    elif not isinstance(name, str) or not guest_plan.GUEST_NAME.match(name):
        error('%s.name: %r must be 1-63 characters of letters, digits, ., _ and -, starting '
              'with a letter or digit' % (path, name))
    else:
        guest['name'] = name

    if entry.get('tap') is None:
        guest['derived'].append('tap')
    else:
        guest['tap'] = entry['tap']

    for key in ('user', 'group', 'run_as'):
        if entry.get(key) is not None:
            guest[key] = _owner('%s.%s' % (path, key), entry[key], error)
    if guest['run_as'] is None:
        guest['run_as'] = guest['user']

    if entry.get('mac') is None:
        if guest['name'] is not None:
            guest['mac'] = guest_config.stable_mac(guest['name'], 0)
            guest['derived'].append('mac')
    else:
        mac, message = names.parse_mac('%s.mac' % path, entry['mac'])
        if message:
            error(message)
        else:
            guest['mac'], guest['mac_given'] = mac, entry['mac']

    if entry.get('address') is not None:
        guest['address_given'] = entry['address']
        guest['net'] = _interface_address('%s.address' % path, entry['address'], error)
    if entry.get('gateway') is not None:
        guest['gateway_given'] = entry['gateway']

    guest['options'] = _qemu_options(path, entry, error)
    return guest


def _qemu_options(path, entry, error):
    options = {}
    for key in QEMU_OPTIONS:
        value = entry.get(key)
        if value is None:
            continue
        where = '%s.%s' % (path, key)
        if key in QEMU_STRINGS:
            if not isinstance(value, str):
                error('%s: %r is not a string' % (where, value))
                continue
        elif key in QEMU_CHOICES:
            if value not in QEMU_CHOICES[key]:
                error('%s: %r is not one of %s' % (where, value, ', '.join(QEMU_CHOICES[key])))
                continue
        elif key in QEMU_INTEGERS:
            number = _positive_int(value)
            if number is None:
                error('%s: %r is not a positive whole number' % (where, value))
                continue
            value = number
        elif key in QEMU_BOOLEANS:
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


def _check_taps(host, error):
    """Tap names: valid, unique on the host, not the uplink or the bridge."""
    seen = {}
    for guest in host['guests']:
        if not guest['valid_entry']:
            continue
        tap = guest['tap']
        where = '%s.tap' % guest['path']
        default = ' (the default for list position %d)' % guest['index'] if 'tap' in guest['derived'] else ''
        message = names.ifname_error(where, tap)
        if message:
            error(message)
            continue
        if tap in seen:
            error('%s: %r%s is also the tap of %s on this host'
                  % (where, tap, default, _guest_label(seen[tap])))
        elif tap == host['uplink']:
            error('%s: %r%s is the uplink (%s)' % (where, tap, default, UPLINK))
        elif tap == host['bridge']:
            error('%s: %r%s is the bridge (%s)' % (where, tap, default, BRIDGE))
        else:
            seen[tap] = guest


def _guest_label(guest):
    return guest['name'] if guest['name'] is not None else guest['path']


# ---------------------------------------------------------------- fleet-wide uniqueness

def _check_fleet_names(hosts, problems):
    seen = {}
    for host in hosts:
        for guest in host['guests']:
            name = guest['name']
            if name is None:
                continue
            if name in seen:
                other_host, other = seen[name]
                problems.add(host['host'], '%s.name: %r is also used by %s %s; guest names are '
                             'unique across the fleet (they name the runtime folder and the '
                             'default MAC)' % (guest['path'], name, other_host, other['path']))
            else:
                seen[name] = (host['host'], guest)


def _check_fleet_macs(hosts, problems):
    seen = {}
    for host in hosts:
        for guest in host['guests']:
            mac = guest['mac']
            if mac is None:
                continue
            if mac in seen:
                other_host, other = seen[mac]
                if guest['mac_given'] is None:
                    shown = '%r (the default for %s)' % (mac, guest['name'])
                else:
                    shown = repr(guest['mac_given'])
                problems.add(host['host'], '%s.mac: %s is also used by %s %s'
                             % (guest['path'], shown, other_host, _guest_label(other)))
            else:
                seen[mac] = (host['host'], guest)


def _check_lan_addresses(hosts, problems):
    """Every uplink address and bridged_lan guest address is unique across the fleet."""
    seen = {}
    entries = []
    for host in hosts:
        if host['uplink_net'] is not None:
            entries.append((host, UPLINK_ADDRESS, host['uplink_net'], '%s (%s)' % (host['host'], UPLINK_ADDRESS)))
    for host in hosts:
        if host['topology'] == 'bridged_lan':
            for guest in host['guests']:
                if guest['net'] is not None:
                    entries.append((host, '%s.address' % guest['path'], guest['net'],
                                    '%s %s' % (host['host'], _guest_label(guest))))
    for host, path, net, label in entries:
        key = (net.version, int(net.ip))
        if key in seen:
            problems.add(host['host'], '%s: %r is also used by %s; addresses on the LAN are '
                         'unique across the fleet' % (path, names.normalize_address(net), seen[key]))
        else:
            seen[key] = label


# ---------------------------------------------------------------- planning from pools

def _plan_routed_subnets(hosts, problems):
    """Give each routed guest without an address the next free /24 of its host's pool."""
    taken = []
    for host in hosts:
        taken.extend(net for net in (host['uplink_net'], host['bridge_net']) if net is not None)
        if host['topology'] in ROUTED:
            taken.extend(guest['net'] for guest in host['guests'] if guest['net'] is not None)
    for host in hosts:
        if host['topology'] not in ROUTED:
            continue
        for guest in host['guests']:
            if guest['address_given'] is not None or not guest['valid_entry'] or host['pool_broken']:
                continue
            where = '%s.address' % guest['path']
            if host['pool'] is None:
                problems.add(host['host'], '%s: missing; give ADDRESS/PREFIX such as '
                             '192.168.0.10/24, or set %s to plan one' % (where, POOL))
                continue
            subnet = _free_subnet(host['pool'], taken)
            if subnet is None:
                problems.add(host['host'], '%s: %s %s has no free /%d subnet left'
                             % (where, POOL, host['pool'].cidr, POOL_SUBNET_PREFIX))
                continue
            taken.append(subnet)
            gateway = _parse_ip(guest['gateway_given'])
            first_host = subnet.first + 1
            ip = first_host + 1 if gateway is None or int(gateway) == first_host else first_host
            guest['net'] = _net(ip, subnet.prefixlen, subnet.version)
            guest['derived'].append('address')


def _plan_bridged_nat_addresses(host, problems):
    """Give each bridged_nat guest without an address the next free one of pool and bridge."""
    bridge_net = host['bridge_net']
    if bridge_net is None:
        return
    taken = set([int(bridge_net.ip)])
    taken.update(int(guest['net'].ip) for guest in host['guests'] if guest['net'] is not None)
    pool = host['pool']
    first, last = bridge_net.first, bridge_net.last
    if pool is not None:
        first, last = max(first, pool.first), min(last, pool.last)
    if bridge_net.size > 2:
        # Neither the network address nor (IPv4) the broadcast address.
        first = max(first, bridge_net.first + 1)
        if bridge_net.version == 4:
            last = min(last, bridge_net.last - 1)
    candidate = first
    for guest in host['guests']:
        if guest['address_given'] is not None or not guest['valid_entry'] or host['pool_broken']:
            continue
        where = '%s.address' % guest['path']
        if pool is None:
            problems.add(host['host'], '%s: missing; give ADDRESS/PREFIX in the bridge subnet %s, '
                         'or set %s to plan one' % (where, bridge_net.cidr, POOL))
            continue
        while candidate <= last and candidate in taken:
            candidate += 1
        if candidate > last:
            problems.add(host['host'], '%s: no free address left where %s %s meets the bridge '
                         'subnet %s' % (where, POOL, pool.cidr, bridge_net.cidr))
            continue
        taken.add(candidate)
        guest['net'] = _net(candidate, bridge_net.prefixlen, bridge_net.version)
        guest['derived'].append('address')


def _free_subnet(pool, taken):
    size = 1 << (32 - POOL_SUBNET_PREFIX)
    start = pool.first
    while start + size - 1 <= pool.last:
        subnet = _net(start, POOL_SUBNET_PREFIX, 4)
        if not any(_overlap(subnet, net) for net in taken):
            return subnet
        start += size
    return None


def _net(value, prefixlen, version):
    return names.netaddr.IPNetwork('%s/%d' % (names.netaddr.IPAddress(value, version), prefixlen))


def _parse_ip(value):
    try:
        return names.netaddr.IPAddress(value)
    except (names.netaddr.AddrFormatError, ValueError, TypeError):
        return None


def _overlap(one, other):
    return one.version == other.version and one.first <= other.last and other.first <= one.last


# ---------------------------------------------------------------- addresses and gateways

def _check_addresses(host, problems):
    """Resolve each guest's gateway and check its address against the topology.

    Sets guest['gateway'] and guest['address_ok'] (address and gateway are valid).
    """
    def error(text):
        problems.add(host['host'], text)

    check = {'routed': _routed_gateway, 'routed_nat': _routed_gateway,
             'bridged_nat': _bridged_nat_gateway, 'bridged_lan': _bridged_lan_gateway}.get(host['topology'])
    for guest in host['guests']:
        guest['gateway'], guest['address_ok'] = None, False
        net = guest['net']
        if net is None:
            if guest['valid_entry'] and guest['address_given'] is None and host['topology'] == 'bridged_lan':
                error('%s.address: missing; a bridged_lan guest needs its LAN address in %s; '
                      'pools do not plan LAN addresses, only the LAN knows which are free'
                      % (guest['path'], _lan_text(host['uplink_net'])))
            continue
        if net.version == 4 and net.size > 2 and net.ip == net.broadcast:
            error('%s.address: %r is the broadcast address of its subnet'
                  % (guest['path'], _address_text(guest)))
            continue
        if check is not None:
            guest['address_ok'] = check(host, guest, error)
    if host['topology'] == 'bridged_nat':
        _check_host_duplicates(host, error)


def _address_text(guest):
    if guest['address_given'] is not None:
        return guest['address_given']
    return names.normalize_address(guest['net'])


def _lan_text(net):
    return '%s (%s)' % (net.cidr, UPLINK_ADDRESS) if net is not None else 'the LAN subnet'


def _routed_gateway(host, guest, error):
    """routed: the gateway is the host side of the tap, by default the subnet's first host."""
    net, path = guest['net'], guest['path']
    uplink_net = host['uplink_net']
    if uplink_net is not None and _overlap(net, uplink_net):
        error('%s.address: %r is in %s, which overlaps the uplink subnet %s (%s)'
              % (path, _address_text(guest), net.cidr, uplink_net.cidr, UPLINK_ADDRESS))
        return False
    if guest['gateway_given'] is None:
        if net.size == 1:
            error('%s.address: %r leaves no room for the host side of the tap; give a subnet '
                  'such as /24, or a gateway' % (path, _address_text(guest)))
            return False
        if net.size == 2:
            # A /31 (/127): the host side is the other address of the pair.
            gateway = net.first if int(net.ip) == net.last else net.last
        else:
            gateway = net.first + 1
        gateway = names.netaddr.IPAddress(gateway, net.version)
        if gateway == net.ip:
            error('%s.address: %r is the first host address of its subnet, which the host side '
                  'of the tap takes unless gateway says otherwise' % (path, _address_text(guest)))
            return False
        guest['gateway'] = str(gateway)
        guest['derived'].append('gateway')
        return True
    gateway = _checked_gateway(guest, error)
    if gateway is None:
        return False
    if net.size > 2 and (gateway == net.network or (net.version == 4 and gateway == net.broadcast)):
        error('%s.gateway: %r is not a host address of the guest subnet %s; the gateway is the '
              'host side of the tap' % (path, guest['gateway_given'], net.cidr))
        return False
    guest['gateway'] = str(gateway)
    return True


def _checked_gateway(guest, error):
    """The given gateway as an IPAddress when it is an address of the guest subnet, else None."""
    _network, messages = guest_config.guest_network(guest['path'], names.normalize_address(guest['net']),
                                                    guest['gateway_given'])
    for message in messages:
        error(message)
    if messages:
        return None
    return names.netaddr.IPAddress(guest['gateway_given'])


def _in_subnet(guest, subnet, what, hint, error):
    """A bridged guest's address must be in `subnet` with the same prefix; False (with an
    error naming the guest's address) when it is not, or when `subnet` itself is invalid."""
    if subnet is None:
        return False
    net = guest['net']
    if net.cidr == subnet.cidr:
        return True
    if _overlap(net, subnet):
        why = 'has prefix /%d but %s is %s' % (net.prefixlen, what, subnet.cidr)
    else:
        why = 'is outside %s %s' % (what, subnet.cidr)
    error('%s.address: %r %s %s' % (guest['path'], _address_text(guest), why, hint))
    return False


def _bridged_nat_gateway(host, guest, error):
    """bridged_nat: the guest is in the bridge subnet; the gateway is the bridge address."""
    bridge_net, net, path = host['bridge_net'], guest['net'], guest['path']
    if not _in_subnet(guest, bridge_net, 'the bridge subnet', '(%s)' % BRIDGE_ADDRESS, error):
        return False
    if net.ip == bridge_net.ip:
        error('%s.address: %r is the bridge address, the host side (%s)'
              % (path, _address_text(guest), BRIDGE_ADDRESS))
        return False
    given = guest['gateway_given']
    if given is not None and _parse_ip(given) != bridge_net.ip:
        error('%s.gateway: %r is not the host side; bridged_nat guests route through the '
              'bridge address %s (%s)' % (path, given, bridge_net.ip, BRIDGE_ADDRESS))
        return False
    guest['gateway'] = str(bridge_net.ip)
    if given is None:
        guest['derived'].append('gateway')
    return True


def _bridged_lan_gateway(host, guest, error):
    """bridged_lan: the guest is in the LAN subnet; the gateway, if any, is the LAN's router."""
    uplink_net, path = host['uplink_net'], guest['path']
    if not _in_subnet(guest, uplink_net, 'the LAN subnet',
                      '(%s); bridged_lan guests are on the LAN' % UPLINK_ADDRESS, error):
        return False
    if guest['gateway_given'] is None:
        return True
    gateway = _checked_gateway(guest, error)
    if gateway is None:
        return False
    if gateway == uplink_net.ip:
        error('%s.gateway: %r is this host, which does not route in bridged_lan; give the '
              "LAN's router or no gateway" % (path, guest['gateway_given']))
        return False
    guest['gateway'] = str(gateway)
    return True


def _check_host_duplicates(host, error):
    """bridged_nat: guest addresses are unique in the bridge subnet."""
    seen = {}
    for guest in host['guests']:
        if not guest['address_ok']:
            continue
        key = int(guest['net'].ip)
        if key in seen:
            error('%s.address: %r is also used by %s on this host'
                  % (guest['path'], _address_text(guest), _guest_label(seen[key])))
        else:
            seen[key] = guest


def _check_routed_overlaps(hosts, problems):
    """routed_nat subnets are unique on their host; routed subnets across all routed hosts."""
    lan_routed = []
    for host in hosts:
        if host['topology'] not in ROUTED:
            continue
        local = []
        for guest in host['guests']:
            if not guest['address_ok']:
                continue
            net = guest['net']
            clash = next((other for other in local if _overlap(net, other['net'])), None)
            remote = None
            if clash is None and host['topology'] == 'routed':
                remote = next((item for item in lan_routed if _overlap(net, item[1]['net'])), None)
            if clash is not None:
                problems.add(host['host'], '%s.address: %r is in %s, which overlaps %s of %s on '
                             'this host; each routed guest has a subnet of its own'
                             % (guest['path'], _address_text(guest), net.cidr, clash['net'].cidr,
                                _guest_label(clash)))
            elif remote is not None:
                problems.add(host['host'], '%s.address: %r is in %s, which overlaps %s of %s %s; '
                             'routed guest subnets are routed on the LAN and unique across the '
                             'fleet (routed_nat ones may repeat on other hosts)'
                             % (guest['path'], _address_text(guest), net.cidr,
                                remote[1]['net'].cidr, remote[0], _guest_label(remote[1])))
            local.append(guest)
        if host['topology'] == 'routed':
            lan_routed.extend((host['host'], guest) for guest in local)


# ---------------------------------------------------------------- the host plan

def _host_plan(host):
    topology, uplink = host['topology'], host['uplink']
    uplink_net = host['uplink_net']
    taps, guests, nat = [], [], []
    for guest in host['guests']:
        net = guest['net']
        if topology in ROUTED:
            tap_addresses = ['%s/%d' % (guest['gateway'], net.prefixlen)]
            if topology == 'routed_nat':
                nat.append({'source': str(net.cidr), 'out_interface': uplink})
        else:
            tap_addresses = []
        taps.append({'name': guest['tap'], 'user': guest['user'], 'group': guest['group'],
                     'addresses': tap_addresses, 'bridge': host['bridge']})
        guests.append(_guest_plan(guest))
    bridge = None
    if topology == 'bridged_nat':
        bridge_net = host['bridge_net']
        bridge = {'name': host['bridge'], 'addresses': [names.normalize_address(bridge_net)],
                  'ports': [tap['name'] for tap in taps], 'uplink': None, 'gateway': None,
                  'readdress': False}
        nat.append({'source': str(bridge_net.cidr), 'out_interface': uplink})
    elif topology == 'bridged_lan':
        bridge = {'name': host['bridge'], 'addresses': [names.normalize_address(uplink_net)],
                  'ports': [tap['name'] for tap in taps] + [uplink], 'uplink': uplink,
                  'gateway': host['uplink_gateway'], 'readdress': host['uplink_readdress']}
    uplink_address = names.normalize_address(uplink_net) if uplink_net is not None else None
    return {
        'topology': topology,
        'uplink': uplink,
        'uplink_address': uplink_address,
        'uplink_gateway': host['uplink_gateway'],
        'uplink_check': _uplink_check(host, uplink_address),
        'forwarding': topology != 'bridged_lan',
        'taps': taps,
        'bridge': bridge,
        'nat': nat,
        'guests': guests,
    }


def _uplink_check(host, uplink_address):
    """The uplink_info parameters that compare the host with its inventory before anything
    changes (None when the inventory names no uplink address, or bridged_lan readdresses the
    host on purpose). bridged_lan moves everything the uplink holds and persists only the
    inventory's address and gateway, so there they must match exactly."""
    if uplink_address is None or host['uplink_readdress']:
        return None
    bridged_lan = host['topology'] == 'bridged_lan'
    return {
        'name': host['uplink'],
        'bridge': host['bridge'] if bridged_lan else None,
        'addresses': [uplink_address],
        'gateway': host['uplink_gateway'],
        'exact': bridged_lan,
        'hint': ('%s: the inventory (%s %s%s) is not what the host holds; nothing was changed. '
                 'Correct the inventory%s'
                 % (host['host'], UPLINK_ADDRESS, uplink_address,
                    ', %s %s' % (UPLINK_GATEWAY, host['uplink_gateway']) if host['uplink_gateway'] else '',
                    ', or set %s: true to change the host\'s address on purpose' % UPLINK_READDRESS
                    if bridged_lan else '')),
    }


def _guest_plan(guest):
    network, _errors = guest_config.guest_network(guest['path'], names.normalize_address(guest['net']),
                                                  guest['gateway'])
    plan = {
        'name': guest['name'],
        'tap': guest['tap'],
        'mac': guest['mac'],
        'user': guest['user'],
        'group': guest['group'],
        'run_as': guest['run_as'],
        'address': network['address'],
        'ip': network['ip'],
        'prefixlen': network['prefixlen'],
        'netmask': network['netmask'],
        'network': network['network'],
        'gateway': network['gateway'],
        'kernel_ip': (guest_config.render_kernel_ip(network, guest['name'])
                      if network['version'] == 4 else None),
        'interfaces_stanza': guest_config.render_interfaces_stanza(network),
        'derived': sorted(guest['derived']),
    }
    plan.update(guest['options'])
    return plan
