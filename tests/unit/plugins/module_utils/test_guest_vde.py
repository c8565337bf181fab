# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""qemu_guest nics[].vde: validation, the -netdev vde argv, the switch check, the unit's order."""

from __future__ import annotations

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._guest import guest_config, guest_plan, guest_unit, qemu

SOCKET = '/run/tuntap-qemu/vde/vde0.ctl'


def nic(**fields):
    record = {'tap': None, 'vde': None, 'mac': None, 'model': 'virtio-net-pci', 'queues': 1}
    record.update(fields)
    return record


def params(nics):
    return {'name': 'vm12', 'state': 'running', 'nics': nics, 'memory': 256, 'cpus': 1,
            'machine': 'q35', 'accel': 'auto', 'kernel': '/etc/hostname', 'initrd': None,
            'append': None, 'disk': None, 'disk_format': None, 'binary': '/usr/bin/qemu-system-x86_64',
            'extra_args': [], 'run_as': None, 'runtime_dir': None, 'restart_on_change': True,
            'stop_timeout': 30}


def test_argv_has_netdev_vde():
    guest, errors = guest_plan.guest_spec(params([nic(vde=SOCKET), nic(tap='tap1')]))
    assert errors == []
    argv = qemu.build_argv(guest, 'tcg', qemu.paths('/run/tuntap-qemu/vm12'))
    joined = ' '.join(argv)
    assert '-netdev vde,id=net0,sock=%s ' % SOCKET in joined
    assert '-device virtio-net-pci,netdev=net0,mac=%s' % guest_config.stable_mac('vm12', 0) in joined
    assert '-netdev tap,id=net1,ifname=tap1,script=no,downscript=no' in joined
    assert guest['nics'][0]['tap'] is None and guest['nics'][1]['vde'] is None


@pytest.mark.parametrize('nics, message', [
    ([nic(tap='tap0', vde=SOCKET)], 'nics[0]: tap and vde are mutually exclusive'),
    ([nic()], 'nics[0]: needs tap (a tap device) or vde'),
    ([nic(vde='vde0.ctl')], "nics[0].vde: 'vde0.ctl' must be the absolute path"),
    ([nic(vde=SOCKET, queues=2)], 'nics[0].queues: a VDE NIC has one queue'),
])
def test_vde_spec_errors(nics, message):
    _guest, errors = guest_plan.guest_spec(params(nics))
    assert any(message in error for error in errors), errors


def test_vde_errors_are_collected_with_the_others():
    """A bad NIC next to other bad input: every error at once."""
    bad = params([nic(tap='tap0', vde=SOCKET), nic(vde=SOCKET, mac='11:22:33:44:55:66')])
    bad['memory'] = 1
    _guest, errors = guest_plan.guest_spec(bad)
    assert len(errors) == 3, errors


@pytest.mark.parametrize('sockets, expected', [
    (set(), ['nics[0].vde: no VDE switch at %s (no control socket %s/ctl); start one first '
             '(tuntap.qemu.vde_switch)' % (SOCKET, SOCKET)]),
    ({SOCKET + '/ctl'}, []),
])
def test_vde_errors(sockets, expected):
    guest, _errors = guest_plan.guest_spec(params([nic(vde=SOCKET), nic(tap='tap1')]))
    assert guest_plan.vde_errors(guest, is_socket=lambda path: path in sockets) == expected


def test_vde_nic_needs_no_tap():
    guest, _errors = guest_plan.guest_spec(params([nic(vde=SOCKET)]))
    assert guest_plan.tap_errors({}, guest, None, None) == []


@pytest.mark.parametrize('vde, ordered', [(True, True), (False, False)])
def test_unit_wants_and_follows_the_switch(vde, ordered):
    files = qemu.paths('/run/tuntap-qemu/vm12')
    text = guest_unit.render_unit('vm12', ['/usr/bin/qemu-system-x86_64'], files, [], vde=vde)
    lines = text.splitlines()
    wants = [line for line in lines if line.startswith('Wants=')]
    after = [line for line in lines if line.startswith('After=')]
    assert ('tuntap-qemu-vde.service' in wants[0].split()) is ordered
    assert ('tuntap-qemu-vde.service' in after[0].split()) is ordered
