# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The steps of the vde_switch module (module_runner.ModuleSteps): read our unit, our running
switch, the tap (rtnl_snapshot, no pyroute2) and who holds it; plan the unit and the action
(start, restart, stop); refuse a missing or busy tap, an unknown group or a missing binary
before anything changes; apply unless check mode.
"""

from __future__ import annotations

import dataclasses
import grp
import os
import stat
import typing

from ansible_collections.tuntap.qemu.plugins.module_utils import files, module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils._dhcp import dnsmasq_service
from ansible_collections.tuntap.qemu.plugins.module_utils._guest import guest_unit, qemu
from ansible_collections.tuntap.qemu.plugins.module_utils._links import rtnl_snapshot, tun_holders
from ansible_collections.tuntap.qemu.plugins.module_utils._vde import switch_request, switch_service


@dataclasses.dataclass
class State:
    mode: typing.Optional[str]
    mode_error: typing.Optional[str]
    unit_text: typing.Optional[str]
    unit_status: typing.Any
    pid: typing.Optional[int]
    daemon_pid: typing.Optional[int]
    running_argv: typing.Optional[list]
    binary: typing.Optional[str]
    tap: typing.Optional[dict]
    holders: typing.List[tun_holders.Holder]


@dataclasses.dataclass
class Plan:
    request: switch_request.Request
    state: State
    argv: typing.Optional[list]
    unit_after: typing.Optional[str]
    action: str
    enable: bool
    warnings: typing.List[str]
    pid: typing.Optional[int] = None

    @property
    def unit_changed(self):
        return self.state.unit_text != self.unit_after

    @property
    def changed(self):
        return bool(self.action != 'none' or self.unit_changed or self.enable)


def unit_path(request):
    return os.path.join(request.unit_dir, switch_service.UNIT_NAME)


def _switch_facts(args):
    """{tap, socket, group, mode} of a vde_switch command line (None: no switch)."""
    if args is None:
        return None
    return {'tap': qemu.option_value(args, '--tap'), 'socket': qemu.option_value(args, '--sock'),
            'group': qemu.option_value(args, '--group'), 'mode': qemu.option_value(args, '--mode')}


def tap_errors(request, link, holders, own_pid):
    """Errors about the switch's tap (an rtnl_snapshot record or None) and its holders."""
    if link is None:
        return ['tap: %r does not exist; create it first (tuntap.qemu.tap_device) - vde_switch '
                'would make a tap of its own that nothing configures' % request.tap]
    if link['kind'] != 'tun' or link.get('mode') != 'tap':
        return ['tap: %r is a %s, not a tap device' % (request.tap, link.get('mode') or link['kind'] or 'physical device')]
    errors = []
    others = [holder for holder in holders if holder.pid != own_pid]
    if others and not link.get('multi_queue'):
        errors.append('tap: %r is already in use by %s; a tap has one switch or one guest'
                      % (request.tap, ', '.join(holder.describe() for holder in others)))
    elif link.get('carrier') and own_pid is None and not holders:
        errors.append('tap: %r has carrier, so a process (in another namespace?) holds it open'
                      % request.tap)
    if link['state'] != 'up':
        errors.append('tap: %r is down; bring it up first (tap_device link_state=up)' % request.tap)
    return errors


