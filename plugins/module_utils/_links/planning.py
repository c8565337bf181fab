# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel link state through netlink (pyroute2): read once, plan, apply.

The flow of every link module:

    snapshot = read_snapshot()             # one dump of links, one of addresses
    plan = LinkPlan(snapshot)
    plan_tap(plan, spec) / plan_bridge(plan, spec)   # pure: no kernel access
    if plan.errors: fail, nothing touched
    if plan.changed and not check_mode: apply_plan(ipr, plan)

A snapshot is a dict ifname -> link record (plain data, see link_record()), so the
planning functions are unit-testable without a kernel.
"""

from __future__ import annotations

import ipaddress
import socket

from ansible_collections.tuntap.qemu.plugins.module_utils import rtnl_snapshot, tuntap

try:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError
    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the host
    IPRoute = None
    NetlinkError = OSError
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = exc

PYROUTE2_LIBRARY = 'pyroute2 (Debian package python3-pyroute2, PyPI package pyroute2)'

IFF_UP = 0x1
USER_HZ = 100  # bridge timers are reported in clock_t


class LinkError(Exception):
    """Applying a plan failed; the message names the device and the step."""


# ---------------------------------------------------------------- reading state

def _attr(msg, name, default=None):
    value = msg.get_attr(name)
    return default if value is None else value


def _info_data(linkinfo):
    data = linkinfo.get_attr('IFLA_INFO_DATA') if linkinfo is not None else None
    if data is None or isinstance(data, (str, bytes)):
        return {}
    return dict((key, value) for key, value in data.get('attrs', []))


def link_record(msg):
    """Turn one RTM_NEWLINK message into a plain dict."""
    linkinfo = msg.get_attr('IFLA_LINKINFO')
    kind = linkinfo.get_attr('IFLA_INFO_KIND') if linkinfo is not None else None
    record = {
        'name': msg.get_attr('IFLA_IFNAME'),
        'ifindex': msg['index'],
        'kind': kind,
        'mac': _attr(msg, 'IFLA_ADDRESS'),
        'mtu': _attr(msg, 'IFLA_MTU'),
        'state': 'up' if msg['flags'] & IFF_UP else 'down',
        'operstate': _attr(msg, 'IFLA_OPERSTATE', 'UNKNOWN').lower(),
        'master_index': _attr(msg, 'IFLA_MASTER', 0),
        'master': None,
        'addresses': [],
    }
    data = _info_data(linkinfo)
    if kind == 'tun':
        owner = data.get('IFLA_TUN_OWNER')
        group = data.get('IFLA_TUN_GROUP')
        record.update({
            'mode': tuntap.TUN_TYPES.get(data.get('IFLA_TUN_TYPE'), 'unknown'),
            'owner': None if owner in (None, tuntap.NO_OWNER) else owner,
            'group': None if group in (None, tuntap.NO_OWNER) else group,
            'multi_queue': bool(data.get('IFLA_TUN_MULTI_QUEUE', 0)),
            'vnet_hdr': bool(data.get('IFLA_TUN_VNET_HDR', 0)),
            'persist': bool(data.get('IFLA_TUN_PERSIST', 0)),
        })
    elif kind == 'bridge':
        record.update({
            'stp': bool(data.get('IFLA_BR_STP_STATE', 0)),
            'forward_delay': data.get('IFLA_BR_FORWARD_DELAY', 0) // USER_HZ,
        })
    return record


def _is_link_local_v6(address):
    return address.lower().startswith('fe80:')


def read_snapshot():
    """One dump of links and one of addresses -> {ifname: record}.

    Read by rtnl_snapshot (socket + struct, decoding only the attributes link_record uses:
    about 12 ms for 512 taps, where pyroute2's full decoding takes about 250 ms). Writes
    stay with pyroute2. The integration target rtnl_snapshot proves both readers equal on
    the real kernel, with pyroute2 0.7 and 0.9.
    """
    return rtnl_snapshot.read_snapshot()


def read_snapshot_pyroute2(ipr):
    """The same snapshot decoded by pyroute2: the reference read_snapshot() is tested against."""
    by_index = {}
    for msg in ipr.get_links():
        record = link_record(msg)
        by_index[record['ifindex']] = record
    for msg in ipr.get_addr():
        record = by_index.get(msg['index'])
        if record is None:
            continue
        address = msg.get_attr('IFA_LOCAL') or msg.get_attr('IFA_ADDRESS')
        if address is None or _is_link_local_v6(address):
            continue
        record['addresses'].append('%s/%d' % (address, msg['prefixlen']))
    snapshot = {}
    for record in by_index.values():
        master = by_index.get(record['master_index'])
        record['master'] = master['name'] if master else None
        record['addresses'].sort()
        snapshot[record['name']] = record
    return snapshot


# Routes the kernel makes itself (for addresses, from router advertisements) come back on
# their own on the bridge; the others move with the uplink's addresses.
RTPROT_KERNEL = 2
RTPROT_BOOT = 3
RTPROT_RA = 9
RT_TABLE_MAIN = 254
RTNH_F_ONLINK = 4  # ifupdown's `gateway` line adds its default route with `onlink`


def read_routes(ipr, ifname):
    """Routes of the main table through `ifname` that someone configured (not proto kernel
    or ra), as plain dicts: family, dst ('default' or 'ADDR/LEN'), gateway, metric, proto,
    scope, onlink (moved with the route, so the bridge has what ifupdown gives it at boot)."""
    index = socket.if_nametoindex(ifname)
    routes = []
    for family in (socket.AF_INET, socket.AF_INET6):
        for msg in ipr.get_routes(family=family, table=RT_TABLE_MAIN):
            if msg.get_attr('RTA_OIF') != index or msg['proto'] in (RTPROT_KERNEL, RTPROT_RA):
                continue
            dst = msg.get_attr('RTA_DST')
            routes.append({
                'family': 4 if family == socket.AF_INET else 6,
                'dst': '%s/%d' % (dst, msg['dst_len']) if dst else 'default',
                'gateway': msg.get_attr('RTA_GATEWAY'),
                'metric': msg.get_attr('RTA_PRIORITY'),
                'proto': msg['proto'],
                'scope': msg['scope'],
                'onlink': bool(msg['flags'] & RTNH_F_ONLINK),
            })
    return routes


def describe_route(route):
    """'default via 10.0.0.1 metric 5', as `ip route` would say it."""
    text = route['dst']
    if route.get('gateway'):
        text += ' via %s' % route['gateway']
    if route.get('metric') is not None:
        text += ' metric %d' % route['metric']
    if route.get('onlink'):
        text += ' onlink'
    return text


def ports_of(snapshot, bridge):
    """Names of the links enslaved to `bridge`, sorted."""
    return sorted(name for name, link in snapshot.items() if link['master'] == bridge)


def open_netlink():
    """An IPRoute socket in the current network namespace."""
    return IPRoute()


# ---------------------------------------------------------------- planning

class LinkPlan:
    """Actions, errors and a before/after view, computed from one snapshot.

    Actions are tuples applied in order by apply_plan():
      ('delete', name)
      ('tun', name, mode, owner, group, multi_queue, vnet_hdr)   create or reconfigure
      ('bridge', name, {stp, forward_delay})                       create
      ('set', name, {mtu, state, master, stp, forward_delay})      master '' = release
      ('addr_add' | 'addr_del', name, 'ADDRESS/PREFIX')
    """

    def __init__(self, snapshot):
        self.snapshot = snapshot
        self.actions = []
        self.errors = []
        self.before = {}
        self.after = {}
        self.changed_names = []

    @property
    def changed(self):
        return bool(self.actions)

    def record(self, name, before, after):
        """Keep a device's before/after view; it counts as changed when they differ."""
        if before != after:
            self.before[name] = before
            self.after[name] = after
            self.changed_names.append(name)

    def diff(self):
        return {'before': self.before, 'after': self.after}

    def pending_bridges(self):
        """Bridges this plan creates (a tap may name one as its master)."""
        return set(action[1] for action in self.actions if action[0] == 'bridge')


TAP_FIELDS = ('mode', 'owner', 'group', 'multi_queue', 'vnet_hdr', 'mtu', 'state', 'master',
              'addresses')
TAP_DEFAULTS = {'owner': None, 'group': None, 'multi_queue': False, 'vnet_hdr': False,
                'mtu': 1500, 'state': 'down', 'master': None, 'addresses': []}

BRIDGE_FIELDS = ('stp', 'forward_delay', 'mtu', 'state', 'addresses', 'ports')
BRIDGE_DEFAULTS = {'stp': False, 'forward_delay': 15, 'mtu': 1500, 'state': 'down',
                   'addresses': [], 'ports': []}


def _view(link, fields):
    """The managed fields of an existing link."""
    return dict((field, link.get(field)) for field in fields)


def _desired(spec, fields, current, defaults):
    """Spec values where given (not None), else what the link has or will get."""
    base = current if current is not None else defaults
    return dict((field, spec[field] if spec.get(field) is not None else base[field])
                for field in fields)


def _plan_link_settings(plan, name, have, want):
    """MTU, admin state, master and addresses: shared by taps and bridges."""
    changes = dict((field, want[field]) for field in ('mtu', 'master', 'state')
                   if field in want and want[field] != have[field])
    if 'master' in changes and changes['master'] is None:
        changes['master'] = ''
    if changes:
        plan.actions.append(('set', name, changes))
    for address in sorted(set(have['addresses']) - set(want['addresses'])):
        plan.actions.append(('addr_del', name, address))
    for address in sorted(set(want['addresses']) - set(have['addresses'])):
        plan.actions.append(('addr_add', name, address))


def _kind_error(plan, path, name, current, wanted):
    plan.errors.append('%s: a link named %r already exists and is a %s, not a %s; choose '
                       'another name' % (path, name, current['kind'] or 'physical device', wanted))


def plan_tap(plan, spec):
    """Plan one tap/tun device.

    spec (see tap_spec()): name, path, state (present|absent), mode; owner, group (ids),
    multi_queue, vnet_hdr, mtu, state of the link as 'link_state' ('up'|'down'), master
    ('' = none), addresses (canonical ADDRESS/PREFIX list): None = leave as it is
    (the kernel's default on a new device).
    """
    name = spec['name']
    current = plan.snapshot.get(name)
    if current is not None and current['kind'] != 'tun':
        _kind_error(plan, spec['path'], name, current, 'tap/tun device')
        return
    if spec['state'] == 'absent':
        if current is not None:
            plan.actions.append(('delete', name))
            plan.record(name, _view(current, TAP_FIELDS), None)
        return

    master = spec.get('master')
    if master:
        bridge = plan.snapshot.get(master)
        if bridge is None and master not in plan.pending_bridges():
            plan.errors.append('%sbridge: bridge %r does not exist' % (spec['prefix'], master))
            return
        if bridge is not None and bridge['kind'] != 'bridge':
            plan.errors.append('%sbridge: %r is a %s, not a bridge'
                               % (spec['prefix'], master, bridge['kind'] or 'physical device'))
            return

    wanted = dict(spec)
    wanted['state'] = spec['link_state']
    wanted['master'] = None if master == '' else master
    wanted['addresses'] = sorted(spec['addresses']) if spec['addresses'] is not None else None
    desired = _desired(wanted, TAP_FIELDS, current, dict(TAP_DEFAULTS, mode=spec['mode']))
    if master == '':
        desired['master'] = None
    if desired['mode'] == 'tun' and desired['master']:
        # The kernel refuses a tun device (no Ethernet header) as a bridge port; catch it
        # here, before a tap that changes mode is deleted.
        plan.errors.append('%s%s: %r cannot be a tun device and a port of bridge %r; only '
                           "tap devices can be bridge ports (use mode=tap, or bridge='' to "
                           'release it)' % (spec['prefix'], 'bridge' if master else 'mode',
                                            name, desired['master']))
        return
    before = _view(current, TAP_FIELDS) if current is not None else None

    have = current
    if current is not None and (current['mode'] != desired['mode']
                                or current['multi_queue'] != desired['multi_queue']):
        plan.actions.append(('delete', name))
        have = None
    tun_shape = ('mode', 'owner', 'group', 'multi_queue', 'vnet_hdr')
    if have is None or any(have[field] != desired[field] for field in tun_shape):
        plan.actions.append(('tun', name) + tuple(desired[field] for field in tun_shape))
    _plan_link_settings(plan, name, have if have is not None else TAP_DEFAULTS, desired)
    plan.record(name, before, desired)


def plan_bridge(plan, spec):
    """Plan one bridge and its ports.

    spec (see bridge_spec()): name, path, state (present|absent), stp, forward_delay
    (seconds), mtu, link_state, addresses (None = leave as they are), ports (None =
    leave), exclusive (release ports not listed), move_ports (take ports that belong to
    another bridge), uplink (a port whose addresses and routes move to the bridge, the
    bridged LAN takeover) with uplink_routes (read_routes() of that port).
    """
    name = spec['name']
    path = spec['path']
    current = plan.snapshot.get(name)
    if current is not None and current['kind'] != 'bridge':
        _kind_error(plan, path, name, current, 'bridge')
        return
    have = None
    if current is not None:
        have = _view(current, BRIDGE_FIELDS[:-1])
        have['ports'] = ports_of(plan.snapshot, name)
    if spec['state'] == 'absent':
        if current is not None:
            plan.actions.append(('delete', name))
            plan.record(name, have, None)
        return

    ports = spec.get('ports') or []
    for index, port in enumerate(ports):
        _check_port(plan, spec, 'ports[%d]' % index, port)
    if plan.errors:
        return

    wanted = dict(spec, state=spec.get('link_state'), ports=None)
    if spec.get('addresses') is not None:
        wanted['addresses'] = sorted(spec['addresses'])
    desired = _desired(wanted, BRIDGE_FIELDS, have, BRIDGE_DEFAULTS)
    desired['ports'] = sorted(set(desired['ports']) | set(ports))
    if spec.get('exclusive'):
        desired['ports'] = sorted(ports)
    uplink = spec.get('uplink')
    moving = plan.snapshot[uplink]['addresses'] if uplink else []
    routes = (spec.get('uplink_routes') or []) if moving else []
    readdress = bool(uplink and spec.get('readdress'))
    if uplink and spec.get('addresses') is not None and not readdress:
        # The addresses (and gateway) the caller persists must be what the host really has:
        # a takeover of other addresses than those written for the boot strands the host at
        # its next reboot (uplink_check explains).
        # uplink_check describes routes with describe_route() of this module.
        from ansible_collections.tuntap.qemu.plugins.module_utils import uplink_check

        holder = uplink_check.lan_holder(plan.snapshot, uplink, name)
        held_routes = routes if holder == uplink else (spec.get('bridge_routes') or [])
        _facts, errors = uplink_check.check_uplink(plan.snapshot, held_routes, {
            'name': uplink, 'bridge': name, 'addresses': spec['addresses'],
            'gateway': spec.get('gateway'), 'exact': True})
        if errors:
            plan.errors.extend('uplink: %s; nothing was changed (readdress=true changes the '
                               "host's address on purpose)" % error for error in errors)
            return
    if readdress:
        # On purpose: the bridge gets the requested addresses and default route; the uplink's
        # own go, and none of its routes move.
        desired['addresses'] = sorted(spec['addresses'])
        gateway = spec.get('gateway')
        routes = []
        if gateway and not any(route['dst'] == 'default' and route['family'] == 4
                               and route.get('gateway') == gateway
                               for route in spec.get('bridge_routes') or []):
            routes = [{'family': 4, 'dst': 'default', 'gateway': gateway, 'metric': None,
                       'proto': RTPROT_BOOT, 'scope': 0, 'onlink': False}]
        if have is None:
            desired['mac'] = plan.snapshot[uplink]['mac']
    elif moving:
        desired['addresses'] = sorted(set(desired['addresses']) | set(moving))
        if have is None:
            # The bridge takes the uplink's MAC: neighbours' ARP caches stay valid.
            desired['mac'] = plan.snapshot[uplink]['mac']
    if desired['stp'] and desired['forward_delay'] < 2:
        # bridge_spec() catches stp=true with forward_delay < 2 in one request; this is
        # the case of one of them coming from the bridge as it is. The kernel refuses it.
        plan.errors.append('forward_delay: %r seconds is below 2, the minimum while stp is on '
                           '(bridge %r would have stp on; set stp=false or forward_delay >= 2)'
                           % (desired['forward_delay'], name))
        return

    base = have if have is not None else BRIDGE_DEFAULTS
    bridge_attrs = dict((field, desired[field]) for field in ('stp', 'forward_delay')
                        if desired[field] != base[field])
    if have is None:
        if desired.get('mac'):
            bridge_attrs['mac'] = desired.pop('mac')
        plan.actions.append(('bridge', name, bridge_attrs))
    elif bridge_attrs:
        if bridge_attrs.get('stp') is False and 'forward_delay' in bridge_attrs:
            # In one request the kernel sets forward_delay before stp and refuses a delay
            # below 2 s while STP is still on: turn STP off in a request of its own first.
            plan.actions.append(('set', name, {'stp': False}))
            bridge_attrs = {'forward_delay': bridge_attrs['forward_delay']}
        plan.actions.append(('set', name, bridge_attrs))
    _plan_link_settings(plan, name, dict(base, master=None), dict(desired, master=None))
    for port in desired['ports']:
        if port not in base['ports']:
            plan.actions.append(('set', port, {'master': name}))
    for port in base['ports']:
        if port not in desired['ports']:
            plan.actions.append(('set', port, {'master': ''}))
    if moving or (readdress and routes):
        # The bridge holds the addresses already (above) when the uplink becomes its port;
        # routes move with a replace (no moment without them), then the uplink lets go.
        for route in routes:
            plan.actions.append(('route_replace', name, route))
        for address in moving:
            plan.actions.append(('addr_del', uplink, address))
        if moving:
            moved = [] if readdress else routes
            plan.record(uplink, {'addresses': moving, 'routes': [describe_route(r) for r in moved]},
                        {'addresses': [], 'routes': []})
        desired['routes'] = [describe_route(r) for r in routes]
    plan.record(name, have, desired)


def _check_port(plan, spec, path, port):
    name = spec['name']
    link = plan.snapshot.get(port)
    if port == name:
        plan.errors.append('%s: %r is the bridge itself' % (path, port))
    elif link is None:
        plan.errors.append('%s: port %r does not exist' % (path, port))
    elif link['kind'] == 'bridge':
        plan.errors.append('%s: %r is a bridge; a bridge cannot be a port of another bridge'
                           % (path, port))
    elif link['master'] not in (None, name):
        master = plan.snapshot.get(link['master'])
        if master is None or master['kind'] != 'bridge':
            plan.errors.append('%s: %r is enslaved to %r, which is not a bridge'
                               % (path, port, link['master']))
        elif not spec.get('move_ports'):
            plan.errors.append('%s: %r is already a port of bridge %r; set move_ports=true to '
                               'move it to %r' % (path, port, link['master'], name))


# ---------------------------------------------------------------- applying

def apply_plan(ipr, plan):
    """Carry out plan.actions in order.  Raises LinkError naming the device and step."""
    index = dict((name, link['ifindex']) for name, link in plan.snapshot.items())

    def ifindex(name):
        if name not in index:
            index[name] = socket.if_nametoindex(name)
        return index[name]

    for action in plan.actions:
        kind, name = action[0], action[1]
        try:
            if kind == 'delete':
                ipr.link('del', index=ifindex(name))
                index.pop(name, None)
            elif kind == 'tun':
                tuntap.configure_tun(name, *action[2:])
            elif kind == 'bridge':
                ipr.link('add', ifname=name, kind='bridge', **_bridge_kwargs(action[2]))
            elif kind == 'set':
                ipr.link('set', index=ifindex(name), **_set_kwargs(action[2], ifindex))
            elif kind == 'route_replace':
                ipr.route('replace', **_route_kwargs(action[2], ifindex(name)))
            elif kind == 'addr_add':
                ipr.addr('add', index=ifindex(name), **address_kwargs(action[2]))
            elif kind == 'addr_del':
                address, prefix = action[2].split('/')
                ipr.addr('del', index=ifindex(name), address=address, prefixlen=int(prefix))
        except tuntap.TunError as exc:
            raise LinkError(str(exc))
        except (NetlinkError, OSError) as exc:
            raise LinkError('%s: %s failed: %s' % (name, _describe(action), exc))


def address_kwargs(cidr):
    """pyroute2 arguments that add an address as ifupdown, networkd and `ip addr add ... brd +`
    do: an IPv4 address of a subnet with room for one gets the subnet's broadcast."""
    interface = ipaddress.ip_interface(cidr)
    kwargs = {'address': str(interface.ip), 'prefixlen': interface.network.prefixlen}
    if interface.version == 4 and interface.network.prefixlen <= 30:
        kwargs['broadcast'] = str(interface.network.broadcast_address)
    return kwargs


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
    bridge = _bridge_kwargs(changes)
    if bridge:
        kwargs['kind'] = 'bridge'
        kwargs.update(bridge)
    return kwargs


def _describe(action):
    kind = action[0]
    if kind == 'set':
        return 'setting %s' % ', '.join('%s=%s' % item for item in sorted(action[2].items()))
    if kind in ('addr_add', 'addr_del'):
        return '%s address %s' % ('adding' if kind == 'addr_add' else 'removing', action[2])
    if kind == 'route_replace':
        return 'moving route %s' % describe_route(action[2])
    return {'delete': 'deleting the link', 'bridge': 'creating the bridge'}.get(kind, kind)


def device_facts(snapshot, name):
    """What the modules return about one device."""
    link = snapshot.get(name)
    if link is None:
        return None
    facts = dict((key, value) for key, value in link.items() if key != 'master_index')
    return facts
