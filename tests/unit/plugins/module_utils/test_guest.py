# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""qemu_guest logic: MACs, guest network rendering, argv, accelerator choice, plans, tap checks."""

from __future__ import annotations

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._guest import guest_config, guest_plan, qemu


def test_stable_mac_is_stable_unicast_and_distinct():
    macs = [guest_config.stable_mac(guest, index) for guest in ('vm1', 'vm2') for index in range(3)]
    assert macs == [guest_config.stable_mac(guest, index) for guest in ('vm1', 'vm2') for index in range(3)]
    assert len(set(macs)) == len(macs)
    for mac in macs:
        assert mac.startswith('52:54:00:') and len(mac) == 17


@pytest.mark.parametrize('address, gateway, stanza, kernel_ip', [
    ('192.168.0.10/24', '192.168.0.1',
     'auto eth0\niface eth0 inet static\n    address 192.168.0.10/24\n    gateway 192.168.0.1\n',
     'ip=192.168.0.10::192.168.0.1:255.255.255.0:vm1:eth0:off'),
    ('10.0.0.50/16', None,
     'auto eth0\niface eth0 inet static\n    address 10.0.0.50/16\n',
     'ip=10.0.0.50:::255.255.0.0:vm1:eth0:off'),
])
def test_guest_rendering(address, gateway, stanza, kernel_ip):
    network, errors = guest_config.guest_network('guests[0]', address, gateway)
    assert errors == []
    assert guest_config.render_interfaces_stanza(network) == stanza
    assert guest_config.render_kernel_ip(network, 'vm1') == kernel_ip


@pytest.mark.parametrize('address, gateway, message', [
    ('192.168.0.10/24', '192.168.1.1', 'guests[0].gateway: 192.168.1.1 is outside the guest subnet 192.168.0.0/24'),
    ('192.168.0.10/24', '192.168.0.10', 'is the guest address itself'),
    ('192.168.0.10/24', 'gw', "guests[0].gateway: 'gw' is not an IP address"),
    ('192.168.0.10', None, "guests[0].address: '192.168.0.10' is not an interface address"),
])
def test_guest_network_errors(address, gateway, message):
    _network, errors = guest_config.guest_network('guests[0]', address, gateway)
    assert any(message in error for error in errors), errors


def test_kernel_ip_refuses_ipv6():
    network, _errors = guest_config.guest_network('g', 'fd00::10/64', 'fd00::1')
    with pytest.raises(ValueError):
        guest_config.render_kernel_ip(network)


def params(**overrides):
    base = {'name': 'vm1', 'state': 'running', 'nics': [{'tap': 'tap0', 'mac': None, 'model': 'virtio-net-pci', 'queues': 1}],
            'memory': 256, 'cpus': 1, 'machine': 'q35', 'accel': 'auto', 'kernel': '/etc/hostname',
            'initrd': None, 'append': 'console=ttyS0', 'disk': None, 'disk_format': None,
            'binary': '/usr/bin/qemu-system-x86_64', 'extra_args': [], 'run_as': None,
            'runtime_dir': None, 'restart_on_change': True, 'stop_timeout': 30}
    base.update(overrides)
    return base


def test_argv_uses_netdev_tap_and_device():
    guest, errors = guest_plan.guest_spec(params())
    assert errors == []
    files = qemu.paths('/run/tuntap-qemu/vm1')
    argv = qemu.build_argv(guest, 'tcg', files)
    mac = guest_config.stable_mac('vm1', 0)
    assert argv[0] == '/usr/bin/qemu-system-x86_64'
    joined = ' '.join(argv)
    assert '-netdev tap,id=net0,ifname=tap0,script=no,downscript=no' in joined
    assert '-device virtio-net-pci,netdev=net0,mac=%s' % mac in joined
    assert '-accel tcg' in joined and '-daemonize' in joined and '-display none' in joined
    assert '-nographic' not in joined and 'vlan=' not in joined and '-net ' not in joined
    assert '-pidfile /run/tuntap-qemu/vm1/qemu.pid' in joined
    assert '-qmp unix:/run/tuntap-qemu/vm1/qmp.sock,server=on,wait=off' in joined
    assert argv[argv.index('-name') + 1].startswith('guest=vm1,')


@pytest.mark.parametrize('overrides, message', [
    ({'nics': []}, 'nics: a running guest needs at least one NIC'),
    ({'nics': [{'tap': 'tap0', 'mac': '11:22:33:44:55:66', 'model': 'virtio-net-pci', 'queues': 1}]},
     "nics[0].mac: '11:22:33:44:55:66' is a multicast MAC"),
    ({'kernel': '/nonexistent/vmlinuz'}, 'kernel: /nonexistent/vmlinuz does not exist'),
    ({'kernel': None, 'append': None}, 'kernel or disk: a running guest needs'),
    ({'disk': '/nonexistent.qcow2'}, 'disk: /nonexistent.qcow2 does not exist'),
    ({'name': 'bad name'}, "name: 'bad name' must be"),
    ({'memory': 1}, 'memory: 1 MiB is outside'),
    ({'nics': [{'tap': 'tap0', 'mac': None, 'model': 'e1000', 'queues': 1},
               {'tap': 'tap0', 'mac': None, 'model': 'e1000', 'queues': 1}]}, "nics[].tap[1]: 'tap0' is listed twice"),
    ({'nics': [{'tap': 'tap/0', 'mac': None, 'model': 'e1000', 'queues': 1}]}, "nics[0].tap: interface name 'tap/0'"),
])
def test_guest_spec_errors(overrides, message):
    _guest, errors = guest_plan.guest_spec(params(**overrides))
    assert any(message in error for error in errors), errors


