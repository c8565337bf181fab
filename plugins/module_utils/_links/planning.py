# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning taps and bridges: pure functions from one snapshot to typed actions.

The flow of every link module (converge.py through module_runner):

    snapshot = reading.read_snapshot()     # one dump of links, one of addresses
    plan = LinkPlan(snapshot)
    plan_tap(plan, spec) / plan_bridge(plan, spec)   # pure: no kernel access
    if plan.errors: fail, nothing touched
    if plan.changed and not check_mode: applying.apply_plan(ipr, plan)

The bridged_lan uplink takeover that plan_bridge can include is in uplink_takeover.py;
the prune of our other taps and bridges (marks.py) in pruning.py.

Every tap and bridge planned as present gets our mark (its alias, marks.py): a link created
here, and one that existed without it (the inventory says it is ours). A new mark is a
change like any other, so hosts converged before the marks report changed once.
"""

from __future__ import annotations

from ansible_collections.tuntap.qemu.plugins.module_utils._links import marks, uplink_takeover
from ansible_collections.tuntap.qemu.plugins.module_utils._links.actions import (
    AddrAdd, AddrDel, BridgeCreate, Delete, LinkSet, PortIsolate, Tun)
from ansible_collections.tuntap.qemu.plugins.module_utils._links.reading import isolated_ports_of, ports_of


class LinkPlan:
    """Actions, errors and a before/after view, computed from one snapshot.

    `actions` is a list of the typed actions of actions.py (Delete, Tun, BridgeCreate,
    LinkSet, AddrAdd, AddrDel, RouteReplace), applied in order by applying.apply_plan().
    `removed` names the links deleted for good (state=absent, prune), `in_use` the marked
    taps a prune leaves alone because a process holds them ({name, holders: [{pid, comm}]}),
    each also in `warnings`.
    """

    def __init__(self, snapshot):
        self.snapshot = snapshot
        self.actions = []
        self.errors = []
        self.warnings = []
        self.removed = []
        self.in_use = []
        self.before = {}
        self.after = {}
        self.changed_names = []
        # {ifname: [dhcp_client.Client]} of the links whose DHCP client may move (read first)
        self.dhcp_clients = {}
        self.client_moves = []   # (before, after) views of DhcpMove actions, for the diff

    @property
    def changed(self):
        return bool(self.actions)

    def record(self, name, before, after):
        """Keep a device's before/after view; it counts as changed when they differ."""
        if before != after:
            self.before[name] = before
            self.after[name] = after
            self.changed_names.append(name)

    def record_client(self, before, after):
        """Keep the before/after view of a DHCP client that moves (not a link of the snapshot)."""
        self.client_moves.append((before, after))

    def diff(self):
        if not self.client_moves:
            return {'before': self.before, 'after': self.after}
        return {'before': dict(self.before, dhcp_client=self.client_moves[-1][0]),
                'after': dict(self.after, dhcp_client=self.client_moves[-1][1])}

    def pending_bridges(self):
        """Bridges this plan creates (a tap may name one as its master)."""
        return set(action.name for action in self.actions if isinstance(action, BridgeCreate))


TAP_FIELDS = ('mode', 'owner', 'group', 'multi_queue', 'vnet_hdr', 'mtu', 'state', 'master',
              'addresses', 'alias')
TAP_DEFAULTS = {'owner': None, 'group': None, 'multi_queue': False, 'vnet_hdr': False,
                'mtu': 1500, 'state': 'down', 'master': None, 'addresses': [], 'alias': None}

# `ports` last: the view of an existing bridge reads it with ports_of(). The view also has
# `isolated_ports` (isolated_ports_of()), planned by _plan_isolation().
BRIDGE_FIELDS = ('stp', 'forward_delay', 'mtu', 'state', 'addresses', 'alias', 'ports')
BRIDGE_DEFAULTS = {'stp': False, 'forward_delay': 15, 'mtu': 1500, 'state': 'down',
                   'addresses': [], 'alias': None, 'ports': []}


