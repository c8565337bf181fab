# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test guest boots under QEMU (TCG) on a tap in a namespace and reports its own pings.

Each test gets a fresh network namespace ttq-e2e-<pid>-<n> with a tap at 192.168.0.1/24; the
guest takes 192.168.0.10/24 and pings what its kernel command line names. Results come
only from the guest's serial console. The build and boot times are printed (pytest -s).
QEMU is ended by its own pid and the namespace deleted, also after a failure.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest

LAB_GUEST = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         'lab', 'guest')
sys.path.insert(0, LAB_GUEST)

import build_guest  # noqa: E402  pylint: disable=wrong-import-position
import guest_boot  # noqa: E402  pylint: disable=wrong-import-position

HOST_ADDRESS = '192.168.0.1'
GUEST_ADDRESS = '192.168.0.10/24'
GUEST_MAC = '52:54:00:e2:e0:0a'
BOOT_TIMEOUT = 90
NAMESPACE_NUMBERS = itertools.count()


def run(argv):
    subprocess.run(argv, check=True, env=dict(os.environ, LC_ALL='C'))


@pytest.fixture(scope='session')
def guest():
    if os.geteuid() != 0:
        pytest.fail('the e2e tests create network namespaces and taps: run them as root')
    built = build_guest.build_guest(os.environ.get('TUNTAP_GUEST_CACHE', build_guest.DEFAULT_CACHE_DIR))
    print('\nguest: %s in %.2f s: %s, %s, modules %s' % (
        'cached' if built['cached'] else 'built', built['build_seconds'], built['kernel_package'],
        built['busybox_package'], ' '.join(built['modules'])))
    return built


@pytest.fixture
def tap_namespace():
    """A new namespace with tap0 at 192.168.0.1/24, up; deleted afterwards whatever happened."""
    namespace = 'ttq-e2e-%d-%d' % (os.getpid(), next(NAMESPACE_NUMBERS))
    run(['ip', 'netns', 'add', namespace])
    try:
        run(['ip', '-n', namespace, 'link', 'set', 'lo', 'up'])
        run(['ip', '-n', namespace, 'tuntap', 'add', 'dev', 'tap0', 'mode', 'tap'])
        run(['ip', '-n', namespace, 'address', 'add', HOST_ADDRESS + '/24', 'dev', 'tap0'])
        run(['ip', '-n', namespace, 'link', 'set', 'tap0', 'up'])
        yield namespace
    finally:
        run(['ip', 'netns', 'delete', namespace])


def boot(guest, namespace, tmp_path, **settings):
    """Boot the guest on tap0 of namespace until TTQ-DONE; returns (report, seconds, serial log)."""
    serial_log = str(tmp_path / 'serial.log')
    append = guest_boot.kernel_append('vm1', GUEST_ADDRESS, HOST_ADDRESS, mac=GUEST_MAC, **settings)
    argv = guest_boot.qemu_argv(guest['kernel'], guest['initrd'], append, serial_log,
                                [('tap0', GUEST_MAC)])
    with open(str(tmp_path / 'qemu.out'), 'w') as qemu_output:
        # `ip netns exec` execs QEMU after entering the namespace: this pid is QEMU's.
        qemu = subprocess.Popen(['ip', 'netns', 'exec', namespace] + argv,
                                stdout=qemu_output, stderr=subprocess.STDOUT)
    try:
        report, seconds = guest_boot.wait_for_done(serial_log, BOOT_TIMEOUT, lambda: qemu.poll() is None)
        # After TTQ-DONE the guest powers off; QEMU ends on its own.
        if report['done'] is not None:
            qemu.wait(timeout=15)
    finally:
        if qemu.poll() is None:
            qemu.kill()
            qemu.wait()
    with open(str(tmp_path / 'qemu.out')) as handle:
        qemu_said = handle.read()
    with open(serial_log, errors='replace') if os.path.exists(serial_log) else open(os.devnull) as handle:
        log = handle.read()
    log = '--- command: %s\n--- QEMU exit %s, output:\n%s--- serial log:\n%s' % (
        ' '.join(argv), qemu.returncode, qemu_said, log)
    print('\nboot: QEMU start to TTQ-DONE in %.2f s (guest uptime %s s)' % (
        seconds, (report['done'] or {}).get('uptime')))
    return report, seconds, log