def tap(name, **fields):
    record = {'name': name, 'kind': 'tun', 'mode': 'tap', 'state': 'up', 'operstate': 'down',
              'owner': None, 'group': None, 'multi_queue': False}
    record.update(fields)
    return record


@pytest.mark.parametrize('snapshot, run_as, own_pid, message', [
    ({}, None, None, "nics[0].tap: tap 'tap0' does not exist; create it first"),
    ({'tap0': tap('tap0', kind='veth', mode=None)}, None, None, "'tap0' is a veth, not a tap device"),
    ({'tap0': tap('tap0', mode='tun')}, None, None, "'tap0' is a tun, not a tap device"),
    ({'tap0': tap('tap0', state='down')}, None, None, "tap 'tap0' is down"),
    ({'tap0': tap('tap0', operstate='unknown')}, None, None, "tap 'tap0' is already in use by another process"),
    # The carrier, when read, wins over an operstate that has not caught up yet.
    ({'tap0': tap('tap0', carrier=True)}, None, None, "tap 'tap0' is already in use by another process"),
    ({'tap0': tap('tap0', owner=1000)}, (1001, 1001, []), None, "belongs to uid 1000 / gid None; user 1001 may not open it"),
    ({'tap0': tap('tap0')}, (1001, 1001, []), None, 'has no owner or group, so only root may open it'),
])
def test_tap_errors(snapshot, run_as, own_pid, message):
    guest, _errors = guest_plan.guest_spec(params())
    errors = guest_plan.tap_errors(snapshot, guest, run_as, own_pid)
    assert any(message in error for error in errors), errors


@pytest.mark.parametrize('snapshot, run_as, own_pid', [
    ({'tap0': tap('tap0')}, None, None),
    ({'tap0': tap('tap0', owner=1000)}, (1000, 1000, []), None),
    ({'tap0': tap('tap0', group=50)}, (1000, 1000, [50]), None),
    ({'tap0': tap('tap0', operstate='unknown')}, None, 4242),  # held by our own guest (restart)
    ({'tap0': tap('tap0', operstate='unknown', carrier=False)}, None, None),  # just let go
])
def test_tap_ok(snapshot, run_as, own_pid):
    guest, _errors = guest_plan.guest_spec(params())
    assert guest_plan.tap_errors(snapshot, guest, run_as, own_pid) == []


@pytest.mark.parametrize('desired, observed_state, observed_argv, action', [
    ('running', 'stopped', None, 'start'),
    ('running', 'running', ['a'], None),
    ('running', 'running', ['b'], 'restart'),
    ('running', 'running', None, None),
    ('running', 'unresponsive', ['a'], 'restart'),
    ('stopped', 'running', ['a'], 'stop'),
    ('stopped', 'stopped', ['a'], None),
    ('absent', 'stopped', None, 'remove'),
])
def test_plan_action(desired, observed_state, observed_argv, action):
    observed = {'state': observed_state, 'argv': observed_argv, 'pid': None}
    assert guest_plan.plan_action(desired, observed, ['a']) == action


@pytest.mark.parametrize('requested, usable, expected', [
    ('tcg', True, 'tcg'),
    ('auto', True, 'kvm'),
    ('auto', False, 'tcg'),
    ('kvm', True, 'kvm'),
])
def test_choose_accel(requested, usable, expected):
    assert qemu.choose_accel(requested, lambda: (usable, 'why'))[0] == expected


def test_kvm_requested_but_unusable_is_an_error():
    with pytest.raises(qemu.QemuError, match='accel: kvm was requested but KVM is not usable here: no vmx'):
        qemu.choose_accel('kvm', lambda: (False, 'no vmx'))


def test_kvm_usable_reads_cpu_flags(tmp_path):
    dev = tmp_path / 'kvm'
    dev.write_text('')
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text('processor : 0\nflags : fpu sse2 hypervisor\n')
    assert qemu.kvm_usable(str(dev), str(cpuinfo)) == (False, 'the CPU flags have neither vmx nor svm')
    cpuinfo.write_text('processor : 0\nflags : fpu vmx sse2\n')
    assert qemu.kvm_usable(str(dev), str(cpuinfo)) == (True, 'usable')
    assert qemu.kvm_usable(str(tmp_path / 'none'), str(cpuinfo))[0] is False