def _view(link, fields):
    """The managed fields of an existing link."""
    return dict((field, link.get(field)) for field in fields)


def _desired(spec, fields, current, defaults):
    """Spec values where given (not None), else what the link has or will get."""
    base = current if current is not None else defaults
    return dict((field, spec[field] if spec.get(field) is not None else base[field])
                for field in fields)


def _plan_link_settings(plan, name, have, want, lifetimes=None):
    """MTU, admin state, master, mark and addresses: shared by taps and bridges. lifetimes:
    {address: {'valid', 'preferred'}} of added addresses that keep a finite lifetime."""
    changes = dict((field, want[field]) for field in ('mtu', 'master', 'state', 'alias')
                   if field in want and want[field] != have.get(field))
    if 'master' in changes and changes['master'] is None:
        changes['master'] = ''
    if changes:
        plan.actions.append(LinkSet(name, changes))
    for address in sorted(set(have['addresses']) - set(want['addresses'])):
        plan.actions.append(AddrDel(name, address))
    for address in sorted(set(want['addresses']) - set(have['addresses'])):
        lifetime = (lifetimes or {}).get(address)
        if lifetime:
            plan.actions.append(AddrAdd(name, address, valid=lifetime['valid'], preferred=lifetime['preferred']))
        else:
            plan.actions.append(AddrAdd(name, address))


def _kind_error(plan, path, name, current, wanted):
    plan.errors.append('%s: a link named %r already exists and is a %s, not a %s; choose '
                       'another name' % (path, name, current['kind'] or 'physical device', wanted))


def plan_tap(plan, spec):
    """Plan one tap/tun device.

    spec (see specs.tap_specs()): name, path, state (present|absent), mode; owner, group
    (ids), multi_queue, vnet_hdr, mtu, state of the link as 'link_state' ('up'|'down'),
    master ('' = none), addresses (canonical ADDRESS/PREFIX list): None = leave as it is
    (the kernel's default on a new device).
    """
    name = spec['name']
    current = plan.snapshot.get(name)
    if current is not None and current['kind'] != 'tun':
        _kind_error(plan, spec['path'], name, current, 'tap/tun device')
        return
    if spec['state'] == 'absent':
        if current is not None:
            plan.actions.append(Delete(name))
            plan.record(name, _view(current, TAP_FIELDS), None)
            plan.removed.append(name)
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

    wanted = dict(spec, alias=marks.tap_mark())
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
        plan.actions.append(Delete(name))
        have = None
    tun_shape = ('mode', 'owner', 'group', 'multi_queue', 'vnet_hdr')
    if have is None or any(have[field] != desired[field] for field in tun_shape):
        plan.actions.append(Tun(name, *(desired[field] for field in tun_shape)))
    _plan_link_settings(plan, name, have if have is not None else TAP_DEFAULTS, desired)
    plan.record(name, before, desired)


