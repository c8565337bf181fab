# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The steps of the uplink_stanza module (module_runner.ModuleSteps): read the interfaces file
and the files it sources, plan the take or the restore (ifupdown_stanzas), write atomically.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import typing

from ansible_collections.tuntap.qemu.plugins.module_utils import files, module_runner, names
from ansible_collections.tuntap.qemu.plugins.module_utils import ifupdown_stanzas

# Sourced files that source further files: how deep we follow them (ifupdown has no limit,
# a loop is cut by the visited set; this bounds a pathological tree).
MAX_SOURCE_DEPTH = 8


@dataclasses.dataclass(frozen=True)
class Request:
    uplink: str
    bridge: typing.Optional[str]
    state: str
    path: str
    managed_file: str
    backup: bool


@dataclasses.dataclass(frozen=True)
class FileState:
    """The interfaces file (None: absent) and the texts of the files it sources, by path."""

    text: typing.Optional[str]
    sourced: typing.Dict[str, typing.Optional[str]]


@dataclasses.dataclass
class Plan:
    before: typing.Optional[str]
    after: typing.Optional[str]
    carry: ifupdown_stanzas.Carry
    first_take: bool
    backup_file: typing.Optional[str] = None

    @property
    def changed(self):
        return self.before != self.after


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def read_sourced(path, text, skip=()):
    """The texts of every file that `text` (the file `path`) sources, recursively, by path;
    paths in `skip` are not read (nor followed)."""
    seen = {os.path.normpath(path)} | {os.path.normpath(other) for other in skip}
    found = {}
    pending = [(path, text, 0)]
    while pending:
        current, current_text, depth = pending.pop(0)
        if current_text is None or depth >= MAX_SOURCE_DEPTH:
            continue
        for sourced in ifupdown_stanzas.sourced_paths(current_text, os.path.dirname(path) or '.',
                                                      glob.glob, _listdir):
            normal = os.path.normpath(sourced)
            if normal in seen or not os.path.isfile(sourced):
                continue
            seen.add(normal)
            found[sourced] = files.read_text(sourced)
            pending.append((sourced, found[sourced], depth + 1))
    return found


class UplinkStanzaSteps(module_runner.ModuleSteps):
    """uplink_stanza for module_runner."""

    def parse(self, module):
        params = module.params
        errors = [error for error in (names.ifname_error('uplink', params['uplink']),
                                      params['bridge'] and names.ifname_error('bridge', params['bridge']))
                  if error]
        module_runner.refuse(errors)
        return Request(params['uplink'], params['bridge'], params['state'], params['path'],
                       params['managed_file'], params['backup'])

    def read(self, module, request):
        text = files.read_text(request.path)
        sourced = {}
        if request.state == 'taken' and text is not None:
            sourced = read_sourced(request.path, text, skip=(request.managed_file,))
        return FileState(text, sourced)

    def plan(self, module, request, state):
        if state.text is None:
            return Plan(None, None, ifupdown_stanzas.Carry(request.uplink), False)
        try:
            if request.state == 'restored':
                result = ifupdown_stanzas.restore(state.text, request.uplink)
            else:
                result = ifupdown_stanzas.take(state.text, request.uplink, request.bridge,
                                               request.managed_file)
        except ifupdown_stanzas.StanzaError as exc:
            raise module_runner.Refused(['%s: %s' % (request.path, exc)])
        if request.state == 'taken':
            elsewhere = ifupdown_stanzas.find_elsewhere(state.sourced, request.uplink)
            module_runner.refuse(
                ['%s is configured in %s too (sourced by %s), whose lines are the only ones moved: '
                 'move them into %s or remove them, then run again'
                 % (request.uplink, other, request.path, request.path) for other in elsewhere],
                carry=result.carry.to_dict())
        first_take = (request.state == 'taken' and result.changed
                      and ifupdown_stanzas.restore(state.text, request.uplink).text == state.text)
        return Plan(state.text, result.text, result.carry, first_take)

    def apply(self, module, plan):
        request = module.params
        plan.backup_file = files.write_atomic(module, request['path'], plan.after,
                                              backup=request['backup'] and plan.first_take)

    def result(self, module, request, plan, applied):
        result = {'changed': plan.changed, 'carry': plan.carry.to_dict(),
                  'msg': _message(request, plan)}
        if plan.backup_file:
            result['backup_file'] = plan.backup_file
        for warning in plan.carry.warnings:
            module.warn(warning)
        if module._diff:
            result['diff'] = files.text_diff(request.path, plan.before, plan.after)
        return result


def _message(request, plan):
    if plan.before is None:
        return '%s does not exist: nothing to %s' % (
            request.path, 'move' if request.state == 'taken' else 'restore')
    if request.state == 'taken':
        if plan.carry.method is None and not plan.changed and not plan.carry.allow:
            return '%s has no lines for %s: nothing to move' % (request.path, request.uplink)
        if plan.changed:
            return 'the lines of %s in %s moved into a marked block' % (request.uplink, request.path)
        return 'the lines of %s in %s are in their marked block already' % (request.uplink, request.path)
    if plan.changed:
        return 'the lines of %s in %s restored' % (request.uplink, request.path)
    return '%s has no marked block of %s: nothing to restore' % (request.path, request.uplink)
