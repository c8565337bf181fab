# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The qemu_guest module's steps for module_runner: parse (the guest's argv) -> read (its
process and unit) -> plan (the action, the unit's steps, the taps checked) -> apply.

A guest runs daemonized, or with autostart as a systemd unit (guest_unit.py) where systemd is
the init system; switching between the two stops the old QEMU before the new one starts.

PruneSteps (prune=true) removes every guest of ours that `keep` does not name (guest_prune.py
finds them), each through GuestSteps' own state=absent path, with one daemon-reload."""

from __future__ import annotations

import dataclasses
import glob
import grp
import os
import pwd
import shutil
import time

from ansible_collections.tuntap.qemu.plugins.module_utils import files, module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils._guest import guest_plan, guest_prune, guest_unit, qemu
from ansible_collections.tuntap.qemu.plugins.module_utils._links import netlink, reading


def _resolve_binary(module, guest, errors):
    binary = guest['binary']
    found = binary if os.path.isabs(binary) and os.access(binary, os.X_OK) else module.get_bin_path(binary)
    if not found:
        errors.append('binary: %s not found (Debian package qemu-system-x86)' % binary)
        return
    guest['binary'] = found


def _wait_for_qmp(paths, timeout=10.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            return qemu.query_status(paths)
        except qemu.QemuError as exc:
            last = exc
            time.sleep(0.1)
    raise qemu.QemuError('the guest started but its QMP socket does not answer: %s' % last)


def _read_carriers(ipr, snapshot, guest):
    """Add each of the guest's taps' current carrier to its snapshot record.

    The carrier tells whether a process holds the tap open. IFLA_OPERSTATE follows it only
    through the kernel's linkwatch, up to a second later, so a tap that tap_device (or a guest
    stopped a moment ago) has just let go would still look held by its operstate.
    """
    for nic in guest['nics']:
        if not nic['tap']:
            continue  # a VDE NIC
        link = snapshot.get(nic['tap'])
        if link is None:
            continue
        try:
            messages = ipr.get_links(link['ifindex'])
        except netlink.errors():
            continue  # gone since the dump: tap_errors() still sees it, nothing is started
        if messages:
            carrier = messages[0].get_attr('IFLA_CARRIER')
            if carrier is not None:
                link['carrier'] = bool(carrier)


def _account(run_as):
    """(user, group) names for the unit's User=/Group=, or None for root."""
    if run_as is None:
        return None
    uid, gid = run_as[0], run_as[1]
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    return user, group


def _other_units(name):
    """Unit files of our other guests (the helper script stays while any is left)."""
    pattern = os.path.join(guest_unit.UNIT_DIR, '%s*.service' % guest_unit.UNIT_PREFIX)
    own = guest_unit.unit_path(name)
    return [path for path in glob.glob(pattern) if path != own]


def _observe_unit(module, name, booted):
    """The guest's unit as it is ({'path', 'before', 'status', 'systemctl'}), None without systemd.

    Without systemd as PID 1 nothing under /etc/systemd is read or written: in the namespace
    lab that folder is the machine's own.
    """
    if not booted:
        return None
    systemctl = guest_unit.Systemctl(module)
    path = guest_unit.unit_path(name)
    try:
        status = systemctl.status(guest_unit.unit_name(name))
    except guest_unit.SystemctlError as exc:
        raise module_runner.Refused([str(exc)])
    return {'path': path, 'name': guest_unit.unit_name(name), 'before': files.read_text(path),
            'status': status, 'systemctl': systemctl}


class GuestSteps(module_runner.ModuleSteps):
    """qemu_guest: parse the request, observe the guest (process, unit), plan the action and
    the unit's steps, apply them unless check mode."""

    libraries = (module_runner.NETADDR, module_runner.PYROUTE2)

    def __init__(self, batch=False):
        # batch: one guest of several that one call removes (PruneSteps): the helper script and
        # the daemon-reload are the batch's, once for all of them.
        self.batch = batch

    def parse(self, module):
        params = module.params
        guest, errors = guest_plan.guest_spec(params)
        paths = guest_plan.runtime_paths(params)
        run_as, error = guest_plan.resolve_run_as('run_as', params['run_as'])
        if error:
            errors.append(error)
        if params['stop_timeout'] < 0:
            errors.append('stop_timeout: %r must not be negative' % params['stop_timeout'])
        if params['state'] == 'running' or (params['autostart'] and params['state'] == 'stopped'):
            # A stopped guest with autostart keeps a unit, whose ExecStart needs the full path.
            _resolve_binary(module, guest, errors)
        # Units only where PID 1 is systemd and runs in this network namespace; elsewhere nothing
        # under /etc/systemd is read or written (in the lab that folder is the machine's own).
        systemd, same_netns = guest_unit.systemd_booted(), guest_unit.same_netns_as_init()
        booted = systemd and same_netns is True
        mode, warning = guest_unit.service_mode(params['autostart'], systemd, same_netns, guest['name'])
        module_runner.refuse(errors)
        if warning:
            module.warn(warning)
        try:
            accel, reason = qemu.choose_accel(params['accel'])
        except qemu.QemuError as exc:
            raise module_runner.Refused([str(exc)])
        return {'params': params, 'guest': guest, 'paths': paths, 'run_as': run_as, 'mode': mode,
                'booted': booted, 'accel': accel, 'reason': reason,
                'argv': qemu.build_argv(guest, accel, paths, daemonize=mode == 'daemon')}

    def read(self, module, request):
        name = request['guest']['name']
        return {'observed': qemu.observe(request['paths'], name),
                'unit': _observe_unit(module, name, request['booted'])}

    def plan(self, module, request, state):
        params, guest, paths, argv = request['params'], request['guest'], request['paths'], request['argv']
        mode, run_as = request['mode'], request['run_as']
        observed, unit = state['observed'], state['unit']
        wanted = mode == 'systemd' and params['state'] != 'absent'

        before = unit['before'] if unit else None
        after = helper_before = helper_after = None
        if wanted:
            if before is not None and not guest_unit.is_ours(before):
                raise module_runner.Refused([
                    'autostart: %s exists and is not managed by tuntap.qemu (no "%s" header); '
                    'remove it or rename the guest' % (unit['path'], guest_unit.MARK)])
            python = guest_unit.helper_python()
            after = guest_unit.render_unit(guest['name'], argv, paths,
                                           [nic['tap'] for nic in guest['nics'] if nic['tap']],
                                           _account(run_as), params['stop_timeout'], python,
                                           vde=any(nic['vde'] for nic in guest['nics']))
            helper_before = files.read_text(guest_unit.HELPER_PATH)
            helper_after = guest_unit.render_helper(python)
        steps = None
        if unit is not None:
            steps = guest_unit.plan_unit(params['state'], wanted, before, after, unit['status'], observed,
                                         argv, params['restart_on_change'])
        if wanted:
            action = steps.action
        else:
            # The daemonized mode decides; a QEMU that the unit's stop takes along counts as stopped.
            daemon_observed = observed
            if steps is not None and steps.stop and observed['pid'] == unit['status'].main_pid:
                daemon_observed = dict(observed, state='stopped', pid=None)
            action = guest_plan.plan_action(params['state'], daemon_observed, argv, params['restart_on_change'])
            if daemon_observed is not observed and observed['state'] != 'stopped':
                action = {'start': 'restart', None: 'stop'}.get(action, action)
        remove_helper = (not self.batch and steps is not None and steps.remove and not _other_units(guest['name'])
                         and guest_unit.is_ours(files.read_text(guest_unit.HELPER_PATH)))
        write_helper = wanted and helper_before != helper_after

        if action in ('start', 'restart'):
            ipr = netlink.open_netlink()
            try:
                snapshot = reading.read_snapshot()
                _read_carriers(ipr, snapshot, guest)
            finally:
                ipr.close()
            own_pid = observed['pid'] if action == 'restart' else None
            module_runner.refuse(guest_plan.tap_errors(snapshot, guest, run_as, own_pid)
                                 + guest_plan.vde_errors(guest))
        if action == 'remove' and observed['state'] == 'stopped' and not os.path.isdir(paths['runtime_dir']):
            action = None
        unit_changes = steps is not None and guest_unit.unit_changed(steps)

        result = {
            'changed': action is not None or unit_changes or write_helper or remove_helper,
            'action': action,
            'mode': mode,
            'argv': argv,
            'cmdline': qemu.command_line(argv),
            'accel': {'name': request['accel'], 'reason': request['reason']},
            'macs': [nic['mac'] for nic in guest['nics']],
            'qmp_socket': paths['qmp_socket'],
            'serial_log': paths['serial_log'],
            'pidfile': paths['pidfile'],
            'pid': observed['pid'],
            'state': 'running' if observed['state'] != 'stopped' else 'stopped',
            'unit': ({'name': unit['name'], 'path': unit['path'], 'enabled': True,
                      'active': params['state'] == 'running'} if wanted else None),
        }
        if module._diff:
            after_state = {'start': 'running', 'restart': 'running', 'stop': 'stopped',
                           'remove': 'absent'}.get(action, result['state'])
            # Under a unit there is no recorded argv.json: the running process's command line is.
            before_argv = observed['cmdline'] if wanted and observed['cmdline'] else observed['argv']
            state_diff = {
                'before': {'state': observed['state'], 'argv': before_argv},
                'after': {'state': after_state, 'argv': argv if after_state == 'running' else before_argv},
            }
            if unit is not None:
                state_diff['before']['unit'] = {'enabled': unit['status'].enabled, 'active': unit['status'].active}
                state_diff['after']['unit'] = ({'enabled': True, 'active': after_state == 'running'}
                                               if wanted else {'enabled': False, 'active': False})
            file_diffs = []
            if unit is not None and before != after and (wanted or steps.remove):
                file_diffs.append(files.text_diff(unit['path'], before, after))
            if write_helper or remove_helper:
                file_diffs.append(files.text_diff(guest_unit.HELPER_PATH, helper_before if wanted else
                                                  files.read_text(guest_unit.HELPER_PATH), helper_after))
            result['diff'] = [state_diff] + file_diffs if file_diffs else state_diff
        return GuestPlan(result, request, unit, steps, wanted, after, helper_after,
                         write_helper, remove_helper)

    def apply(self, module, plan):
        request, result, unit, steps = plan.request, plan.result, plan.unit, plan.steps
        params, paths, name = request['params'], request['paths'], request['guest']['name']
        try:
            if plan.wanted:
                _apply_unit(module, unit, steps, paths, name, params, plan.after, plan.helper_after,
                            plan.write_helper, result)
            else:
                if steps is not None:
                    _remove_unit(module, unit, steps._replace(reload=steps.reload and not self.batch),
                                 plan.remove_helper)
                _apply_daemon(result['action'], paths, name, params, request['argv'], request['run_as'],
                              result)
        except (qemu.QemuError, guest_unit.SystemctlError) as exc:
            # No half-started guest: whatever got started for this name goes again.
            if plan.wanted and (steps.start or steps.restart):
                try:
                    unit['systemctl'].run('stop', unit['name'])
                except guest_unit.SystemctlError:
                    pass
            qemu.stop(paths, name, timeout=0)
            hint = ' (journalctl -u %s)' % unit['name'] if plan.wanted else ''
            raise module_runner.ApplyFailed(str(exc) + hint, argv=request['argv'], cmdline=result['cmdline'],
                                            serial_log=paths['serial_log'])

    def result(self, module, request, plan, applied):
        result = plan.result
        if not applied and result['action'] is not None:
            result['state'] = {'stop': 'stopped', 'remove': 'absent'}.get(result['action'], 'running')
        return result


class GuestPlan:
    """What GuestSteps.plan() decided: the module result so far and what apply() needs."""

    def __init__(self, result, request, unit, steps, wanted, after, helper_after,
                 write_helper, remove_helper):
        self.result = result
        self.request = request
        self.unit = unit
        self.steps = steps
        self.wanted = wanted
        self.after = after
        self.helper_after = helper_after
        self.write_helper = write_helper
        self.remove_helper = remove_helper

    @property
    def changed(self):
        return self.result['changed']


def steps_for(params):
    """The module's steps: PruneSteps for prune=true, else GuestSteps for one guest."""
    return PruneSteps() if params.get('prune') else GuestSteps()


def converge(module):
    """Converge one guest (or prune) through module_runner; returns the module result."""
    return module_runner.converge(module, steps_for(module.params))


# ---------------------------------------------------------------- prune

class GuestModule:
    """The module as GuestSteps sees it for one guest of a prune: that guest's parameters,
    everything else (check mode, diff, run_command, warn) the real module's."""

    def __init__(self, module, params):
        self._module = module
        self.params = params

    def __getattr__(self, attribute):
        return getattr(self._module, attribute)


def absent_params(params, guest):
    """qemu_guest's parameters for `guest` (guest_prune.FoundGuest) with state=absent."""
    return dict(params, name=guest.name, state='absent', runtime_dir=guest.runtime_dir,
                autostart=False, nics=[], accel='tcg', kernel=None, initrd=None, append=None,
                disk=None, disk_format=None, extra_args=[], prune=False, keep=[])


@dataclasses.dataclass
class PruneMember:
    """One guest that a prune removes, with GuestSteps' request, state and plan for it."""

    guest: guest_prune.FoundGuest
    module: GuestModule
    steps: GuestSteps
    request: dict
    state: dict
    plan: GuestPlan | None = None


@dataclasses.dataclass(frozen=True)
class PruneRequest:
    runtime_root: str
    keep: tuple
    booted: bool


@dataclasses.dataclass(frozen=True)
class PruneState:
    prune: guest_prune.PrunePlan
    members: tuple
    units: dict
    found: tuple


@dataclasses.dataclass(frozen=True)
class PruneResult:
    """What PruneSteps.plan() decided: the module result so far and what apply() needs."""

    result: dict
    members: tuple
    remove_helper: bool
    reload: bool

    @property
    def changed(self):
        return self.result['changed']


def _guest_errors(name, exc):
    return ['guest %s: %s' % (name, error) for error in exc.errors]


class PruneSteps(module_runner.ModuleSteps):
    """qemu_guest prune=true: find our guests (runtime directories under runtime_root, unit
    files), plan each one not in `keep` through GuestSteps(batch=True) as state=absent, then
    apply them in turn (graceful stop, unit stopped/disabled/removed, runtime directory
    removed), one daemon-reload, and the units' helper script when no unit of ours is left."""

    libraries = GuestSteps.libraries

    def parse(self, module):
        params = module.params
        errors = []
        if params['name'] is not None:
            errors.append('name: %r is not for prune=true, which looks at every guest of ours; '
                          'list the guests to keep in keep' % params['name'])
        for option in ('runtime_dir', 'nics'):
            if params[option]:
                errors.append('%s: not with prune=true (the guests are found under runtime_root)' % option)
        for index, name in enumerate(params['keep']):
            if not guest_prune.is_guest_name(name):
                errors.append('keep[%d]: %r is not a guest name (1-63 letters, digits, ., _ and -, '
                              'starting with a letter or digit)' % (index, name))
        if params['stop_timeout'] < 0:
            errors.append('stop_timeout: %r must not be negative' % params['stop_timeout'])
        module_runner.refuse(errors)
        # Unit files only where PID 1 is systemd in this network namespace (see GuestSteps).
        booted = guest_unit.systemd_booted() and guest_unit.same_netns_as_init() is True
        return PruneRequest(params['runtime_root'] or qemu.RUNTIME_ROOT, tuple(params['keep']), booted)

    def read(self, module, request):
        units = guest_prune.find_units(guest_unit.UNIT_DIR) if request.booted else {}
        found = guest_prune.found_guests(guest_prune.find_runtime_dirs(request.runtime_root), units,
                                         request.runtime_root)
        holders = [holder for holder in (guest_prune.foreign_holder(guest) for guest in found
                                         if guest.name not in request.keep) if holder]
        prune = guest_prune.plan_prune(found, request.keep, holders)
        members, errors = [], []
        for guest in prune.remove:
            member_module = GuestModule(module, absent_params(module.params, guest))
            steps = GuestSteps(batch=True)
            try:
                member_request = steps.parse(member_module)
                members.append(PruneMember(guest, member_module, steps, member_request,
                                           steps.read(member_module, member_request)))
            except module_runner.Refused as exc:
                errors.extend(_guest_errors(guest.name, exc))
        module_runner.refuse(errors)
        return PruneState(prune, tuple(members), units, tuple(found))

    def plan(self, module, request, state):
        errors = []
        for member in state.members:
            try:
                member.plan = member.steps.plan(member.module, member.request, member.state)
            except module_runner.Refused as exc:
                errors.extend(_guest_errors(member.guest.name, exc))
        module_runner.refuse(errors)
        unit_removals = [member for member in state.members
                         if member.plan.steps is not None and member.plan.steps.remove]
        removed_units = {member.guest.name for member in unit_removals}
        helper_before = files.read_text(guest_unit.HELPER_PATH) if request.booted else None
        remove_helper = (request.booted and not set(state.units) - removed_units
                         and guest_unit.is_ours(helper_before))
        reload = any(member.plan.steps.reload for member in unit_removals)
        changed = any(member.plan.changed for member in state.members) or remove_helper
        result = {
            'changed': changed,
            'runtime_root': request.runtime_root,
            'removed': [_removed_entry(member) for member in state.members if member.plan.changed],
            'kept': list(state.prune.kept),
            'skipped': [{'name': holder.name, 'runtime_dir': holder.runtime_dir, 'pid': holder.pid,
                         'reason': holder.reason} for holder in state.prune.skipped],
        }
        if module._diff:
            names = [guest.name for guest in state.found]
            gone = {entry['name'] for entry in result['removed']}
            diff = [{'before_header': 'guests of tuntap.qemu (%s, unit files)' % request.runtime_root,
                     'after_header': 'guests of tuntap.qemu (%s, unit files)' % request.runtime_root,
                     'before': {'guests': names},
                     'after': {'guests': [name for name in names if name not in gone]}}]
            for member in state.members:
                if member.plan.changed:
                    diff.extend(_member_diff(member))
            if remove_helper:
                diff.append(files.text_diff(guest_unit.HELPER_PATH, helper_before, None))
            result['diff'] = diff
        return PruneResult(result, state.members, remove_helper, reload)

    def apply(self, module, plan):
        done = []
        try:
            for member in plan.members:
                if member.plan.changed:
                    member.steps.apply(member.module, member.plan)
                    done.append(member.guest.name)
        except module_runner.ApplyFailed as exc:
            left = [member.guest.name for member in plan.members
                    if member.plan.changed and member.guest.name not in done]
            self._finish(module, plan, remove_helper=False)
            raise module_runner.ApplyFailed('prune: guest %s: %s' % (left[0], exc), removed=done,
                                            not_removed=left, **exc.extra)
        self._finish(module, plan, plan.remove_helper)

    @staticmethod
    def _finish(module, plan, remove_helper):
        """The batch's own steps after its guests: the helper script, then one daemon-reload."""
        if remove_helper:
            files.write_atomic(module, guest_unit.HELPER_PATH, None)
            try:
                os.rmdir(os.path.dirname(guest_unit.HELPER_PATH))
            except OSError:
                pass  # not empty: something else of the admin's is there
        if plan.reload:
            try:
                guest_unit.Systemctl(module).run('daemon-reload')
            except guest_unit.SystemctlError as exc:
                raise module_runner.ApplyFailed(str(exc))

    def result(self, module, request, plan, applied):
        result = plan.result
        for entry, member in zip(result['removed'], [m for m in plan.members if m.plan.changed]):
            if applied:
                by_unit = member.plan.steps is not None and member.plan.steps.stop
                entry['stopped_by'] = 'systemctl stop' if by_unit else member.plan.result.get('stopped_by')
        for holder in result['skipped']:
            module.warn('prune: guest %s: %s' % (holder['name'], holder['reason']))
        return result


def _removed_entry(member):
    """The `removed` entry of one guest, as it is before the prune."""
    unit = member.state['unit']
    return {'name': member.guest.name, 'runtime_dir': member.guest.runtime_dir,
            'pid': member.state['observed']['pid'],
            'state': member.state['observed']['state'],
            'unit': unit['name'] if unit is not None and member.plan.steps.remove else None,
            'stopped_by': None}


def _member_diff(member):
    """GuestSteps' diff of one removed guest, its state entry headed with the guest's name."""
    diff = member.plan.result.get('diff')
    entries = list(diff) if isinstance(diff, list) else [diff]
    header = 'guest %s (%s)' % (member.guest.name, member.guest.runtime_dir)
    entries[0] = dict(entries[0], before_header=header, after_header='%s (absent)' % header)
    return entries


def _apply_daemon(action, paths, name, params, argv, run_as, result):
    """Today's daemonized mode: stop, remove, start QEMU with -daemonize."""
    if action in ('stop', 'restart', 'remove'):
        result['stopped_by'] = qemu.stop(paths, name, params['stop_timeout'])
        result['pid'] = None
        result['state'] = 'stopped'
    if action == 'remove':
        shutil.rmtree(paths['runtime_dir'], ignore_errors=True)
        result['state'] = 'absent'
    if action in ('start', 'restart'):
        qemu.prepare_runtime_dir(paths, *(run_as[:2] if run_as else (None, None)))
        result['pid'] = qemu.start(argv, paths, run_as)
        status = _wait_for_qmp(paths)
        result['state'] = 'running'
        result['status'] = status.get('status')


def _remove_unit(module, unit, steps, remove_helper):
    """Stop, disable and remove the guest's unit (autostart=false or state=absent)."""
    systemctl = unit['systemctl']
    if steps.stop:
        systemctl.run('stop', unit['name'])
    if steps.disable:
        systemctl.run('disable', unit['name'])
    if steps.remove:
        files.write_atomic(module, unit['path'], None)
    if remove_helper:
        remove_unit_helper(module)
    if steps.reload:
        systemctl.run('daemon-reload')


def _apply_unit(module, unit, steps, paths, name, params, after, helper_after, write_helper, result):
    """The guest as a systemd unit: a daemonized QEMU of it goes first, then the files,
    daemon-reload only when they changed, enable, and start, restart or stop."""
    systemctl = unit['systemctl']
    if steps.stop_daemon:
        result['stopped_by'] = qemu.stop(paths, name, params['stop_timeout'])
    if write_helper:
        files.write_atomic(module, guest_unit.HELPER_PATH, helper_after, mode=0o755)
    if steps.write:
        files.write_atomic(module, unit['path'], after)
    if steps.reload:
        systemctl.run('daemon-reload')
    if steps.enable:
        systemctl.run('enable', unit['name'])
    if steps.stop:
        systemctl.run('stop', unit['name'])
        result['pid'] = None
        result['state'] = 'stopped'
    elif steps.stop_daemon:
        result['pid'] = None
        result['state'] = 'stopped'
    if steps.start or steps.restart:
        # The daemonized mode's record: under the unit the process's command line is the unit's,
        # and a stale argv.json would make it look like a QEMU that is not ours (qemu.process_is_ours).
        try:
            os.unlink(paths['argv_file'])
        except FileNotFoundError:
            pass
        systemctl.run('restart' if steps.restart else 'start', unit['name'])
        # Type=exec: systemctl returns once QEMU is exec'd, before its QMP socket listens.
        status = _wait_for_qmp(paths, timeout=30.0)
        result['pid'] = qemu.running_pid(paths, name)
        result['state'] = 'running'
        result['status'] = status.get('status')


def remove_unit_helper(module):
    """The units' helper script goes (with the last unit), and its folder when empty."""
    files.write_atomic(module, guest_unit.HELPER_PATH, None)
    try:
        os.rmdir(os.path.dirname(guest_unit.HELPER_PATH))
    except OSError:
        pass  # not empty: something else of the admin's is there
