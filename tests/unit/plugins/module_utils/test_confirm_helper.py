# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollback helper of confirmed_change (_confirm/rollback_helper.py): the rendered script,
run for real on a plan whose `ip` is a fake that logs its argv (no link is touched), and the
arming folder and decision (_confirm/arming.py)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._confirm import (
    arming, rollback_helper, rollback_plan, snapshot)
from ansible_collections.tuntap.qemu.plugins.module_utils._confirm.snapshot import (
    Address, Link, SavedFile, Snapshot)

FAKE_IP = r'''#!/bin/sh
# Logs its argv; `ip -json address show dev DEV` prints $FAKE_ADDRESSES; fails like ip for
# devices named gone* and for `link add` of an existing bridge.
printf '%s\n' "$*" >>"$FAKE_LOG"
case "$*" in
    *"dev gone"*) echo "Cannot find device \"gone0\"" >&2; exit 1 ;;
    "-json address show dev "*) printf '%s\n' "$FAKE_ADDRESSES"; exit 0 ;;
    "link add name br0 "*) echo "RTNETLINK answers: File exists" >&2; exit 2 ;;
    *"bad"*) echo "Error: bad" >&2; exit 1 ;;
esac
exit 0
'''


def test_render_helper_shebang_and_compiles():
    text = rollback_helper.render_helper('/opt/python3')
    assert text.startswith('#!/opt/python3\n')
    compile(text, 'rollback-helper.py', 'exec')
    assert '@PYTHON@' not in text


def load_helper(tmp_path):
    path = tmp_path / 'helper_module.py'
    path.write_text(rollback_helper.render_helper(sys.executable))
    namespace = {'__name__': 'rollback_helper_script'}
    exec(compile(path.read_text(), str(path), 'exec'), namespace)  # pylint: disable=exec-used
    return namespace


@pytest.mark.parametrize('argv', [
    ['/sbin/dhclient', '-4', '-v', '-i', '-pf', '/run/dhclient.br0.pid', '-lf', '/x', '-I', '-df',
     '/y', 'br0'],
    ['dhclient', '-pf', '/run/x.pid'],
    ['udhcpc', '-i', 'eth1', '-p', '/run/u.pid'],
    ['/bin/sh', '/tmp/stand-in/dhclient', '-pf', '/tmp/p', 'eth0'],
    ['/bin/sleep', 'eth0'],
])
def test_helper_reads_argv_like_the_snapshot(tmp_path, argv):
    helper = load_helper(tmp_path)
    assert helper['client_interface'](argv) == snapshot.client_interface(argv)


def make_folder(tmp_path, steps, timeout=5):
    folder = tmp_path / 'rollback' / 'c1'
    before = Snapshot(0.0, Link('eth0'), Link('br0'), files=[
        SavedFile(str(tmp_path / 'etc' / 'kept'), True, 0o640, os.getuid(), os.getgid(), b'old\n'),
        SavedFile(str(tmp_path / 'etc' / 'new'), False)])
    steps = list(steps) + rollback_plan._files(before)  # pylint: disable=protected-access
    arming.write_folder(str(folder), 'c1', before, steps, timeout, sys.executable,
                        arming.PROCESS, None, 1000.0)
    fake = tmp_path / 'ip'
    fake.write_text(FAKE_IP)
    fake.chmod(0o755)
    plan_path = folder / rollback_helper.PLAN
    plan = json.loads(plan_path.read_text())
    plan['ip'] = str(fake)
    plan_path.write_text(json.dumps(plan))
    return folder


def run_helper(tmp_path, folder, addresses='[]'):
    env = dict(os.environ, FAKE_LOG=str(tmp_path / 'ip.log'), FAKE_ADDRESSES=addresses)
    return subprocess.run([sys.executable, str(folder / rollback_helper.HELPER_NAME), str(folder)],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
                          universal_newlines=True, timeout=60)


