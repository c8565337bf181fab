# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""guest_dhcp: the reload decision, which dnsmasq is ours, the service mode, the unit."""

from __future__ import annotations

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._dhcp import dnsmasq_service
from ansible_collections.tuntap.qemu.plugins.module_utils._guest import guest_unit

CONF = '/etc/tuntap-qemu/dnsmasq/dnsmasq.conf'


@pytest.mark.parametrize('wanted, running, changed, unit_changed, action', [
    (True, False, [], False, 'started'),
    (True, False, ['hosts'], False, 'started'),
    (True, True, [], False, 'none'),
    (True, True, ['hosts'], False, 'reloaded'),
    (True, True, ['names'], False, 'reloaded'),
    (True, True, ['hosts', 'names'], False, 'reloaded'),
    (True, True, ['dnsmasq.conf'], False, 'restarted'),
    (True, True, ['dnsmasq.conf', 'hosts'], False, 'restarted'),
    (True, True, [], True, 'restarted'),
    (False, True, [], False, 'stopped'),
    (False, False, ['hosts'], False, 'none'),
])
def test_decide_action(wanted, running, changed, unit_changed, action):
    assert dnsmasq_service.decide_action(wanted, running, changed, unit_changed) == action


@pytest.mark.parametrize('args, ours', [
    (['/usr/sbin/dnsmasq', '--conf-file=' + CONF], True),
    (['/usr/sbin/dnsmasq', '--keep-in-foreground', '--conf-file=' + CONF], True),
    (['dnsmasq', '--conf-file=' + CONF], True),
    (['/usr/sbin/dnsmasq', '--conf-file=/etc/dnsmasq.conf'], False),
    (['/usr/sbin/dnsmasq', '--conf-file=/var/lib/libvirt/dnsmasq/default.conf'], False),
    (['/usr/bin/python3', 'x.py', '--conf-file=' + CONF], False),
    ([], False),
    (None, False),
])
def test_is_ours(args, ours):
    assert dnsmasq_service.is_ours(args, CONF) is ours


@pytest.mark.parametrize('requested, comm, same_netns, mode, error', [
    ('auto', 'systemd', True, 'systemd', None),
    ('auto', 'systemd', False, 'process', None),
    ('auto', 'bash', True, 'process', None),
    ('process', 'systemd', True, 'process', None),
    ('systemd', 'systemd', True, 'systemd', None),
    ('systemd', 'sh', True, None, "service=systemd: PID 1 is 'sh', not systemd"),
    ('systemd', 'systemd', False, None, "service=systemd: this runs in a network namespace"),
])
def test_service_mode(requested, comm, same_netns, mode, error):
    got_mode, got_error = dnsmasq_service.service_mode(requested, comm, same_netns)
    assert got_mode == mode
    assert (got_error or '').startswith(error or '')
    assert bool(got_error) == bool(error)


def test_render_unit():
    text = dnsmasq_service.render_unit('/usr/sbin/dnsmasq', CONF, '/run/tuntap-qemu/dnsmasq')
    lines = text.splitlines()
    assert guest_unit.is_ours(text)
    assert 'Type=simple' in lines
    assert 'ExecStart=/usr/sbin/dnsmasq --keep-in-foreground --conf-file=%s' % CONF in lines
    assert 'ExecStartPre=/usr/sbin/dnsmasq --test --conf-file=%s' % CONF in lines
    assert 'After=network.target networking.service' in lines
    assert 'WantedBy=multi-user.target' in lines
    assert 'ExecReload=/bin/kill -HUP $MAINPID' in lines
    assert not [line for line in lines if 'nft' in line]


def test_the_unit_loads_our_firewall_table_before_dnsmasq():
    text = dnsmasq_service.render_unit('/usr/sbin/dnsmasq', CONF, '/run/tuntap-qemu/dnsmasq',
                                       ['/usr/sbin/nft', '/etc/tuntap-qemu/dnsmasq/firewall.nft'])
    lines = text.splitlines()
    load = 'ExecStartPre=-/usr/sbin/nft -f /etc/tuntap-qemu/dnsmasq/firewall.nft'
    assert load in lines
    assert lines.index(load) < lines.index('ExecStart=/usr/sbin/dnsmasq --keep-in-foreground --conf-file=%s' % CONF)


def test_running_pid_checks_the_command_line(tmp_path, monkeypatch):
    pidfile = tmp_path / 'dnsmasq.pid'
    pidfile.write_text('4242\n')
    commands = {4242: ['/usr/sbin/dnsmasq', '--conf-file=/other.conf'], 77: ['/usr/sbin/dnsmasq', '--conf-file=' + CONF]}
    monkeypatch.setattr(dnsmasq_service.qemu, 'process_argv', commands.get)
    assert dnsmasq_service.running_pid(str(pidfile), CONF) is None
    assert dnsmasq_service.running_pid(str(pidfile), CONF, extra_pid=77) == 77
    commands[4242] = commands[77]
    assert dnsmasq_service.running_pid(str(pidfile), CONF) == 4242
    assert dnsmasq_service.running_pid(str(tmp_path / 'missing.pid'), CONF) is None


def test_signal_only_ours(monkeypatch):
    sent = []
    monkeypatch.setattr(dnsmasq_service.os, 'kill', lambda pid, signum: sent.append((pid, signum)))
    monkeypatch.setattr(dnsmasq_service.qemu, 'process_argv',
                        {5: ['/usr/sbin/dnsmasq', '--conf-file=' + CONF], 6: ['/usr/bin/sleep', '60']}.get)
    assert dnsmasq_service.signal_ours(5, CONF, 1)
    assert not dnsmasq_service.signal_ours(6, CONF, 1)
    assert not dnsmasq_service.signal_ours(7, CONF, 1)
    assert sent == [(5, 1)]
