# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Forwarding plan and rendering against a fake /proc/sys tree in tmp_path."""

from __future__ import annotations

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils import sysctl


@pytest.fixture
def proc_sys(tmp_path):
    (tmp_path / 'net/ipv4').mkdir(parents=True)
    (tmp_path / 'net/ipv4/ip_forward').write_text('0\n')
    (tmp_path / 'net/ipv6/conf/all').mkdir(parents=True)
    (tmp_path / 'net/ipv6/conf/all/forwarding').write_text('1\n')
    return tmp_path


def params(tmp_path, **overrides):
    base = {'state': 'enabled', 'family': ['ipv4'], 'runtime': True, 'persistent': True,
            'sysctl_file': str(tmp_path / 'sysctl.d/60-fwd.conf')}
    base.update(overrides)
    return base


@pytest.mark.parametrize('overrides, runtime_changed, after', [
    ({}, True, {'net.ipv4.ip_forward': '1'}),
    ({'family': ['ipv6']}, False, {'net.ipv6.conf.all.forwarding': '1'}),
    ({'family': ['ipv4', 'ipv6'], 'state': 'disabled'}, True,
     {'net.ipv4.ip_forward': '0', 'net.ipv6.conf.all.forwarding': '0'}),
    ({'state': 'disabled'}, False, {'net.ipv4.ip_forward': '0'}),
])
def test_plan_runtime(proc_sys, tmp_path, overrides, runtime_changed, after):
    plan = sysctl.plan_forwarding(params(tmp_path, **overrides), proc_sys=str(proc_sys))
    assert plan['errors'] == []
    assert plan['runtime_changed'] is runtime_changed
    assert plan['runtime_after'] == after
    assert plan['file_before'] is None and plan['file_changed'] is True
    for key, value in after.items():
        assert '%s = %s\n' % (key, value) in plan['file_after']


def test_write_then_plan_is_unchanged(proc_sys, tmp_path):
    wanted = params(tmp_path, family=['ipv4', 'ipv6'])
    plan = sysctl.plan_forwarding(wanted, proc_sys=str(proc_sys))
    sysctl.write_runtime(plan['runtime_after'], proc_sys=str(proc_sys))
    (tmp_path / 'sysctl.d').mkdir()
    (tmp_path / 'sysctl.d/60-fwd.conf').write_text(plan['file_after'])
    again = sysctl.plan_forwarding(wanted, proc_sys=str(proc_sys))
    assert (again['runtime_changed'], again['file_changed']) == (False, False)
    assert (proc_sys / 'net/ipv4/ip_forward').read_text() == '1\n'


def _our_file(tmp_path, text):
    (tmp_path / 'sysctl.d').mkdir()
    (tmp_path / 'sysctl.d/60-fwd.conf').write_text(sysctl.HEADER + text)


# Our file held a family the request no longer names: it was ours, so it goes off now too.
# One our file did not turn on (absent, or = 0 in it) is an admin's and stays as it is.
@pytest.mark.parametrize('file_text, overrides, after', [
    ('net.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 1\n', {},
     {'net.ipv4.ip_forward': '1', 'net.ipv6.conf.all.forwarding': '0'}),
    ('net.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 1\n', {'state': 'disabled'},
     {'net.ipv4.ip_forward': '0', 'net.ipv6.conf.all.forwarding': '0'}),
    ('net.ipv4.ip_forward = 1\n', {}, {'net.ipv4.ip_forward': '1'}),
    ('net.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 0\n', {}, {'net.ipv4.ip_forward': '1'}),
    ('net.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 1\n', {'persistent': False}, {'net.ipv4.ip_forward': '1'}),
])
def test_a_dropped_family_of_ours_goes_off(proc_sys, tmp_path, file_text, overrides, after):
    _our_file(tmp_path, file_text)
    plan = sysctl.plan_forwarding(params(tmp_path, **overrides), proc_sys=str(proc_sys))
    assert plan['errors'] == []
    assert plan['runtime_after'] == after
    assert plan['runtime_changed'] is True
    if plan['file_after'] is not None:
        assert 'ipv6' not in plan['file_after']


