# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The link modules' steps for module_runner (tap_device, bridge_port, uplink_info).

read state once -> plan every spec -> fail on any error (nothing touched) ->
apply unless check mode -> read once more for the return values.

pyroute2 is imported only to apply a change and to read routes (bridge_port with an
uplink, a bridged_lan bridge to remove, uplink_info): a no-change tap_device or bridge_port
never imports it. With prune, /proc is walked for holders of tun devices (tun_holders) only
when there is a marked tap to remove.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from typing import Any, Dict, List, Optional

from ansible_collections.tuntap.qemu.plugins.module_utils import module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils._confirm import arming
from ansible_collections.tuntap.qemu.plugins.module_utils._links import (
    applying, dhcp_client, marks, netlink, planning, pruning, reading, specs, tun_holders, uplink_check)

LIBRARIES = (module_runner.NETADDR, module_runner.PYROUTE2)


@dataclasses.dataclass
class LinkRequest:
    """The specs of one call, and whether our links it does not hold go (prune)."""
    specs: List[Dict[str, Any]]
    prune: bool = False
    # bridge_port: the armed rollback (confirmed_change) that protects the change, and its
    # folder's parent; the change is made only while that rollback is pending.
    armed_change: Optional[str] = None
    rollback_dir: Optional[str] = None

    def names(self):
        return [spec['name'] for spec in self.specs]


@dataclasses.dataclass
class LinkState:
    """What read() found: the snapshot, the holders of the taps a prune would remove, the
    routes of the bridged_lan bridges a call would remove."""
    snapshot: Dict[str, Any]
    holders: Dict[str, List[Any]] = dataclasses.field(default_factory=dict)
    bridge_routes: Dict[str, List[Dict[str, Any]]] = dataclasses.field(default_factory=dict)
    # the DHCP clients (dhcp_client.find_clients()) of a takeover's uplink and bridge
    clients: Dict[str, List[Any]] = dataclasses.field(default_factory=dict)


class LinkSteps(module_runner.ModuleSteps):
    """Plan a list of specs with one planner (plan_tap or plan_bridge) against one snapshot."""

    libraries = LIBRARIES
    planner = None

    def specs(self, module):
        """[spec], errors from the module's parameters."""
        raise NotImplementedError

    def parse(self, module):
        request, errors = self.specs(module)
        module_runner.refuse(errors)
        return LinkRequest(request, bool(module.params.get('prune')))

    def read(self, module, request):
        return LinkState(reading.read_snapshot())

    def plan(self, module, request, state):
        plan = planning.LinkPlan(state.snapshot)
        plan.dhcp_clients = state.clients
        for spec in request.specs:
            self.planner(plan, spec)  # pylint: disable=not-callable
        if request.prune:
            self.prune(plan, request, state)
        module_runner.refuse(plan.errors)
        return plan

    def prune(self, plan, request, state):
        """Plan the removal of our links that the request does not hold."""

    def apply(self, module, plan):
        ipr = netlink.open_netlink()
        try:
            applying.apply_plan(ipr, plan)
        except applying.LinkError as exc:
            raise module_runner.ApplyFailed(str(exc), diff=plan.diff())
        finally:
            ipr.close()

    def result(self, module, request, plan, applied):
        """The common module result: changed, diff, and the resulting devices.

        The devices are read again after a change; in check mode they are the prediction
        (the planned after-view merged into the current state)."""
        snapshot = plan.snapshot
        if applied:
            snapshot = reading.read_snapshot()
        elif plan.changed:
            snapshot = predicted(plan)
        result = {
            'changed': plan.changed,
            'devices': [reading.device_facts(snapshot, name) for name in request.names()
                        if snapshot.get(name) is not None],
            'removed': list(plan.removed),
        }
        for warning in plan.warnings:
            module.warn(warning)
        if module._diff:
            result['diff'] = plan.diff()
        self.complete(result, plan, snapshot)
        return result

    def complete(self, result, plan, snapshot):
        """Add module-specific return values from the plan and the resulting snapshot."""


class TapSteps(LinkSteps):
    """tap_device."""

    planner = staticmethod(planning.plan_tap)

    def specs(self, module):
        return specs.tap_specs(module.params)

    def read(self, module, request):
        snapshot = reading.read_snapshot()
        holders = {}
        if request.prune:
            holders = tun_holders.read_holders(pruning.tap_candidates(snapshot, request.names()))
        return LinkState(snapshot, holders)

    def prune(self, plan, request, state):
        pruning.plan_tap_prune(plan, request.names(), state.holders)

    def complete(self, result, plan, snapshot):
        result['in_use'] = list(plan.in_use)