def plan_bridge(plan, spec):
    """Plan one bridge and its ports.

    spec (see specs.bridge_spec()): name, path, state (present|absent), stp, forward_delay
    (seconds), mtu, link_state, addresses (None = leave as they are), ports (None =
    leave), exclusive (release ports not listed), move_ports (take ports that belong to
    another bridge), isolated_ports (None = leave every port's isolation as it is, else the
    ports of `ports` that are isolated, the others of `ports` not); with uplink, the bridged
    LAN takeover of uplink_takeover.py (uplink_routes, bridge_routes, gateway, readdress).
    """
    name = spec['name']
    path = spec['path']
    current = plan.snapshot.get(name)
    if current is not None and current['kind'] != 'bridge':
        _kind_error(plan, path, name, current, 'bridge')
        return
    have = bridge_view(plan.snapshot, name)
    if spec['state'] == 'absent':
        if current is not None:
            remove_bridge(plan, name, (spec.get('removal_routes') or {}).get(name, []))
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
    # The mark names the uplink this bridge took over, so that its removal gives the uplink
    # back its addresses and routes; a call without uplink keeps the one still a port.
    kept_uplink = marks.mark_uplink(current) if current is not None else None
    kept = kept_uplink if kept_uplink in desired['ports'] else None
    desired['alias'] = marks.bridge_mark(
        spec.get('uplink') or kept,
        spec.get('dhcp') or (not spec.get('uplink') and kept is not None and marks.mark_dhcp(current)))
    takeover = uplink_takeover.prepare(plan, spec, have, desired)
    if takeover is None:
        return
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
        plan.actions.append(BridgeCreate(name, bridge_attrs))
    elif bridge_attrs:
        plan.actions.extend(_stp_ordered(name, bridge_attrs))
    _plan_link_settings(plan, name, dict(base, master=None), dict(desired, master=None), takeover.lifetimes)
    for port in desired['ports']:
        if port not in base['ports']:
            plan.actions.append(LinkSet(port, {'master': name}))
    for port in base['ports']:
        if port not in desired['ports']:
            plan.actions.append(LinkSet(port, {'master': ''}))
    uplink_takeover.move(plan, name, takeover, desired)
    desired['isolated_ports'] = _plan_isolation(plan, name, ports, spec.get('isolated_ports'),
                                                desired['ports'])
    plan.record(name, have, desired)
    uplink_takeover.move_client(plan, name, takeover)


def _plan_isolation(plan, name, ports, isolated, desired_ports):
    """PortIsolate actions for the `ports` of this call whose isolation differs from
    `isolated` (None: none), after they are ports of bridge `name`; the sorted isolated ports of
    the bridge afterwards (of `desired_ports`).

    A port that joins the bridge is not isolated (the kernel makes each new port without the
    flag, also one that was isolated on another bridge); one that leaves takes its flag along.
    """
    def isolated_now(port):
        link = plan.snapshot.get(port)
        return bool(link is not None and link['master'] == name and link.get('isolated'))

    after = set(port for port in desired_ports if isolated_now(port))
    if isolated is not None:
        for port in ports:
            want = port in isolated
            if want != isolated_now(port):
                plan.actions.append(PortIsolate(port, want))
            if want:
                after.add(port)
            else:
                after.discard(port)
    return sorted(after)


def bridge_view(snapshot, name):
    """The managed fields of existing bridge `name` with its ports, or None."""
    current = snapshot.get(name)
    if current is None:
        return None
    have = _view(current, BRIDGE_FIELDS[:-1])
    have['ports'] = ports_of(snapshot, name)
    have['isolated_ports'] = isolated_ports_of(snapshot, name)
    return have


def remove_bridge(plan, name, routes):
    """Delete bridge `name`; its ports are released, not deleted (the kernel does it with the
    delete). A bridge whose mark names the uplink it took over (bridged_lan) first gives the
    uplink its addresses and `routes` (read_routes() of the bridge) back, in the order of
    uplink_takeover.give_back(). False (with the error in plan.errors) when it cannot."""
    uplink = marks.mark_uplink(plan.snapshot[name])
    if uplink and not uplink_takeover.give_back(plan, name, uplink, routes,
                                                marks.mark_dhcp(plan.snapshot[name])):
        return False
    plan.actions.append(Delete(name))
    plan.record(name, bridge_view(plan.snapshot, name), None)
    plan.removed.append(name)
    return True


def _stp_ordered(name, bridge_attrs):
    """The LinkSet actions that change an existing bridge's stp and forward_delay."""
    if bridge_attrs.get('stp') is False and 'forward_delay' in bridge_attrs:
        # In one request the kernel sets forward_delay before stp and refuses a delay
        # below 2 s while STP is still on: turn STP off in a request of its own first.
        return [LinkSet(name, {'stp': False}),
                LinkSet(name, {'forward_delay': bridge_attrs['forward_delay']})]
    return [LinkSet(name, bridge_attrs)]


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
