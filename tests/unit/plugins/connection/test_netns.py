# Copyright (c) 2025 tuntap.qemu developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Namespace name checks, command wrapping and /etc/netns path translation of the netns connection."""

from __future__ import annotations

import shlex

import pytest

from ansible.errors import AnsibleConnectionFailure
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader

from ansible_collections.tuntap.qemu.plugins.connection import netns as netns_connection


@pytest.fixture
def namespace_root(tmp_path, monkeypatch):
    """A fake /run/netns with namespace hv1 and a fake /etc with /etc/netns/hv1/network."""
    run_dir = tmp_path / 'run' / 'netns'
    run_dir.mkdir(parents=True)
    (run_dir / 'hv1').touch()
    etc_dir = tmp_path / 'etc'
    (etc_dir / 'netns' / 'hv1' / 'network').mkdir(parents=True)
    (etc_dir / 'netns' / 'hv1' / 'only-in-netns').touch()
    (etc_dir / 'network').mkdir()
    (etc_dir / 'sysctl.d').mkdir()
    monkeypatch.setattr(netns_connection, 'NETNS_RUN_DIR', str(run_dir))
    monkeypatch.setattr(netns_connection, 'ETC_DIR', str(etc_dir))
    monkeypatch.setattr(netns_connection, 'NETNS_ETC_DIR', str(etc_dir / 'netns'))
    return tmp_path


def make_connection(name):
    connection = connection_loader.get('tuntap.qemu.netns', PlayContext())
    connection.set_options(direct={'remote_addr': name})
    return connection


@pytest.mark.parametrize('name, message', [
    ('hv1', None),
    ('hv2', 'network namespace "hv2" does not exist'),
    ('', 'is not a network namespace name'),
    ('.', 'is not a network namespace name'),
    ('..', 'is not a network namespace name'),
    ('../hv1', 'is not a network namespace name'),
])
def test_namespace_name(namespace_root, name, message):
    connection = make_connection(name)
    if message is None:
        assert connection._namespace_name() == name
    else:
        with pytest.raises(AnsibleConnectionFailure, match=message):
            connection._connect()


def test_exec_command_wraps_with_ip_netns_exec(namespace_root, monkeypatch):
    seen = {}

    def local_exec_command(self, cmd, in_data=None, sudoable=True):
        seen.update(cmd=cmd, in_data=in_data, sudoable=sudoable)
        return 0, b'', b''

    monkeypatch.setattr(netns_connection.LocalConnection, 'exec_command', local_exec_command)
    connection = make_connection('hv1')
    connection.set_options(direct={'remote_addr': 'hv1', 'netns_ip_command': 'sh'})
    connection.exec_command("/bin/sh -c 'echo \"$HOME\"'", in_data=b'module', sudoable=False)

    argv = shlex.split(seen['cmd'])
    assert argv[0].endswith('/sh')
    assert argv[1:4] == ['netns', 'exec', 'hv1']
    assert argv[5:] == ['-c', "/bin/sh -c 'echo \"$HOME\"'"]
    assert seen['in_data'] == b'module'
    assert seen['sudoable'] is False


@pytest.mark.parametrize('path, expected', [
    ('/etc/network/interfaces.d/br0', '{root}/etc/netns/hv1/network/interfaces.d/br0'),
    ('/etc/network', '{root}/etc/netns/hv1/network'),
    ('/etc/sysctl.d/90-forward.conf', '/etc/sysctl.d/90-forward.conf'),
    ('/etc/only-in-netns', '/etc/only-in-netns'),
    ('/etc', '/etc'),
    ('/var/tmp/x', '/var/tmp/x'),
    ('relative/etc/network', 'relative/etc/network'),
])
def test_controller_path(namespace_root, path, expected):
    connection = make_connection('hv1')
    assert connection._controller_path(path) == expected.format(root=namespace_root)