def test_guest_pings_the_host_through_its_tap(guest, tap_namespace, tmp_path):
    report, seconds, log = boot(guest, tap_namespace, tmp_path, ping=[HOST_ADDRESS])
    assert report['done'] is not None, 'no TTQ-DONE within %d s\n%s' % (BOOT_TIMEOUT, log)
    assert report['errors'] == [], log
    assert report['boot']['mac'] == GUEST_MAC and report['boot']['ip'] == GUEST_ADDRESS, log
    result = report['results'].get(HOST_ADDRESS)
    assert result is not None and result['status'] == 'ok', log
    print('vm1 -> %s: %s, %.2f ms (%.2f s from QEMU start)'
          % (HOST_ADDRESS, result['status'], result['rtt_ms'], seconds))


def test_guest_reports_a_target_nobody_answers_as_failed(guest, tap_namespace, tmp_path):
    silent = '192.168.0.99'
    report, _seconds, log = boot(guest, tap_namespace, tmp_path, ping=[HOST_ADDRESS, silent], tries=1)
    assert report['done'] is not None, 'no TTQ-DONE within %d s\n%s' % (BOOT_TIMEOUT, log)
    assert report['results'][HOST_ADDRESS]['status'] == 'ok', log
    assert report['results'][silent]['status'] == 'fail', log
    assert report['results'][silent]['rtt_ms'] is None, log
    assert report['done']['ok'] == '1' and report['done']['fail'] == '1', log


@pytest.mark.parametrize('text, expected', [
    ('', {'boot': None, 'results': {}, 'errors': [], 'done': None}),
    ('[    1.2] virtio_net virtio0 eth0: renamed\r\n'
     'TTQ-BOOT name=vm1 nic=eth0 mac=52:54:00:00:00:01 ip=10.0.0.5/24 uptime=1.91\r\n'
     'TTQ-RESULT name=vm1 target=10.0.0.1 status=ok rtt_ms=4.232 tries=1\n'
     'TTQ-RESULT name=vm1 target=10.0.0.9 status=fail rtt_ms=- tries=5\n'
     'TTQ-DONE name=vm1 ok=1 fail=1 uptime=19.49\n',
     {'boot': {'name': 'vm1', 'nic': 'eth0', 'mac': '52:54:00:00:00:01', 'ip': '10.0.0.5/24', 'uptime': '1.91'},
      'results': {'10.0.0.1': {'name': 'vm1', 'target': '10.0.0.1', 'status': 'ok', 'rtt_ms': 4.232, 'tries': '1'},
                  '10.0.0.9': {'name': 'vm1', 'target': '10.0.0.9', 'status': 'fail', 'rtt_ms': None, 'tries': '5'}},
      'errors': [],
      'done': {'name': 'vm1', 'ok': '1', 'fail': '1', 'uptime': '19.49'}}),
    # A kernel message glued to the front of a line does not hide it; a cut-off line is not read.
    ('[    7.3] reboot: TTQ-ERROR name=vm2 reason=no-nic\nTTQ-DONE name=vm2 ok=0 fa',
     {'boot': None, 'results': {}, 'errors': [{'name': 'vm2', 'reason': 'no-nic'}], 'done': None}),
])
def test_parse_serial(text, expected):
    assert guest_boot.parse_serial(text) == expected


@pytest.mark.parametrize('settings, expected', [
    ({}, 'console=ttyS0 quiet panic=-1 ttq.name=vm1'),
    ({'address': '10.0.0.5/24', 'gateway': '10.0.0.1', 'ping': ['10.0.0.1', '10.0.0.20'],
      'mac': '52:54:00:AB:00:01', 'after': 'stay', 'tries': 2},
     'console=ttyS0 quiet panic=-1 ttq.name=vm1 ttq.ip=10.0.0.5/24 ttq.gw=10.0.0.1 '
     'ttq.ping=10.0.0.1,10.0.0.20 ttq.mac=52:54:00:ab:00:01 ttq.tries=2 ttq.after=stay'),
])
def test_kernel_append(settings, expected):
    assert guest_boot.kernel_append('vm1', **settings) == expected


@pytest.mark.parametrize('settings', [{'address': '10.0.0.5 /24'}, {'after': 'reboot'}])
def test_kernel_append_refuses(settings):
    with pytest.raises(ValueError):
        guest_boot.kernel_append('vm1', **settings)
