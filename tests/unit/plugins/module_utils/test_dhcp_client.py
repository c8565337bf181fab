# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""dhcp_client: a DHCP client recognised by its argv, ifupdown's argv, lease files renamed."""

from __future__ import annotations

import os
import signal

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._links import dhcp_client

IFUPDOWN = ['dhclient', '-4', '-v', '-i', '-pf', '/run/dhclient.eth0.pid', '-lf',
            '/var/lib/dhcp/dhclient.eth0.leases', '-I', '-df', '/var/lib/dhcp/dhclient6.eth0.leases', 'eth0']


@pytest.mark.parametrize('argv, expected', [
    pytest.param(IFUPDOWN, ('dhclient', '/run/dhclient.eth0.pid', '/var/lib/dhcp/dhclient.eth0.leases'),
                 id='ifupdown dhclient'),
    pytest.param(['/sbin/dhclient', 'eth0'], ('dhclient', None, None), id='bare dhclient'),
    pytest.param(['/sbin/dhclient', '-pf', 'eth0', 'br0'], None, id='eth0 is the pid file, not an operand'),
    pytest.param(['/sbin/dhclient', '-4', 'br0'], None, id='another interface'),
    pytest.param(['dhcpcd', '-b', 'eth0'], ('dhcpcd', None, None), id='dhcpcd'),
    pytest.param(['udhcpc', '-n', '-p', '/run/udhcpc.eth0.pid', '-i', 'eth0'],
                 ('udhcpc', '/run/udhcpc.eth0.pid', None), id='udhcpc'),
    pytest.param(['udhcpc', 'eth0'], None, id='udhcpc names its interface after -i'),
    pytest.param(['/usr/bin/ping', 'eth0'], None, id='not a DHCP client'),
    pytest.param([], None, id='kernel thread'),
])
def test_client_of(argv, expected):
    client = dhcp_client.client_of(42, argv, 'eth0')
    if expected is None:
        assert client is None
    else:
        assert (client.program, client.pidfile, client.leasefile) == expected
        assert client.pid == 42 and client.argv == tuple(argv)


def test_ifupdown_argv_is_debian_12s(monkeypatch):
    for name in ('TUNTAP_QEMU_DHCP_RUN_DIR', 'TUNTAP_QEMU_DHCP_LEASE_DIR', 'TUNTAP_QEMU_DHCLIENT_SCRIPT'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('TUNTAP_QEMU_DHCLIENT', 'dhclient')
    # ifupdown 0.8.41 inet.defn, method dhcp, /sbin/dhclient with the default client=yes (-i)
    assert dhcp_client.ifupdown_dhclient_argv('eth0') == IFUPDOWN


def test_argv_overrides_for_tests(monkeypatch, tmp_path):
    monkeypatch.setenv('TUNTAP_QEMU_DHCLIENT', '/sbin/dhclient')
    monkeypatch.setenv('TUNTAP_QEMU_DHCP_RUN_DIR', str(tmp_path / 'run'))
    monkeypatch.setenv('TUNTAP_QEMU_DHCP_LEASE_DIR', str(tmp_path / 'lib'))
    monkeypatch.setenv('TUNTAP_QEMU_DHCLIENT_SCRIPT', '/tmp/script')
    argv = dhcp_client.ifupdown_dhclient_argv('br0')
    assert argv[0] == '/sbin/dhclient' and argv[-3:] == ['-sf', '/tmp/script', 'br0']
    assert argv[argv.index('-pf') + 1] == str(tmp_path / 'run' / 'dhclient.br0.pid')
    assert argv[argv.index('-lf') + 1] == str(tmp_path / 'lib' / 'dhclient.br0.leases')
    assert dhcp_client.client_of(1, argv, 'br0').leasefile == str(tmp_path / 'lib' / 'dhclient.br0.leases')


LEASES = '''default-duid "\\000\\001";
lease {
  interface "eth0";
  fixed-address 10.44.0.50;
  option subnet-mask 255.255.255.0;
  renew 2 2026/12/01 16:00:00;
}
lease {
  interface  "eth0" ;
  fixed-address 10.44.0.50;
}
'''


def test_renamed_leases_change_only_the_interface():
    text = dhcp_client.renamed_leases(LEASES, 'br0')
    assert text.count('interface "br0";') == 1 and text.count('interface  "br0" ;') == 1
    assert 'eth0' not in text
    assert text.replace('br0', 'eth0') == LEASES


def test_copy_leases(tmp_path):
    source, target = tmp_path / 'dhclient.eth0.leases', tmp_path / 'sub' / 'dhclient.br0.leases'
    assert dhcp_client.copy_leases(str(source), str(target), 'br0') is False
    source.write_text(LEASES)
    assert dhcp_client.copy_leases(str(source), str(target), 'br0') is True
    assert target.read_text() == dhcp_client.renamed_leases(LEASES, 'br0')
    assert source.read_text() == LEASES


def fake_proc(tmp_path, processes, netns='net:[1]'):
    proc = tmp_path / 'proc'
    (proc / 'self' / 'ns').mkdir(parents=True)
    os.symlink(netns, str(proc / 'self' / 'ns' / 'net'))
    for pid, (argv, ns) in processes.items():
        (proc / str(pid) / 'ns').mkdir(parents=True)
        (proc / str(pid) / 'cmdline').write_bytes(b''.join(arg.encode() + b'\0' for arg in argv))
        os.symlink(ns, str(proc / str(pid) / 'ns' / 'net'))
    return str(proc)


def test_find_clients_only_of_this_network_namespace(tmp_path):
    proc = fake_proc(tmp_path, {
        10: (IFUPDOWN, 'net:[1]'),
        11: (IFUPDOWN, 'net:[2]'),              # eth0 of another namespace: not ours
        12: (['dhclient', 'br0'], 'net:[1]'),
        13: (['sshd', 'eth0'], 'net:[1]'),
    })
    assert [client.pid for client in dhcp_client.find_clients('eth0', proc)] == [10]
    assert [client.pid for client in dhcp_client.find_clients('br0', proc)] == [12]


def test_stop_checks_the_cmdline_before_the_signal(tmp_path, monkeypatch):
    proc = fake_proc(tmp_path, {10: (['dhclient', 'br0'], 'net:[1]')})
    killed = []
    monkeypatch.setattr(os, 'kill', lambda pid, sig: killed.append((pid, sig)))
    client = dhcp_client.Client(10, tuple(IFUPDOWN), 'dhclient')
    with pytest.raises(dhcp_client.ClientError, match='pid 10 is no longer dhclient pid 10'):
        dhcp_client.stop(client, proc)
    assert killed == []
    gone = dhcp_client.Client(99, tuple(IFUPDOWN), 'dhclient')
    dhcp_client.stop(gone, proc)   # already ended: nothing to do
    assert killed == []
    current = dhcp_client.Client(10, ('dhclient', 'br0'), 'dhclient')
    with pytest.raises(dhcp_client.ClientError, match='did not end'):
        dhcp_client.stop(current, proc, wait=0.05)
    assert killed == [(10, signal.SIGTERM)]
