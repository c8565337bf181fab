# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The steps of the confirmed_change module (module_runner): arm, confirm, status.

armed reads the links once (the rtnl snapshot) to tell whether the change is pending - a
takeover wanted and the uplink not a port of `bridge`, or a release wanted and the uplink a
port of a bridge whose mark names it - and only then the full Snapshot (routes, lifetimes,
DHCP clients, files). It runs under the host lock like every module that reads the links; the
lock ends with the module, so the bridge_port call that follows takes it at once. The rollback
helper takes the lock again when it fires (rollback_helper), so it never interleaves with a
converge. confirmed and status touch no network state and take no lock.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any, List, Optional

from ansible_collections.tuntap.qemu.plugins.module_utils import host_lock, module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils._confirm import (
    arming, rollback_helper, rollback_plan, snapshot)
from ansible_collections.tuntap.qemu.plugins.module_utils._links import marks, reading

MIN_TIMEOUT = 5


@dataclasses.dataclass(frozen=True)
class Plan:
    changed: bool
    state: str
    change_id: Optional[str] = None
    folder: Optional[str] = None
    snapshot: Any = None
    steps: List[Any] = dataclasses.field(default_factory=list)
    status: Any = None
    bridge: Optional[str] = None


def _summary(link):
    if not link.exists:
        return {'name': link.name, 'exists': False}
    return {'name': link.name, 'exists': True, 'master': link.master,
            'addresses': link.address_texts(), 'ports': list(link.ports),
            'routes': [reading.describe_route(dataclasses.asdict(route)) for route in link.routes],
            'alias': link.alias}


def incomplete_change(folder, links):
    """Why the armed change is not made (the uplink's master is what it was when armed), or
    None when it is: a change is armed only when pending, so it must have moved the uplink
    into the bridge or out of it."""
    before = arming.read_json(folder, rollback_helper.SNAPSHOT) or {}
    plan = arming.read_json(folder, rollback_helper.PLAN) or {}
    uplink, bridge = plan.get('uplink'), plan.get('bridge')
    if not uplink or 'uplink' not in before:
        return None
    was_port = before['uplink'].get('master') == bridge
    now = (links.get(uplink) or {}).get('master')
    if (now == bridge) != was_port:
        return None
    return '%s is %s a port of %s, as when the change was armed: the change did not happen' % (
        uplink, 'still' if was_port else 'not', bridge)