def test_a_dropped_family_without_its_key_is_off_already(tmp_path):
    (tmp_path / 'net/ipv4').mkdir(parents=True)
    (tmp_path / 'net/ipv4/ip_forward').write_text('1\n')
    _our_file(tmp_path, 'net.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 1\n')
    plan = sysctl.plan_forwarding(params(tmp_path), proc_sys=str(tmp_path))
    assert plan['errors'] == []
    assert plan['runtime_after'] == {'net.ipv4.ip_forward': '1'}
    assert plan['runtime_changed'] is False and plan['file_changed'] is True


def test_missing_ipv6_is_an_error(tmp_path):
    (tmp_path / 'net/ipv4').mkdir(parents=True)
    (tmp_path / 'net/ipv4/ip_forward').write_text('0\n')
    plan = sysctl.plan_forwarding(params(tmp_path, family=['ipv6']), proc_sys=str(tmp_path))
    assert plan['errors'] and plan['errors'][0].startswith('family: ipv6 forwarding is not available')


def test_relative_file_is_an_error(proc_sys, tmp_path):
    plan = sysctl.plan_forwarding(params(tmp_path, sysctl_file='sysctl.d/x.conf'), proc_sys=str(proc_sys))
    assert plan['errors'] == ["sysctl_file: 'sysctl.d/x.conf' is not an absolute path"]


def test_render_is_sorted_and_stable():
    text = sysctl.render_sysctl_file({'net.ipv6.conf.all.forwarding': '1', 'net.ipv4.ip_forward': '1'})
    assert text.splitlines()[-2:] == ['net.ipv4.ip_forward = 1', 'net.ipv6.conf.all.forwarding = 1']


# ---------------------------------------------------------------- the boot

@pytest.mark.parametrize('listing, order', [
    ({'/etc/sysctl.d': ['99-sysctl.conf', '60-tuntap-qemu-forwarding.conf', 'README'],
      '/usr/lib/sysctl.d': ['50-default.conf', '50-pid-max.conf']},
     ['/usr/lib/sysctl.d/50-default.conf', '/usr/lib/sysctl.d/50-pid-max.conf',
      '/etc/sysctl.d/60-tuntap-qemu-forwarding.conf', '/etc/sysctl.d/99-sysctl.conf']),
    # A name in /etc hides the same name in /usr/lib.
    ({'/etc/sysctl.d': ['50-default.conf'], '/usr/lib/sysctl.d': ['50-default.conf']},
     ['/etc/sysctl.d/50-default.conf']),
])
def test_boot_order(listing, order):
    assert sysctl.boot_order(listing) == order


@pytest.mark.parametrize('text, pairs', [
    ('# c\n; c\n\nnet.ipv4.ip_forward = 1\n', [('net.ipv4.ip_forward', '1')]),
    ('-net/ipv4/ip_forward=0\n', [('net.ipv4.ip_forward', '0')]),
    ('#net.ipv4.ip_forward=1\n', []),
    ('net.ipv4.conf.*.forwarding = 0\n', [('net.ipv4.conf.*.forwarding', '0')]),
])
def test_assignments(text, pairs):
    assert sysctl.assignments(text) == pairs


OURS = '/etc/sysctl.d/60-tuntap-qemu-forwarding.conf'
ON = {'net.ipv4.ip_forward': '1'}