class VdeSwitchSteps(module_runner.ModuleSteps):
    """vde_switch for module_runner."""

    def parse(self, module):
        request, errors = switch_request.parse_request(module.params)
        module_runner.refuse(errors)
        return request

    def read(self, module, request):
        mode, mode_error = dnsmasq_service.service_mode(
            request.service, dnsmasq_service.init_comm(), guest_unit.same_netns_as_init())
        path = unit_path(request)
        unit_text = files.read_text(path)
        if unit_text is not None and not guest_unit.is_ours(unit_text):
            raise module_runner.Refused(['%s exists and is not ours (no "%s" header); move it away'
                                         % (path, guest_unit.MARK)])
        status = guest_unit.NO_UNIT
        if unit_text is not None and mode == 'systemd':
            try:
                status = guest_unit.Systemctl(module).status(switch_service.UNIT_NAME)
            except guest_unit.SystemctlError as exc:
                raise module_runner.Refused([str(exc)])
        daemon_pid = switch_service.running_pid(request.pidfile)
        pid = switch_service.running_pid(request.pidfile, status.main_pid)
        binary = module.get_bin_path('vde_switch')
        link, holders = None, []
        if request.wanted:
            link = rtnl_snapshot.read_snapshot().get(request.tap)
            if link is not None and link['kind'] == 'tun':
                holders = tun_holders.read_holders([request.tap]).get(request.tap, [])
        return State(mode, mode_error, unit_text, status, pid, daemon_pid,
                     qemu.process_argv(pid) if pid else None, binary, link, holders)

    def plan(self, module, request, state):
        errors, warnings = [], []
        mode = state.mode or 'process'
        args = unit_after = None
        if request.wanted:
            if state.mode_error:
                errors.append(state.mode_error)
            if not state.binary:
                errors.append('vde_switch: not found; install the Debian package vde2')
            if request.group:
                try:
                    grp.getgrnam(request.group)
                except KeyError:
                    errors.append('group: unknown group %r on this host' % request.group)
            errors += tap_errors(request, state.tap, state.holders, state.pid)
            args = switch_service.argv(state.binary or 'vde_switch', request)
            if mode == 'systemd':
                unit_after = switch_service.render_unit(args, request)
        module_runner.refuse(errors)
        if mode == 'process' and state.unit_text is not None:
            # The unit runs (if at all) under PID 1's systemd, perhaps in another namespace:
            # the process mode leaves it alone.
            unit_after = state.unit_text
            warnings.append('%s of ours exists in %s; service=process leaves it alone (run with '
                            'service=systemd where PID 1 runs, state=absent, to remove it)'
                            % (switch_service.UNIT_NAME, request.unit_dir))
        running_argv = state.running_argv
        if (mode == 'systemd' and request.wanted and state.daemon_pid
                and state.daemon_pid != state.unit_status.main_pid):
            running_argv = None  # a daemonized one goes, the unit starts
        action = switch_service.decide_action(request.wanted, running_argv, args,
                                              unit_changed=state.unit_text != unit_after)
        return Plan(request, state, args, unit_after, action,
                    enable=mode == 'systemd' and request.wanted and not state.unit_status.enabled,
                    warnings=warnings, pid=state.pid)

    def apply(self, module, plan):
        request, state = plan.request, plan.state
        mode = state.mode or 'process'
        try:
            if not request.wanted:
                self._stop(module, plan)
            elif mode == 'systemd':
                self._apply_unit(module, plan)
            else:
                self._apply_process(plan)
        except (switch_service.SwitchError, guest_unit.SystemctlError, OSError) as exc:
            raise module_runner.ApplyFailed(str(exc), action=plan.action, service=mode)

    @staticmethod
    def _stop(module, plan):
        request, state = plan.request, plan.state
        if plan.unit_changed:
            systemctl = guest_unit.Systemctl(module)
            systemctl.run('disable', '--now', switch_service.UNIT_NAME)
            files.write_atomic(module, unit_path(request), None)
            systemctl.run('daemon-reload')
        old_socket = _switch_facts(state.running_argv)
        if state.daemon_pid:
            switch_service.stop_process(state.daemon_pid, request.pidfile)
        if old_socket:
            _remove_leftovers(old_socket['socket'])
        plan.pid = None

    @staticmethod
    def _apply_process(plan):
        request, state = plan.request, plan.state
        if plan.action in ('restarted', 'started') and state.pid:
            old = _switch_facts(state.running_argv)
            switch_service.stop_process(state.pid, request.pidfile)
            if old:
                _remove_leftovers(old['socket'])
        if plan.action in ('restarted', 'started'):
            plan.pid = switch_service.start_process(plan.argv, request.pidfile, _attached(request.tap))

    @staticmethod
    def _apply_unit(module, plan):
        request, state = plan.request, plan.state
        systemctl = guest_unit.Systemctl(module)
        unit = switch_service.UNIT_NAME
        if state.daemon_pid and state.daemon_pid != state.unit_status.main_pid:
            switch_service.stop_process(state.daemon_pid, request.pidfile)
        if plan.unit_changed:
            files.write_atomic(module, unit_path(request), plan.unit_after)
        if plan.unit_changed or state.unit_status.needs_reload or not state.unit_status.loaded:
            systemctl.run('daemon-reload')
        if plan.enable:
            systemctl.run('enable', unit)
        verb = {'started': 'start', 'restarted': 'restart'}.get(plan.action)
        if verb:
            systemctl.run(verb, unit)
        plan.pid = systemctl.status(unit).main_pid

    def result(self, module, request, plan, applied):
        mode = plan.state.mode or 'process'
        for warning in plan.warnings:
            module.warn(warning)
        pid = plan.pid if applied else plan.state.pid
        if applied and plan.action == 'stopped':
            pid = None
        result = {
            'changed': plan.changed,
            'action': plan.action,
            'pid': pid,
            'socket': request.socket if request.wanted else None,
            'management_socket': request.mgmt_socket if request.wanted else None,
            'service': mode,
            'argv': plan.argv or [],
        }
        if module._diff:
            before = _switch_facts(plan.state.running_argv)
            after = None
            if request.wanted:
                after = {'tap': request.tap, 'socket': request.socket, 'group': request.group,
                         'mode': request.mode}
            diffs = [{'before_header': 'vde_switch', 'after_header': 'vde_switch',
                      'before': {'switch': before}, 'after': {'switch': after}}]
            if plan.unit_changed:
                diffs.append(files.text_diff(unit_path(request), plan.state.unit_text, plan.unit_after))
            result['diff'] = diffs
        return result


def _attached(tap):
    """A check that the tap has carrier (the switch holds it open)."""
    def check():
        link = rtnl_snapshot.read_snapshot().get(tap)
        return bool(link and link.get('carrier'))
    return check


def _remove_leftovers(socket_dir):
    """The socket directory of a switch that is gone: vde_switch removes it on SIGTERM, not
    when it was killed. Only its sockets and the empty folder go."""
    if not socket_dir or not os.path.isdir(socket_dir):
        return
    for name in os.listdir(socket_dir):
        path = os.path.join(socket_dir, name)
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)
        except OSError:
            pass
    try:
        os.rmdir(socket_dir)
    except OSError:
        pass