def test_helper_runs_every_step_and_reports(tmp_path):
    (tmp_path / 'etc').mkdir()
    (tmp_path / 'etc' / 'kept').write_text('changed by the change\n')
    (tmp_path / 'etc' / 'new').write_text('written by the change\n')
    os.chmod(tmp_path / 'etc' / 'kept', 0o600)
    address_steps = [rollback_plan._addresses(  # pylint: disable=protected-access
        'br0', [Address('10.0.0.2/24'), Address('2001:db8::2/64', 600, 300)], exact=True)]
    steps = address_steps + [
        rollback_plan.Step('ip', 'br0 exists', argv=['link', 'add', 'name', 'br0', 'type', 'bridge'],
                           tolerate=[rollback_plan.EXISTS]),
        rollback_plan.Step('ip', 'a bad step', argv=['link', 'set', 'bad']),
        rollback_plan.Step('ip', 'gone0 is deleted', argv=['link', 'delete', 'dev', 'gone0'],
                           tolerate=[rollback_plan.MISSING_DEVICE]),
    ]
    folder = make_folder(tmp_path, steps)
    have = json.dumps([{'ifname': 'br0', 'addr_info': [
        {'family': 'inet', 'local': '10.0.0.2', 'prefixlen': 24, 'scope': 'global'},
        {'family': 'inet', 'local': '192.0.2.9', 'prefixlen': 24, 'scope': 'global'},
        {'family': 'inet6', 'local': 'fe80::1', 'prefixlen': 64, 'scope': 'link'}]}])
    proc = run_helper(tmp_path, folder, have)
    assert proc.returncode == 1, proc.stderr  # one step failed; the others ran
    report = json.loads((folder / rollback_helper.REPORT).read_text())
    assert report['reason'] == 'not confirmed within 5 s'
    assert [(step['text'], step['result']) for step in report['steps']] == [
        ('br0 holds exactly 10.0.0.2/24, 2001:db8::2/64', 'ok'),
        ('br0 exists', 'done already'),
        ('a bad step', 'failed'),
        ('gone0 is deleted', 'done already'),
        ('%s is written back (4 bytes, mode 0640, owner %d:%d)'
         % (tmp_path / 'etc' / 'kept', os.getuid(), os.getgid()), 'ok'),
        ('%s is removed (it did not exist)' % (tmp_path / 'etc' / 'new'), 'ok'),
    ]
    log = (tmp_path / 'ip.log').read_text().splitlines()
    assert 'address replace 10.0.0.2/24 dev br0 broadcast +' in log
    # the lifetimes shrink by the time since the snapshot (taken at epoch 0: down to the minimum)
    assert 'address replace 2001:db8::2/64 dev br0 nodad valid_lft 1 preferred_lft 0' in log
    assert 'address delete 192.0.2.9/24 dev br0' in log
    assert not [line for line in log if 'fe80' in line]
    assert (tmp_path / 'etc' / 'kept').read_bytes() == b'old\n'
    assert stat.S_IMODE(os.stat(tmp_path / 'etc' / 'kept').st_mode) == 0o640
    assert not (tmp_path / 'etc' / 'new').exists()
    assert 'tuntap-qemu-rollback c1: not confirmed within 5 s' in proc.stderr
    assert 'FAILED: a bad step' in proc.stderr
    assert proc.stderr.strip().endswith(report['summary'])
    assert arming.status(str(folder))['rolled_back'] is True
    assert 'a bad step (failed: link set bad: Error: bad)' in arming.describe_report(report)


def test_confirmed_first_means_no_rollback(tmp_path):
    folder = make_folder(tmp_path, [rollback_plan.Step('ip', 'x', argv=['link', 'show'])])
    assert arming.confirm(str(folder)) == rollback_helper.CONFIRMED
    proc = run_helper(tmp_path, folder)
    assert proc.returncode == 0 and 'confirmed, nothing to do' in proc.stderr
    assert not (folder / rollback_helper.REPORT).exists()
    assert not (tmp_path / 'ip.log').exists()
    facts = arming.status(str(folder))
    assert facts['confirmed'] and not facts['rolled_back']


def test_rollback_first_means_confirm_loses(tmp_path):
    folder = make_folder(tmp_path, [])
    run_helper(tmp_path, folder)
    assert arming.confirm(str(folder)) == rollback_helper.ROLLBACK
    assert arming.status(str(folder))['rolled_back']