class ConfirmedChangeSteps(module_runner.ModuleSteps):
    """state=armed|confirmed|status."""

    def __init__(self, state):
        # Only arming reads the links; confirm and status read the rollback folder.
        self.host_lock = state == 'armed'
        self.libraries = (module_runner.PYROUTE2,) if state == 'armed' else ()
        self.armed = None  # the arming.Armed record of apply()

    def parse(self, module):
        params = module.params
        errors = []
        if not os.path.isabs(params['runtime_dir']):
            errors.append('runtime_dir: %r is not an absolute path' % params['runtime_dir'])
        if params['state'] == 'armed':
            if params['timeout'] < MIN_TIMEOUT:
                errors.append('timeout: %d s is shorter than the minimum of %d s'
                              % (params['timeout'], MIN_TIMEOUT))
            for index, path in enumerate(params['files']):
                if not os.path.isabs(path):
                    errors.append('files[%d]: %r is not an absolute path' % (index, path))
            if len(set(params['files'])) != len(params['files']):
                errors.append('files: a path is listed twice')
        elif not arming.valid_id(params['id']):
            errors.append('id: %r is not a change id (letters, digits, ., _, -)' % params['id'])
        module_runner.refuse(errors)
        return params

    def read(self, module, request):
        if request['state'] != 'armed':
            folder = os.path.join(request['runtime_dir'], request['id'])
            state = arming.status(folder)
            if state is not None and request['state'] == 'confirmed':
                state = dict(state, incomplete=incomplete_change(folder, reading.read_snapshot()))
            return state
        return reading.read_snapshot()

    def plan(self, module, request, state):
        if request['state'] == 'armed':
            return self._plan_arm(request, state)
        folder = os.path.join(request['runtime_dir'], request['id'])
        if state is None:
            raise module_runner.Refused(['change %r: unknown, no rollback folder %s (armed on '
                                         'another host, or /run emptied by a reboot)'
                                         % (request['id'], folder)])
        if request['state'] == 'status':
            if state['rolled_back'] and not state['report']:
                # The rollback runs right now: its report follows within seconds.
                state = dict(state, report=arming.wait_report(folder) or {})
            return Plan(False, 'status', request['id'], folder, status=state)
        if state['rolled_back']:
            report = state['report'] or arming.wait_report(folder)
            raise module_runner.Refused(['change %s was not confirmed in time and was %s'
                                         % (request['id'], arming.describe_report(report))],
                                        rolled_back=True, report=report or {})
        if not state['confirmed'] and state.get('incomplete'):
            # The change did not happen (the module that makes it was cut off mid-way, say):
            # confirming would keep a half-made change. The rollback undoes it at the deadline.
            raise module_runner.Refused(['change %s: %s; not confirmed - the host rolls it back '
                                         'at its deadline' % (request['id'], state['incomplete'])],
                                        incomplete=True)
        return Plan(not state['confirmed'], 'confirmed', request['id'], folder, status=state)

    def _plan_arm(self, request, links):
        uplink, bridge = request['uplink'], request['bridge']
        if uplink not in links:
            raise module_runner.Refused(['uplink: %r does not exist; nothing was armed' % uplink])
        master = links[uplink].get('master')
        if request['takeover']:
            pending = master != bridge
        else:
            # The bridge of ours that took the uplink over, whatever its name.
            owner = links.get(master) if master else None
            pending = owner is not None and marks.mark_uplink(owner) == uplink
            if pending:
                bridge = master
        if not pending:
            return Plan(False, 'armed', bridge=bridge)
        armed = arming.pending_changes(request['runtime_dir'], uplink)
        if armed:
            # Two rollbacks of one uplink would undo each other's steps in an unknown order.
            raise module_runner.Refused(['uplink: change %s of %s is armed already and neither '
                                         'confirmed nor rolled back; confirm it or wait for its '
                                         'rollback (state=status); nothing was armed'
                                         % (', '.join(armed), uplink)], pending=armed)
        snap = snapshot.read(uplink, bridge, request['files'])
        steps = rollback_plan.plan_rollback(snap, rollback_plan.after_change(snap))
        change_id = arming.new_id()
        return Plan(True, 'armed', change_id, os.path.join(request['runtime_dir'], change_id),
                    snap, steps, bridge=bridge)

    def apply(self, module, plan):
        if plan.state == 'armed':
            try:
                armed = arming.arm(os.path.dirname(plan.folder), plan.change_id, plan.snapshot,
                                   plan.steps, module.params['timeout'], sys.executable,
                                   lock=host_lock.lock_path(os.environ))
            except arming.ArmingError as exc:
                raise module_runner.Refused([str(exc)])
            self.armed = armed
            return
        stands = arming.confirm(plan.folder)
        if stands != rollback_helper.CONFIRMED:
            report = arming.wait_report(plan.folder)
            raise module_runner.ApplyFailed(
                'change %s was not confirmed in time and was %s'
                % (plan.change_id, arming.describe_report(report)),
                rolled_back=True, report=report or {})

    def result(self, module, request, plan, applied):
        if plan.state == 'armed':
            return self._arm_result(module, request, plan, applied)
        state = plan.status
        if plan.state == 'status':
            return {'changed': False, 'id': plan.change_id, 'rolled_back': state['rolled_back'],
                    'confirmed': state['confirmed'], 'report': state['report'],
                    'deadline': state['deadline'], 'timeout': state['timeout'],
                    'mechanism': state['mechanism'], 'rollback': state['rollback']}
        return {'changed': plan.changed, 'id': plan.change_id, 'confirmed': True,
                'rolled_back': False, 'report': {}}

    def _arm_result(self, module, request, plan, applied):
        timeout = request['timeout']
        if not plan.changed:
            return {'changed': False, 'armed': False, 'id': None, 'timeout': timeout,
                    'deadline': None, 'mechanism': None, 'rollback': [], 'bridge': plan.bridge}
        lines = rollback_plan.describe(plan.steps)
        applied = self.armed if applied else None
        result = {'changed': True, 'armed': bool(applied), 'timeout': timeout,
                  'id': applied.change_id if applied else None,
                  'deadline': applied.deadline if applied else None,
                  'mechanism': applied.mechanism if applied else arming.choose_mechanism(),
                  'rollback': lines, 'bridge': plan.bridge}
        if applied:
            result['folder'] = applied.folder
        if module._diff:
            result['diff'] = {
                'before': {'uplink': _summary(plan.snapshot.uplink),
                           'bridge': _summary(plan.snapshot.bridge),
                           'files': [saved.path for saved in plan.snapshot.files]},
                'after': {'rollback': 'rolls back to this unless confirmed within %d s' % timeout,
                          'steps': lines},
            }
        return result
