# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The boot unit of the nftables backend: detection, rendering, planning (pure)."""

from __future__ import annotations

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._nat import nft_boot_unit

NFT = '/usr/sbin/nft'
FILE = '/etc/nftables.d/tuntap-qemu.nft'
UNIT_DIR = '/etc/systemd/system'
UNIT = UNIT_DIR + '/tuntap-qemu-nft.service'
LINK = UNIT_DIR + '/sysinit.target.wants/tuntap-qemu-nft.service'


@pytest.mark.parametrize('requested, booted, same_netns, mode, reason', [
    ('auto', True, True, 'systemd', 'systemd is PID 1'),
    ('auto', False, None, 'none', 'systemd is not PID 1 (/run/systemd/system does not exist)'),
    ('auto', False, True, 'none', 'systemd is not PID 1 (/run/systemd/system does not exist)'),
    ('auto', True, False, 'none', "the module runs in a network namespace other than PID 1's, "
                                  "where a systemd unit would not load the table"),
    ('auto', True, None, 'none', "PID 1's network namespace could not be compared with this one"),
    ('systemd', False, None, 'systemd', 'boot_unit=systemd'),
    ('systemd', True, False, 'systemd', 'boot_unit=systemd'),
    ('none', True, True, 'none', 'boot_unit=none'),
])
def test_choose_mode(requested, booted, same_netns, mode, reason):
    assert nft_boot_unit.choose_mode(requested, booted, same_netns) == (mode, reason)


@pytest.mark.parametrize('make_dir, booted', [(True, True), (False, False)])
def test_systemd_booted(tmp_path, make_dir, booted):
    runtime = tmp_path / 'systemd' / 'system'
    if make_dir:
        runtime.mkdir(parents=True)
    assert nft_boot_unit.systemd_booted(str(runtime)) is booted


def test_same_network_namespace_as_init(tmp_path):
    one, two = tmp_path / 'one', tmp_path / 'two'
    one.write_text('')
    two.write_text('')
    assert nft_boot_unit.same_network_namespace_as_init(str(one), str(one)) is True
    assert nft_boot_unit.same_network_namespace_as_init(str(one), str(two)) is False
    assert nft_boot_unit.same_network_namespace_as_init(str(one), str(tmp_path / 'none')) is None


@pytest.mark.parametrize('word, quoted', [
    ('/usr/sbin/nft', '/usr/sbin/nft'),
    ('-f', '-f'),
    ('/srv/my rules/t.nft', '"/srv/my rules/t.nft"'),
    ('/srv/100%/t.nft', '"/srv/100%%/t.nft"'),
    ('/srv/a"b', '"/srv/a\\"b"'),
])
def test_systemd_quote(word, quoted):
    assert nft_boot_unit.systemd_quote(word) == quoted


def test_render_unit():
    text = nft_boot_unit.render_unit(NFT, FILE)
    assert text.startswith(nft_boot_unit.MARK)
    lines = text.splitlines()
    for line in ('[Unit]', 'DefaultDependencies=no', 'Wants=network-pre.target',
                 'After=nftables.service', 'Before=network-pre.target shutdown.target',
                 'RequiresMountsFor=/etc/nftables.d', '[Service]', 'Type=oneshot',
                 'RemainAfterExit=yes', 'ExecStart=/usr/sbin/nft -f ' + FILE,
                 'ExecReload=/usr/sbin/nft -f ' + FILE, '[Install]', 'WantedBy=sysinit.target'):
        assert line in lines
    # No ExecStop: shutting down must not flush anything.
    assert not [line for line in lines if line.startswith('ExecStop')]
    assert nft_boot_unit.is_ours(text)


def _current(unit=None, link=None):
    return {'unit': unit, 'link': link}


RENDERED = nft_boot_unit.render_unit(NFT, FILE)


@pytest.mark.parametrize('present, current, unit_changed, link_changed, unit_after, link_after', [
    # A fresh host: write the unit and enable it.
    (True, _current(), True, True, RENDERED, UNIT),
    # Converged: nothing to do.
    (True, _current(RENDERED, UNIT), False, False, RENDERED, UNIT),
    # The admin ran systemctl disable: enable again.
    (True, _current(RENDERED, None), False, True, RENDERED, UNIT),
    # An older rendering of ours (another nft path): rewritten.
    (True, _current(nft_boot_unit.render_unit('/sbin/nft', FILE), UNIT), True, False, RENDERED, UNIT),
    # The link points elsewhere (a relative link, say): made ours.
    (True, _current(RENDERED, '../tuntap-qemu-nft.service'), False, True, RENDERED, UNIT),
    # The last rule went: unit and link go.
    (False, _current(RENDERED, UNIT), True, True, None, None),
    # ... and stay gone.
    (False, _current(), False, False, None, None),
])
def test_plan_unit(present, current, unit_changed, link_changed, unit_after, link_after):
    plan = nft_boot_unit.plan_unit('systemd', UNIT_DIR, NFT, FILE, present, current)
    assert plan['errors'] == []
    assert plan['unit'] == {'path': UNIT, 'before': current['unit'], 'after': unit_after,
                            'changed': unit_changed}
    assert plan['link'] == {'path': LINK, 'before': current['link'], 'after': link_after,
                            'changed': link_changed}