def test_folder_is_private_and_holds_the_saved_files(tmp_path):
    folder = make_folder(tmp_path, [])
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert (folder / 'files' / '0').read_bytes() == b'old\n'
    assert not (folder / 'files' / '1').exists()
    assert json.loads((folder / rollback_helper.SNAPSHOT).read_text())['files'][1]['exists'] is False


def test_unknown_folder_has_no_status(tmp_path):
    assert arming.status(str(tmp_path / 'nothing')) is None


@pytest.mark.parametrize('systemd, same_netns, mechanism', [
    (True, True, arming.SYSTEMD_TIMER), (True, False, arming.PROCESS),
    (False, True, arming.PROCESS), (False, False, arming.PROCESS)])
def test_mechanism(systemd, same_netns, mechanism):
    assert arming.choose_mechanism(systemd, same_netns) == mechanism


def test_systemd_is_init(tmp_path):
    comm = tmp_path / 'comm'
    comm.write_text('systemd\n')
    assert arming.systemd_is_init(str(tmp_path), str(comm))
    assert not arming.systemd_is_init(str(tmp_path / 'missing'), str(comm))
    comm.write_text('tini\n')
    assert not arming.systemd_is_init(str(tmp_path), str(comm))


def test_timer_argv():
    assert arming.timer_argv('c1', 60, '/usr/bin/python3', '/run/x/c1/h.py', '/run/x/c1') == [
        'systemd-run', '--unit=tuntap-qemu-rollback-c1', '--on-active=60s',
        '--timer-property=AccuracySec=100ms', '--property=Type=oneshot', '--property=KillMode=process',
        '--description=tuntap.qemu rollback c1 unless confirmed',
        '/usr/bin/python3', '/run/x/c1/h.py', '/run/x/c1']


@pytest.mark.parametrize('change_id, valid', [
    ('20261201T150500-a1b2c3', True), ('..', False), ('a/b', False), ('', False), (None, False),
    ('-x', False)])
def test_valid_id(change_id, valid):
    assert arming.valid_id(change_id) is valid


def test_new_id_is_valid():
    assert arming.valid_id(arming.new_id(lambda: 0.0, lambda n: b'\x01\x02\x03'))
    assert arming.new_id(lambda: 0.0, lambda n: b'\x01\x02\x03') == '19700101T000000-010203'


class FakeSocketModule:
    """The helper's `socket` for step_solicit: a link of index 7 named br0, a raw socket that
    fails `failures` times with EADDRNOTAVAIL (a tentative link-local address) and records."""

    def __init__(self, failures=0):
        import socket as real
        self.real = real
        self.failures = failures
        self.sent = []
        self.options = []
        for name in ('AF_INET6', 'SOCK_RAW', 'IPPROTO_ICMPV6', 'IPPROTO_IPV6',
                     'IPV6_MULTICAST_HOPS', 'IPV6_MULTICAST_IF'):
            setattr(self, name, getattr(real, name))

    def if_nametoindex(self, name):
        if name != 'br0':
            raise OSError(19, 'No such device')
        return 7

    def socket(self, *args):
        module = self

        class Sock:
            def setsockopt(self, level, option, value):
                module.options.append((option, value))

            def sendto(self, data, address):
                if module.failures:
                    module.failures -= 1
                    raise OSError(99, 'Cannot assign requested address')
                module.sent.append((data, address))

            def close(self):
                pass
        return Sock()


@pytest.mark.parametrize('dev, failures, result, sent', [
    ('br0', 0, 'ok', 1),
    ('br0', 3, 'ok', 1),        # sent once its link-local address is usable
    ('gone0', 0, 'done already', 0),
])
def test_helper_solicits_the_router(tmp_path, dev, failures, result, sent):
    helper = load_helper(tmp_path)
    fake = FakeSocketModule(failures)
    helper['socket'] = fake
    outcome, _detail = helper['Rollback'].step_solicit(None, {'dev': dev})
    assert outcome == result
    assert [address for _data, address in fake.sent] == [('ff02::2', 0, 0, 7)] * sent
    if sent:
        assert fake.sent[0][0][:4] == b'\x85\x00\x00\x00'
        assert (fake.IPV6_MULTICAST_HOPS, 255) in fake.options