class BridgeSteps(LinkSteps):
    """bridge_port: one bridge, with the routes of the bridged LAN takeover read first."""

    planner = staticmethod(planning.plan_bridge)

    def specs(self, module):
        if module.params['name'] is None:  # state=absent prune=true: remove all of ours
            return [], []
        spec, errors = specs.bridge_spec(module.params)
        return [spec], errors

    def parse(self, module):
        params = module.params
        errors = []
        if params.get('armed_change') is not None:
            if not arming.valid_id(params['armed_change']):
                errors.append('armed_change: %r is not a change id (letters, digits, ., _, -)'
                              % params['armed_change'])
            if not os.path.isabs(params['rollback_dir']):
                errors.append('rollback_dir: %r is not an absolute path' % params['rollback_dir'])
        try:
            request = super().parse(module)
        except module_runner.Refused as exc:
            raise module_runner.Refused(exc.errors + errors)
        module_runner.refuse(errors)
        request.armed_change = params.get('armed_change')
        request.rollback_dir = params.get('rollback_dir')
        return request

    def plan(self, module, request, state):
        plan = super().plan(module, request, state)
        if plan.changed and request.armed_change is not None:
            # Under the host lock, which the rollback helper takes too: a change made while
            # the rollback is pending is confirmed or rolled back whole; one made after the
            # deadline would stand with nothing to undo it.
            error = arming.protection_error(request.rollback_dir, request.armed_change)
            if error:
                raise module_runner.Refused([error], armed_change=request.armed_change)
        return plan

    def read(self, module, request):
        for spec in request.specs:
            if spec['uplink'] and spec['state'] == 'present':
                spec['uplink_routes'] = uplink_routes(spec['uplink'])
                spec['uplink_ra_routes'] = uplink_routes(spec['uplink'], reading.read_ra_routes)
                spec['bridge_routes'] = uplink_routes(spec['name'])
        snapshot = reading.read_snapshot()
        going = [spec['name'] for spec in request.specs
                 if spec['state'] == 'absent' and spec['name'] in snapshot]
        if request.prune:
            going += pruning.bridge_candidates(snapshot, request.names())
        # A bridged_lan bridge gives its routes back to the uplink: read them (pyroute2) for
        # those alone.
        routes = dict((name, uplink_routes(name)) for name in going
                      if snapshot[name]['kind'] == 'bridge' and marks.mark_uplink(snapshot[name]))
        for spec in request.specs:
            spec['removal_routes'] = routes
        # DHCP clients of a takeover's uplink and bridge (a lease is refused by a static
        # check, moved with dhcp), and of a dhcp-marked bridge that goes and its uplink.
        links = set()
        for spec in request.specs:
            if spec['uplink'] and spec['state'] == 'present':
                links.update((spec['uplink'], spec['name']))
        for name in routes:
            if marks.mark_dhcp(snapshot[name]):
                links.update((name, marks.mark_uplink(snapshot[name])))
        clients = dict((name, dhcp_client.find_clients(name)) for name in sorted(links))
        return LinkState(snapshot, bridge_routes=routes, clients=clients)

    def prune(self, plan, request, state):
        pruning.plan_bridge_prune(plan, request.names(), state.bridge_routes)

    def complete(self, result, plan, snapshot):
        for device in result['devices']:
            if 'ports' not in device:  # the check-mode prediction has them already
                device['ports'] = reading.ports_of(snapshot, device['name'])
            if 'isolated_ports' not in device:
                device['isolated_ports'] = reading.isolated_ports_of(snapshot, device['name'])


class UplinkInfoSteps(module_runner.ModuleSteps):
    """uplink_info: read the uplink (or its bridge), check it against the request."""

    libraries = LIBRARIES

    def parse(self, module):
        module_runner.refuse(uplink_check.spec_errors(module.params))
        return module.params

    def read(self, module, request):
        snapshot = reading.read_snapshot()
        holder = uplink_check.lan_holder(snapshot, request['name'], request['bridge'])
        clients = {}
        if holder and (request.get('dhcp') or request.get('exact')):
            clients[holder] = dhcp_client.find_clients(holder)
        return snapshot, uplink_routes(holder) if holder else [], clients

    def plan(self, module, request, state):
        snapshot, routes, clients = state
        facts, errors = uplink_check.check_uplink(snapshot, routes, request, clients)
        if errors and request['hint']:
            errors = errors + [request['hint']]
        module_runner.refuse(errors, uplink=facts)
        return _Unchanged(facts)

    def result(self, module, request, plan, applied):
        return {'changed': False, 'uplink': plan.facts}


class _Unchanged:
    changed = False

    def __init__(self, facts):
        self.facts = facts


def uplink_routes(uplink, reader=reading.read_routes):
    """The routes read_routes() (or `reader`: read_ra_routes()) finds through `uplink`, or []
    when it does not exist (plan_bridge reports the missing port)."""
    try:
        socket.if_nametoindex(uplink)
    except OSError:
        return []
    ipr = netlink.open_netlink()
    try:
        return reader(ipr, uplink)
    finally:
        ipr.close()


def predicted(plan):
    """The snapshot after the plan, as check mode reports it."""
    snapshot = dict(plan.snapshot)
    for name, after in plan.after.items():
        if after is None:
            snapshot.pop(name, None)
        else:
            record = dict(snapshot.get(name) or {'name': name, 'ifindex': None, 'mac': None})
            record.update(after)
            snapshot[name] = record
    return snapshot