def test_plan_unit_none_plans_nothing():
    assert nft_boot_unit.plan_unit('none', UNIT_DIR, NFT, FILE, True, _current()) is None


@pytest.mark.parametrize('current, fragment', [
    (_current('[Unit]\nDescription=the admin\'s own\n'), 'is not managed by tuntap.qemu'),
    (_current(RENDERED, ''), 'is not a symlink'),
])
def test_plan_unit_refuses_what_is_not_ours(current, fragment):
    plan = nft_boot_unit.plan_unit('systemd', UNIT_DIR, NFT, FILE, True, current)
    assert len(plan['errors']) == 1 and fragment in plan['errors'][0]


def test_read_and_write(tmp_path):
    unit_dir = str(tmp_path)
    assert nft_boot_unit.read_current(unit_dir) == _current()
    plan = nft_boot_unit.plan_unit('systemd', unit_dir, NFT, FILE, True,
                                   nft_boot_unit.read_current(unit_dir))
    (tmp_path / 'tuntap-qemu-nft.service').write_text(plan['unit']['after'])
    nft_boot_unit.write_link(plan['link'])
    assert nft_boot_unit.read_current(unit_dir) == _current(RENDERED, plan['unit']['path'])
    gone = nft_boot_unit.plan_unit('systemd', unit_dir, NFT, FILE, False,
                                   nft_boot_unit.read_current(unit_dir))
    nft_boot_unit.write_link(gone['link'])
    assert nft_boot_unit.read_current(unit_dir)['link'] is None


@pytest.mark.parametrize('before, after, expected', [
    (None, UNIT, {'before_header': LINK + ' (absent)', 'after_header': LINK, 'before': '',
                  'after': 'symlink -> %s\n' % UNIT}),
    (UNIT, None, {'before_header': LINK, 'after_header': LINK + ' (absent)',
                  'before': 'symlink -> %s\n' % UNIT, 'after': ''}),
])
def test_link_diff(before, after, expected):
    assert nft_boot_unit.link_diff({'path': LINK, 'before': before, 'after': after}) == expected


# ---------------------------------------------------------------- with a running systemd

class FakeModule:
    def __init__(self):
        self.check_mode = False

    @staticmethod
    def get_bin_path(name, required=False):
        return '/usr/bin/' + name

    @staticmethod
    def atomic_move(source, destination):
        import os
        os.replace(source, destination)


class FakeSystemctl:
    """nft is found; `systemctl is-active` prints `active_now`; every argv is recorded."""

    def __init__(self, active_now):
        self.active_now = active_now
        self.ran = []

    def require(self, name, why):
        return '/usr/sbin/' + name

    def run(self, argv, data=None):
        self.ran.append(argv[1:])
        if argv[1] == 'is-active':
            return (0 if self.active_now else 3), ('active\n' if self.active_now else 'inactive\n'), ''
        return 0, '', ''


@pytest.mark.parametrize('present, active_now, exists_before, calls', [
    # First converge on a systemd host: written, reloaded, started (active as after a boot).
    (True, False, False, [['is-active', 'tuntap-qemu-nft.service'], ['daemon-reload'],
                          ['start', 'tuntap-qemu-nft.service']]),
    # Converged: only read.
    (True, True, True, [['is-active', 'tuntap-qemu-nft.service']]),
    # The last rule went: stopped (no ExecStop), removed, reloaded.
    (False, True, True, [['is-active', 'tuntap-qemu-nft.service'], ['stop', 'tuntap-qemu-nft.service'],
                         ['daemon-reload']]),
])
def test_converge_with_a_running_systemd(tmp_path, monkeypatch, present, active_now, exists_before,
                                         calls):
    from ansible_collections.tuntap.qemu.plugins.module_utils._nat import nat_module
    unit_dir = str(tmp_path)
    monkeypatch.setattr(nft_boot_unit, 'DEFAULT_UNIT_DIR', unit_dir)
    monkeypatch.setattr(nft_boot_unit, 'systemd_booted', lambda *args: True)
    monkeypatch.setattr(nft_boot_unit, 'same_network_namespace_as_init', lambda *args: True)
    if exists_before:
        (tmp_path / 'tuntap-qemu-nft.service').write_text(RENDERED)
        nft_boot_unit.write_link({'path': nft_boot_unit.link_path(unit_dir),
                                  'after': nft_boot_unit.unit_path(unit_dir)})
    module, commands, warnings, errors = FakeModule(), FakeSystemctl(active_now), [], []
    systemd = nat_module.LiveSystemd(module, commands, unit_dir, warnings)
    params = {'boot_unit': 'auto', 'systemd_unit_dir': unit_dir, 'backup': False}
    planner = nat_module.PersistencePlanner(params, commands, systemd, errors)
    boot_unit, unit_files = planner.boot_unit(FILE, present)
    assert errors == []
    assert boot_unit.report()['mode'] == 'systemd' and boot_unit.report()['active'] is present
    assert boot_unit.activity_changed is (active_now != present)
    nat_module.write_persistence(module, systemd, nat_module.PersistencePlan(unit_files, boot_unit),
                                 backup=False)
    assert commands.ran == calls
    current = nft_boot_unit.read_current(unit_dir)
    assert (current['unit'] == RENDERED) is present
    assert (current['link'] == nft_boot_unit.unit_path(unit_dir)) is present
