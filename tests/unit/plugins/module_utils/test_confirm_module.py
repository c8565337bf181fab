# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The steps of confirmed_change (_confirm/change_module.py): what is pending, what is refused,
confirm and status over a rollback folder - with a fake module, no kernel, no timer."""

from __future__ import annotations

import json
import sys

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils import module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils._confirm import (
    arming, change_module, rollback_helper, snapshot)
from ansible_collections.tuntap.qemu.plugins.module_utils._confirm.snapshot import Link, Snapshot

MARK = 'tuntap.qemu:bridge uplink=eth0'


class Failed(Exception):
    pass


class FakeModule:
    def __init__(self, check_mode=False, **params):
        self.params = dict(state='armed', uplink='eth0', bridge='br0', takeover=True, timeout=60,
                           files=[], id=None, runtime_dir='/run/tuntap-qemu-rollback')
        self.params.update(params)
        self.check_mode = check_mode
        self._diff = True
        self._name = 'tuntap.qemu.confirmed_change'

    def fail_json(self, **result):
        raise Failed(result)


def link(name, master=None, alias=None):
    return {'name': name, 'master': master, 'alias': alias, 'addresses': [], 'mac': None}


LINKS_FREE = {'eth0': link('eth0'), 'br0': link('br0', alias='tuntap.qemu:bridge')}
LINKS_TAKEN = {'eth0': link('eth0', 'brlan'), 'brlan': link('brlan', alias=MARK)}
LINKS_ADMIN = {'eth0': link('eth0', 'admin0'), 'admin0': link('admin0')}


@pytest.mark.parametrize('takeover, links, pending, bridge', [
    (True, LINKS_FREE, True, 'br0'),
    (True, {'eth0': link('eth0', 'br0'), 'br0': link('br0', alias=MARK)}, False, 'br0'),
    (True, LINKS_TAKEN, True, 'br0'),        # in another bridge: the takeover moves it
    (False, LINKS_FREE, False, 'br0'),
    (False, LINKS_TAKEN, True, 'brlan'),     # found by its mark, whatever its name
    (False, LINKS_ADMIN, False, 'br0'),      # an admin's bridge is not ours to release
], ids=['takeover pending', 'takeover done', 'in another bridge', 'release done',
        'release pending', "admin's bridge"])
def test_pending(tmp_path, monkeypatch, takeover, links, pending, bridge):
    read = []
    monkeypatch.setattr(snapshot, 'read', lambda uplink, name, files: read.append(name) or Snapshot(
        0.0, Link('eth0', True, master=links['eth0']['master']), Link(name, name in links)))
    steps = change_module.ConfirmedChangeSteps('armed')
    plan = steps.plan(None, FakeModule(takeover=takeover, runtime_dir=str(tmp_path)).params, links)
    assert plan.changed is pending
    assert plan.bridge == bridge
    assert read == ([bridge] if pending else [])  # the full snapshot only for a pending change


def test_missing_uplink_is_refused():
    with pytest.raises(module_runner.Refused, match="uplink: 'eth0' does not exist"):
        change_module.ConfirmedChangeSteps('armed').plan(None, FakeModule().params, {})


@pytest.mark.parametrize('params, error', [
    (dict(timeout=4), 'timeout: 4 s is shorter than the minimum of 5 s'),
    (dict(files=['relative']), "files[0]: 'relative' is not an absolute path"),
    (dict(files=['/a', '/a']), 'files: a path is listed twice'),
    (dict(runtime_dir='run'), "runtime_dir: 'run' is not an absolute path"),
    (dict(state='confirmed', id='../x'), "id: '../x' is not a change id"),
    (dict(state='status', id=''), "id: '' is not a change id"),
])
def test_parse_refuses(params, error):
    module = FakeModule(**params)
    with pytest.raises(module_runner.Refused) as refused:
        change_module.ConfirmedChangeSteps(module.params['state']).parse(module)
    assert error in str(refused.value)


def test_check_mode_result_arms_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshot, 'read', lambda uplink, name, files: Snapshot(
        0.0, Link('eth0', True, addresses=[snapshot.Address('10.0.0.2/24')]), Link('br0')))
    monkeypatch.setattr(arming, 'arm', lambda *args, **kwargs: pytest.fail('armed in check mode'))
    module = FakeModule(check_mode=True, timeout=7, runtime_dir=str(tmp_path))
    steps = change_module.ConfirmedChangeSteps('armed')
    plan = steps.plan(module, module.params, {'eth0': link('eth0')})
    result = steps.result(module, module.params, plan, False)
    assert result['changed'] and not result['armed'] and result['id'] is None
    assert result['rollback'][1] == '2. eth0 gets 10.0.0.2/24'
    assert result['diff']['after']['rollback'] == 'rolls back to this unless confirmed within 7 s'


def folder_of(tmp_path, change_id='c1'):
    before = Snapshot(0.0, Link('eth0', True), Link('br0'))
    arming.write_folder(str(tmp_path / change_id), change_id, before, [], 5, sys.executable,
                        arming.PROCESS, None, 1000.0)
    return tmp_path / change_id


# After the takeover the folders of folder_of() arm: eth0 is a port of br0.
LINKS_AFTER = {'eth0': link('eth0', 'br0'), 'br0': link('br0', alias=MARK)}


def converge(tmp_path, state, check_mode=False, change_id='c1', links=None):
    module = FakeModule(check_mode=check_mode, state=state, id=change_id,
                        runtime_dir=str(tmp_path))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(change_module.reading, 'read_snapshot', lambda: LINKS_AFTER if links is None else links)
        return module_runner.converge(module, change_module.ConfirmedChangeSteps(state))


def test_a_change_that_did_not_happen_is_not_confirmed(tmp_path):
    """The module that makes the change was cut off before it moved eth0: confirming would
    keep a half-made change, so the confirm is refused and the rollback stays armed."""
    folder = folder_of(tmp_path)
    with pytest.raises(Failed) as failed:
        converge(tmp_path, 'confirmed', links={'eth0': link('eth0'), 'br0': link('br0', alias=MARK)})
    assert failed.value.args[0]['msg'] == (
        'change c1: eth0 is not a port of br0, as when the change was armed: the change did not '
        'happen; not confirmed - the host rolls it back at its deadline')
    assert not (folder / rollback_helper.DECISION).exists()
    assert converge(tmp_path, 'confirmed')['changed']


def test_confirm_then_again(tmp_path):
    folder = folder_of(tmp_path)
    assert converge(tmp_path, 'confirmed', check_mode=True)['changed']
    assert not (folder / rollback_helper.DECISION).exists()  # check mode decides nothing
    assert converge(tmp_path, 'confirmed')['changed']
    assert (folder / rollback_helper.DECISION).read_text() == 'confirmed\n'
    assert not converge(tmp_path, 'confirmed')['changed']
    status = converge(tmp_path, 'status')
    assert status['confirmed'] and not status['rolled_back'] and not status['changed']


def test_confirm_after_the_rollback_fails_with_its_report(tmp_path):
    folder = folder_of(tmp_path)
    (folder / rollback_helper.DECISION).write_text('rollback\n')
    (folder / rollback_helper.REPORT).write_text(json.dumps({
        'when': '2026-12-01T15:00:05Z', 'reason': 'not confirmed within 5 s', 'ok': True,
        'steps': [{'text': 'eth0 leaves br0', 'result': 'ok', 'detail': '', 'kind': 'ip'}]}))
    with pytest.raises(Failed) as failed:
        converge(tmp_path, 'confirmed')
    result = failed.value.args[0]
    assert result['msg'] == ('change c1 was not confirmed in time and was rolled back at '
                             '2026-12-01T15:00:05Z, not confirmed within 5 s; steps: '
                             '1. eth0 leaves br0 (ok)')
    assert result['rolled_back'] and result['report']['ok']
    status = converge(tmp_path, 'status')  # never fails for a rolled-back change
    assert status['rolled_back'] and status['report']['reason'] == 'not confirmed within 5 s'


def test_unknown_change(tmp_path):
    for state in ('confirmed', 'status'):
        with pytest.raises(Failed) as failed:
            converge(tmp_path, state, change_id='nope')
        assert "change 'nope': unknown, no rollback folder" in failed.value.args[0]['msg']


def test_a_second_pending_change_of_the_uplink_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshot, 'read', lambda uplink, name, files: pytest.fail('read'))
    folder_of(tmp_path, 'c1')
    module = FakeModule(runtime_dir=str(tmp_path))
    with pytest.raises(module_runner.Refused) as refused:
        change_module.ConfirmedChangeSteps('armed').plan(module, module.params, LINKS_FREE)
    assert 'change c1 of eth0 is armed already' in str(refused.value)
    (tmp_path / 'c1' / rollback_helper.DECISION).write_text('confirmed\n')
    assert arming.pending_changes(str(tmp_path), 'eth0') == []
    assert arming.pending_changes(str(tmp_path / 'missing'), 'eth0') == []


# bridge_port's armed_change: the change is made only while its rollback is pending (folder_of
# arms at 1000.0 with a 5 s timeout: the deadline is 1005.0).
def test_protection_while_pending(tmp_path):
    folder_of(tmp_path)
    assert arming.protection_error(str(tmp_path), 'c1', clock=lambda: 1004.9) is None


def test_protection_after_the_deadline_before_the_rollback(tmp_path):
    folder_of(tmp_path)
    assert arming.protection_error(str(tmp_path), 'c1', clock=lambda: 1012.4) == (
        'armed_change c1 is due to be rolled back before this change was made: its 5 s ran out 7 s '
        'ago, while the tasks before the change ran, and a change made now would stand with '
        'nothing to undo it; nothing changed. Arm it again with a longer timeout (the hypervisor '
        'role: tuntap_qemu_takeover_timeout)')


def test_protection_after_the_rollback(tmp_path):
    """The rollback decided (before the deadline is impossible, but the decision is what
    counts): refused with the report's time; while its report is not written yet, it is
    being rolled back."""
    folder = folder_of(tmp_path)
    (folder / rollback_helper.DECISION).write_text('rollback\n')
    error = arming.protection_error(str(tmp_path), 'c1', clock=lambda: 1001.0)
    assert error.startswith('armed_change c1 is being rolled back before this change was made: '
                            'its 5 s ran out 0 s ago')
    (folder / rollback_helper.REPORT).write_text(json.dumps({'when': '2026-12-01T15:00:05Z'}))
    error = arming.protection_error(str(tmp_path), 'c1', clock=lambda: 1030.0)
    assert error.startswith('armed_change c1 was rolled back at 2026-12-01T15:00:05Z before this '
                            'change was made: its 5 s ran out 25 s ago')


def test_protection_confirmed_unknown_bad(tmp_path):
    folder = folder_of(tmp_path)
    (folder / rollback_helper.DECISION).write_text('confirmed\n')
    assert arming.protection_error(str(tmp_path), 'c1', clock=lambda: 1001.0) == (
        'armed_change c1 is confirmed already: nothing would undo this change; nothing changed. '
        'Arm a new one')
    assert arming.protection_error(str(tmp_path), 'c2', clock=lambda: 1001.0) == (
        'armed_change c2: no rollback folder %s/c2 (not armed on this host, or /run emptied by a '
        'reboot): nothing would undo this change; nothing changed' % tmp_path)
    assert arming.protection_error(str(tmp_path), '..', clock=lambda: 1001.0) == (
        "armed_change: '..' is not a change id (letters, digits, ., _, -)")