@pytest.mark.parametrize('ordered, values, count', [
    # Debian 12 as installed: /etc/sysctl.conf has the line commented out.
    ([(OURS, None), ('/etc/sysctl.d/99-sysctl.conf', '#net.ipv4.ip_forward=1\n')], ON, 0),
    # A later file turns it off again: warned.
    ([(OURS, None), ('/etc/sysctl.d/99-sysctl.conf', 'net.ipv4.ip_forward=0\n')], ON, 1),
    # ... also through the alias and a glob.
    ([(OURS, None), ('/etc/sysctl.d/70-x.conf', 'net.ipv4.conf.all.forwarding = 0\n')], ON, 1),
    ([(OURS, None), ('/etc/sysctl.d/70-x.conf', 'net.ipv4.conf.*.forwarding = 0\n')], ON, 1),
    # A later file with the same value, or an earlier one with another: ours wins.
    ([(OURS, None), ('/etc/sysctl.d/70-x.conf', 'net.ipv4.ip_forward = 1\n')], ON, 0),
    ([('/etc/sysctl.d/10-x.conf', 'net.ipv4.ip_forward = 0\n'), (OURS, None)], ON, 0),
    # bridged_lan turns forwarding off; a later file that turns it on is warned too.
    ([(OURS, None), ('/etc/sysctl.d/99-sysctl.conf', 'net.ipv4.ip_forward=1\n')],
     {'net.ipv4.ip_forward': '0'}, 1),
])
def test_boot_overrides(ordered, values, count):
    warnings = sysctl.boot_overrides(ordered, OURS, values)
    assert len(warnings) == count
    if count:
        assert ordered[-1][0] in warnings[0] and OURS in warnings[0]


def test_read_boot_overrides(tmp_path):
    etc, lib = tmp_path / 'etc', tmp_path / 'lib'
    etc.mkdir()
    lib.mkdir()
    (lib / '99-late.conf').write_text('net.ipv4.ip_forward = 0\n')
    ours = str(etc / '60-fwd.conf')
    dirs = (str(etc), str(lib))
    # Our file not written yet (check mode, first run): still compared in its place.
    assert len(sysctl.read_boot_overrides(ours, ON, dirs)) == 1
    # A file outside the boot folders (the lab's /etc/netns/NS/sysctl.d) is not compared.
    assert sysctl.read_boot_overrides(str(tmp_path / 'elsewhere.conf'), ON, dirs) == []


@pytest.mark.parametrize('before, after, turned_off', [
    ({'net.ipv6.conf.all.forwarding': '1'}, {'net.ipv6.conf.all.forwarding': '0'}, True),
    ({'net.ipv6.conf.all.forwarding': '0'}, {'net.ipv6.conf.all.forwarding': '0'}, False),
    ({'net.ipv6.conf.all.forwarding': '0'}, {'net.ipv6.conf.all.forwarding': '1'}, False),
    ({'net.ipv4.ip_forward': '1'}, {'net.ipv4.ip_forward': '0'}, False),
])
def test_ipv6_forwarding_turned_off(before, after, turned_off):
    assert sysctl.ipv6_forwarding_turned_off(before, after) is turned_off


def _link(root, name, accept_ra, flags, port=False):
    conf = root / 'proc/net/ipv6/conf' / name
    conf.mkdir(parents=True)
    (conf / 'accept_ra').write_text('%d\n' % accept_ra)
    sys_dir = root / 'sys' / name
    sys_dir.mkdir(parents=True)
    (sys_dir / 'flags').write_text('0x%x\n' % flags)
    if port:
        (sys_dir / 'brport').mkdir()


def test_ra_links_are_up_non_port_links_that_accept_router_advertisements(tmp_path):
    for name in ('all', 'default'):
        _link(tmp_path, name, 1, 0x1003)
    _link(tmp_path, 'lo', 1, 0x9)
    _link(tmp_path, 'br0', 1, 0x1003)
    _link(tmp_path, 'eth0', 1, 0x1003, port=True)
    _link(tmp_path, 'eth1', 0, 0x1003)
    _link(tmp_path, 'eth2', 2, 0x1003)
    _link(tmp_path, 'tap0', 1, 0x1002)
    assert sysctl.ra_links(str(tmp_path / 'proc'), str(tmp_path / 'sys')) == ['br0', 'eth2']


def test_solicit_routers_skips_links_that_cannot_send():
    def solicit(name, wait):
        assert wait == sysctl.SOLICIT_WAIT
        if name == 'gone':
            raise OSError(19, 'No such device')
        return name != 'tentative'
    assert sysctl.solicit_routers(['br0', 'gone', 'tentative', 'eth2'], solicit) == ['br0', 'eth2']
