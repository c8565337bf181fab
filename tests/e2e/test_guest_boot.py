# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test guest boots under QEMU (TCG) on a tap in a namespace and reports its own pings.

Each test gets a fresh network namespace ttq-e2e-<pid>-<n> with a tap at 192.168.0.1/24; the
guest takes 192.168.0.10/24 and pings what its kernel command line names. Results come
only from the guest's serial console. The build and boot times are printed (pytest -s).
QEMU is ended by its own pid and the namespace deleted, also after a failure.

The DHCP mode: two guests on a bridge of such a namespace, served by a dnsmasq started
here (by its pid) with a static lease and a name for each; they report the lease, look
each other up, ping by name, and one fetches the other's HTTP listener.

IPv6: a guest with a static IPv6 address (ttq.ip6, ttq.gw6) and one that takes its address by
SLAAC from a dnsmasq sending router advertisements (enable-ra) on the tap; both ping the
host's IPv6 address over IPv6 and report ip6=.

Must-fail pings (ttq.unreach, issue 13's isolation rows): a target nobody answers is reported
blocked after one short try, one that answers reached; both with the guest's clock.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time

import netaddr
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


def start_qemu(guest, namespace, folder, append, tap, mac):
    """QEMU of the guest on `tap` of namespace, serial log and output in folder; returns
    (process, serial log, argv)."""
    serial_log = os.path.join(folder, 'serial.log')
    argv = guest_boot.qemu_argv(guest['kernel'], guest['initrd'], append, serial_log, [(tap, mac)])
    with open(os.path.join(folder, 'qemu.out'), 'w') as qemu_output:
        # `ip netns exec` execs QEMU after entering the namespace: this pid is QEMU's.
        qemu = subprocess.Popen(['ip', 'netns', 'exec', namespace] + argv,
                                stdout=qemu_output, stderr=subprocess.STDOUT)
    return qemu, serial_log, argv


def stop_qemu(qemu, report):
    """After TTQ-DONE the guest powers off and QEMU ends on its own; else it is killed."""
    try:
        if report is not None and report['done'] is not None:
            qemu.wait(timeout=15)
    finally:
        if qemu.poll() is None:
            qemu.kill()
            qemu.wait()


def boot_log(folder, serial_log, argv, qemu):
    with open(os.path.join(folder, 'qemu.out')) as handle:
        qemu_said = handle.read()
    with open(serial_log, errors='replace') if os.path.exists(serial_log) else open(os.devnull) as handle:
        log = handle.read()
    return '--- command: %s\n--- QEMU exit %s, output:\n%s--- serial log:\n%s' % (
        ' '.join(argv), qemu.returncode, qemu_said, log)


def boot(guest, namespace, tmp_path, **settings):
    """Boot the guest on tap0 of namespace until TTQ-DONE; returns (report, seconds, serial log)."""
    append = guest_boot.kernel_append('vm1', GUEST_ADDRESS, HOST_ADDRESS, mac=GUEST_MAC, **settings)
    qemu, serial_log, argv = start_qemu(guest, namespace, str(tmp_path), append, 'tap0', GUEST_MAC)
    report = None
    try:
        report, seconds = guest_boot.wait_for_done(serial_log, BOOT_TIMEOUT, lambda: qemu.poll() is None)
    finally:
        stop_qemu(qemu, report)
    log = boot_log(str(tmp_path), serial_log, argv, qemu)
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


def test_guest_reports_a_must_fail_target_as_blocked_only_when_nothing_answers(guest, tap_namespace, tmp_path):
    """ttq.unreach: one short try per target, after ttq.unreach_after seconds of uptime; a
    target nobody answers is blocked (counted ok), the host that answers is reached (counted
    as a failure); each result carries the guest's clock, which TTQ-BOOT has too."""
    silent = '192.168.0.99'
    report, _seconds, log = boot(guest, tap_namespace, tmp_path, ping=[HOST_ADDRESS], unreach=[silent, HOST_ADDRESS],
                                 unreach_after=5)
    assert report['done'] is not None, 'no TTQ-DONE within %d s\n%s' % (BOOT_TIMEOUT, log)
    assert report['results'][HOST_ADDRESS]['status'] == 'ok', log
    assert report['unreach'][silent]['status'] == 'blocked' and report['unreach'][silent]['rtt_ms'] is None, log
    assert report['unreach'][HOST_ADDRESS]['status'] == 'reached', log
    assert report['unreach'][HOST_ADDRESS]['rtt_ms'] is not None, log
    assert report['done']['ok'] == '2' and report['done']['fail'] == '1', log
    booted = int(report['boot']['clock'])
    # The guest's clock is the host's (QEMU's RTC), in whole seconds.
    assert abs(booted - time.time()) < 120, (booted, time.time(), log)
    assert int(report['unreach'][silent]['clock']) >= booted, log
    assert float(report['done']['uptime']) >= 5, log


def test_guest_reports_a_target_nobody_answers_as_failed(guest, tap_namespace, tmp_path):
    silent = '192.168.0.99'
    report, _seconds, log = boot(guest, tap_namespace, tmp_path, ping=[HOST_ADDRESS, silent], tries=1)
    assert report['done'] is not None, 'no TTQ-DONE within %d s\n%s' % (BOOT_TIMEOUT, log)
    assert report['results'][HOST_ADDRESS]['status'] == 'ok', log
    assert report['results'][silent]['status'] == 'fail', log
    assert report['results'][silent]['rtt_ms'] is None, log
    assert report['done']['ok'] == '1' and report['done']['fail'] == '1', log


# The DHCP test's bridge network: dnsmasq on br0 leases each guest its address and name.
DHCP_HOST = '192.168.5.1'
DHCP_GUESTS = [  # (name, MAC, address, tap)
    ('vm5', '52:54:00:e2:e0:05', '192.168.5.10', 'tap0'),
    ('vm6', '52:54:00:e2:e0:06', '192.168.5.11', 'tap1'),
]
DOMAIN = 'qemu.internal'


@pytest.fixture
def dhcp_bridge(tmp_path):
    """A new namespace with br0 at 192.168.5.1/24 and tap0, tap1 in it, and a dnsmasq bound
    to br0 with the static leases and names of DHCP_GUESTS (no DNS forwarding); dnsmasq is
    ended by its pid and the namespace deleted afterwards whatever happened."""
    namespace = 'ttq-e2e-%d-%d' % (os.getpid(), next(NAMESPACE_NUMBERS))
    run(['ip', 'netns', 'add', namespace])
    dnsmasq = None
    try:
        run(['ip', '-n', namespace, 'link', 'set', 'lo', 'up'])
        run(['ip', '-n', namespace, 'link', 'add', 'br0', 'type', 'bridge'])
        run(['ip', '-n', namespace, 'address', 'add', DHCP_HOST + '/24', 'dev', 'br0'])
        run(['ip', '-n', namespace, 'link', 'set', 'br0', 'up'])
        for _name, _mac, _address, tap in DHCP_GUESTS:
            run(['ip', '-n', namespace, 'tuntap', 'add', 'dev', tap, 'mode', 'tap'])
            run(['ip', '-n', namespace, 'link', 'set', tap, 'master', 'br0', 'up'])
        hosts = tmp_path / 'hosts'
        hosts.write_text(''.join('%s %s.%s %s\n' % (address, name, DOMAIN, name)
                                 for name, _mac, address, _tap in DHCP_GUESTS))
        argv = ['dnsmasq', '--no-daemon', '--bind-interfaces', '--interface=br0', '--except-interface=lo',
                '--dhcp-range=192.168.5.0,static,255.255.255.0', '--port=53', '--no-resolv', '--no-hosts',
                '--addn-hosts=%s' % hosts, '--domain=%s' % DOMAIN, '--local=/%s/' % DOMAIN,
                '--dhcp-leasefile=%s' % (tmp_path / 'leases'), '--pid-file=%s' % (tmp_path / 'dnsmasq.pid')]
        argv += ['--dhcp-host=%s,%s,%s' % (mac, address, name) for name, mac, address, _tap in DHCP_GUESTS]
        with open(str(tmp_path / 'dnsmasq.out'), 'w') as output:
            # `ip netns exec` execs dnsmasq: this pid is dnsmasq's (--no-daemon: it stays).
            dnsmasq = subprocess.Popen(['ip', 'netns', 'exec', namespace] + argv,
                                       stdout=output, stderr=subprocess.STDOUT)
        time.sleep(0.5)
        assert dnsmasq.poll() is None, (tmp_path / 'dnsmasq.out').read_text()
        yield namespace
    finally:
        if dnsmasq is not None and dnsmasq.poll() is None:
            dnsmasq.terminate()
            dnsmasq.wait(timeout=10)
        run(['ip', 'netns', 'delete', namespace])


def test_dhcp_guests_lease_look_up_ping_by_name_and_fetch(guest, dhcp_bridge, tmp_path):
    """Neither guest is given an address or a name: both come from the lease. vm6 listens;
    vm5 looks vm6 up, pings it by name, fetches its page, and looks up a name nobody has."""
    (vm5, mac5, address5, tap5), (vm6, mac6, address6, tap6) = DHCP_GUESTS
    settings = {
        vm5: dict(ping=[DHCP_HOST, '%s.%s' % (vm6, DOMAIN)], lookup=['%s.%s' % (vm6, DOMAIN), 'nobody.%s' % DOMAIN],
                  fetch=['http://%s:8080/' % address6], tries=2),
        vm6: dict(ping=[DHCP_HOST], listen=8080, after='stay'),
    }
    processes = {}
    reports = {}
    try:
        for name, mac, _address, tap in ((vm6, mac6, address6, tap6), (vm5, mac5, address5, tap5)):
            folder = tmp_path / name
            folder.mkdir()
            append = guest_boot.kernel_append(None, mac=mac, **settings[name])
            processes[name] = start_qemu(guest, dhcp_bridge, str(folder), append, tap, mac) + (str(folder),)
        qemu, serial_log, _argv, _folder = processes[vm5]
        reports[vm5], seconds = guest_boot.wait_for_done(serial_log, BOOT_TIMEOUT, lambda: qemu.poll() is None)
        qemu, serial_log, _argv, _folder = processes[vm6]
        # vm6 stays up (its listener) and is killed below; its report is complete by now.
        reports[vm6], _seconds = guest_boot.wait_for_done(serial_log, 10, lambda: qemu.poll() is None)
    finally:
        for name, (qemu, _serial_log, _argv, _folder) in processes.items():
            stop_qemu(qemu, reports.get(name) if name == vm5 else None)
    log = '\n'.join(boot_log(folder, serial_log, argv, qemu)
                    for qemu, serial_log, argv, folder in processes.values())
    print('\ndhcp: vm5 from QEMU start to TTQ-DONE in %.2f s' % seconds)
    for name, mac, address, _tap in DHCP_GUESTS:
        report = reports[name]
        assert report['done'] is not None, '%s: no TTQ-DONE\n%s' % (name, log)
        assert report['lease'] == {'name': name, 'ip': address + '/24', 'router': DHCP_HOST, 'dns': DHCP_HOST,
                                   'hostname': name, 'domain': DOMAIN}, log
        assert report['boot']['name'] == name and report['boot']['ip'] == address + '/24', log
        assert report['results'][DHCP_HOST]['status'] == 'ok', log
    assert reports[vm6]['listen'] == {'name': vm6, 'port': '8080', 'status': 'ok'}, log
    report = reports[vm5]
    assert report['lookups']['%s.%s' % (vm6, DOMAIN)]['address'] == address6, log
    assert report['lookups']['nobody.%s' % DOMAIN]['status'] == 'fail', log
    by_name = report['results']['%s.%s' % (vm6, DOMAIN)]
    assert by_name['status'] == 'ok' and by_name['address'] == address6, log
    fetched = report['fetches']['http://%s:8080/' % address6]
    assert fetched['status'] == 'ok' and fetched['body'] == 'TTQ-HTTP name=%s' % vm6, log
    # The unknown name is the one failed check.
    assert report['done']['fail'] == '1' and report['errors'] == [], log


HOST_ADDRESS6 = 'fd00:99::1'


def add_host_address6(namespace, address):
    """address (ADDRESS/PREFIX) on tap0 of namespace, and no duplicate address detection on
    tap0 (its link-local address is usable as soon as the guest's QEMU gives it a carrier)."""
    run(['ip', 'netns', 'exec', namespace, 'sysctl', '-q', '-w', 'net.ipv6.conf.tap0.accept_dad=0'])
    run(['ip', '-n', namespace, 'address', 'add', address, 'dev', 'tap0', 'nodad'])


def test_guest_with_a_static_ipv6_address_pings_the_host_over_ipv6(guest, tap_namespace, tmp_path):
    add_host_address6(tap_namespace, HOST_ADDRESS6 + '/64')
    silent = 'fd00:99::99'
    report, _seconds, log = boot(guest, tap_namespace, tmp_path, address6='fd00:99::10/64',
                                 gateway6=HOST_ADDRESS6, ping=[HOST_ADDRESS, HOST_ADDRESS6, silent], tries=1)
    assert report['done'] is not None, 'no TTQ-DONE within %d s\n%s' % (BOOT_TIMEOUT, log)
    assert report['errors'] == [], log
    assert report['boot']['ip'] == GUEST_ADDRESS and report['boot']['ip6'] == 'fd00:99::10/64', log
    assert report['boot']['ip6_wait'] == '-', log
    assert report['results'][HOST_ADDRESS]['status'] == 'ok', log
    assert report['results'][HOST_ADDRESS6]['status'] == 'ok', log
    # An IPv6 address nobody has fails: the row can fail.
    assert report['results'][silent]['status'] == 'fail', log
    assert report['done']['ok'] == '2' and report['done']['fail'] == '1', log


@pytest.fixture
def router_advertisements(tap_namespace, tmp_path):
    """fd00:98::1/64 on tap0 of tap_namespace and a dnsmasq there that only advertises the
    prefix (enable-ra, an RA-only range; no DHCP, no DNS), ended by the pid of its pidfile's
    process (started here) afterwards whatever happened."""
    add_host_address6(tap_namespace, 'fd00:98::1/64')
    pidfile = tmp_path / 'dnsmasq.pid'
    argv = ['dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--bind-interfaces', '--interface=tap0',
            '--except-interface=lo', '--port=0', '--enable-ra', '--dhcp-range=::,constructor:tap0,ra-only',
            '--pid-file=%s' % pidfile]
    with open(str(tmp_path / 'dnsmasq.out'), 'w') as output:
        # `ip netns exec` execs dnsmasq: this pid is dnsmasq's (--no-daemon: it stays).
        dnsmasq = subprocess.Popen(['ip', 'netns', 'exec', tap_namespace] + argv,
                                   stdout=output, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.5)
        assert dnsmasq.poll() is None, (tmp_path / 'dnsmasq.out').read_text()
        yield 'fd00:98::'
    finally:
        if dnsmasq.poll() is None:
            dnsmasq.terminate()
            dnsmasq.wait(timeout=10)


def test_guest_takes_its_ipv6_address_by_slaac(guest, tap_namespace, router_advertisements, tmp_path):
    """No ttq.ip6: the guest waits for the address SLAAC makes from the router advertisement,
    the EUI-64 of its MAC in the advertised /64, and pings the host's address from it."""
    expected = '%s/64' % netaddr.EUI(GUEST_MAC).ipv6(netaddr.IPAddress(router_advertisements))
    report, _seconds, log = boot(guest, tap_namespace, tmp_path, ping=['fd00:98::1'])
    assert report['done'] is not None, 'no TTQ-DONE within %d s\n%s' % (BOOT_TIMEOUT, log)
    assert report['errors'] == [], log
    assert report['boot']['ip6'] == expected, log
    # An IPv6 ping target makes the guest wait for SLAAC (10 s at most).
    assert float(report['boot']['ip6_wait']) < 10, log
    assert report['results']['fd00:98::1']['status'] == 'ok', log
    print('vm1 SLAAC %s after %s s' % (report['boot']['ip6'], report['boot']['ip6_wait']))


def test_guest_without_router_advertisements_reports_no_ipv6_address(guest, tap_namespace, tmp_path):
    """No ttq.ip6 and nobody advertising: the guest waits ttq.ip6_wait seconds, then ip6=-."""
    report, _seconds, log = boot(guest, tap_namespace, tmp_path, ping=[HOST_ADDRESS], ip6_wait=2)
    assert report['done'] is not None, 'no TTQ-DONE within %d s\n%s' % (BOOT_TIMEOUT, log)
    assert report['boot']['ip6'] == '-' and float(report['boot']['ip6_wait']) >= 2, log
    assert report['results'][HOST_ADDRESS]['status'] == 'ok', log


def test_guest_without_a_dhcp_answer_reports_no_lease(guest, tap_namespace, tmp_path):
    """No address on the command line and no DHCP server: reason=no-lease, named guest."""
    append = guest_boot.kernel_append(None, mac=GUEST_MAC, ping=[HOST_ADDRESS], tries=1, dhcp_tries=3)
    qemu, serial_log, argv = start_qemu(guest, tap_namespace, str(tmp_path), append, 'tap0', GUEST_MAC)
    report = None
    try:
        report, _seconds = guest_boot.wait_for_done(serial_log, BOOT_TIMEOUT, lambda: qemu.poll() is None)
    finally:
        stop_qemu(qemu, report)
    log = boot_log(str(tmp_path), serial_log, argv, qemu)
    assert report['done'] is not None, log
    assert report['lease'] is None and report['errors'] == [{'name': 'guest', 'reason': 'no-lease'}], log
    assert report['boot']['ip'] == 'none' and report['results'][HOST_ADDRESS]['status'] == 'fail', log


EMPTY_REPORT = {'lease': None, 'boot': None, 'listen': None, 'lookups': {}, 'results': {}, 'fetches': {},
                'unreach': {}, 'errors': [], 'done': None}


@pytest.mark.parametrize('text, expected', [
    ('', EMPTY_REPORT),
    # IPv6 fields: a SLAAC address and the seconds waited for it; a ping over IPv6.
    ('TTQ-BOOT name=vm1 nic=eth0 mac=52:54:00:00:00:01 ip=10.0.0.5/24 uptime=1.91 '
     'ip6=fd00:1::5054:ff:fe00:1/64 ip6_wait=1.20\n'
     'TTQ-RESULT name=vm1 target=fd00:1::1 status=ok rtt_ms=0.5 tries=1\n',
     dict(EMPTY_REPORT,
          boot={'name': 'vm1', 'nic': 'eth0', 'mac': '52:54:00:00:00:01', 'ip': '10.0.0.5/24', 'uptime': '1.91',
                'ip6': 'fd00:1::5054:ff:fe00:1/64', 'ip6_wait': '1.20'},
          results={'fd00:1::1': {'name': 'vm1', 'target': 'fd00:1::1', 'status': 'ok', 'rtt_ms': 0.5,
                                 'tries': '1'}})),
    ('[    1.2] virtio_net virtio0 eth0: renamed\r\n'
     'TTQ-BOOT name=vm1 nic=eth0 mac=52:54:00:00:00:01 ip=10.0.0.5/24 uptime=1.91\r\n'
     'TTQ-RESULT name=vm1 target=10.0.0.1 status=ok rtt_ms=4.232 tries=1\n'
     'TTQ-RESULT name=vm1 target=10.0.0.9 status=fail rtt_ms=- tries=5\n'
     'TTQ-DONE name=vm1 ok=1 fail=1 uptime=19.49\n',
     dict(EMPTY_REPORT,
          boot={'name': 'vm1', 'nic': 'eth0', 'mac': '52:54:00:00:00:01', 'ip': '10.0.0.5/24', 'uptime': '1.91'},
          results={'10.0.0.1': {'name': 'vm1', 'target': '10.0.0.1', 'status': 'ok', 'rtt_ms': 4.232, 'tries': '1'},
                   '10.0.0.9': {'name': 'vm1', 'target': '10.0.0.9', 'status': 'fail', 'rtt_ms': None, 'tries': '5'}},
          done={'name': 'vm1', 'ok': '1', 'fail': '1', 'uptime': '19.49'})),
    # Must-fail pings (ttq.unreach): blocked, or reached with its round trip; the clocks.
    ('TTQ-BOOT name=vm10 nic=eth0 mac=52:54:00:00:00:0a ip=192.168.9.11/24 uptime=3.10 ip6=- ip6_wait=0.00 '
     'clock=1796176755\n'
     'TTQ-UNREACH name=vm10 target=192.168.9.12 status=blocked rtt_ms=- clock=1796176770\n'
     'TTQ-UNREACH name=vm10 target=10.0.0.20 status=reached rtt_ms=0.8 clock=1796176772\n',
     dict(EMPTY_REPORT,
          boot={'name': 'vm10', 'nic': 'eth0', 'mac': '52:54:00:00:00:0a', 'ip': '192.168.9.11/24', 'uptime': '3.10',
                'ip6': '-', 'ip6_wait': '0.00', 'clock': '1796176755'},
          unreach={'192.168.9.12': {'name': 'vm10', 'target': '192.168.9.12', 'status': 'blocked', 'rtt_ms': None,
                                    'clock': '1796176770'},
                   '10.0.0.20': {'name': 'vm10', 'target': '10.0.0.20', 'status': 'reached', 'rtt_ms': 0.8,
                                 'clock': '1796176772'}})),
    # A kernel message glued to the front of a line does not hide it; a cut-off line is not read.
    ('[    7.3] reboot: TTQ-ERROR name=vm2 reason=no-nic\nTTQ-DONE name=vm2 ok=0 fa',
     dict(EMPTY_REPORT, errors=[{'name': 'vm2', 'reason': 'no-nic'}])),
    # DHCP mode: the lease, the listener, a lookup, a ping by name, a fetch (body %-decoded).
    ('TTQ-LEASE name=vm3 ip=192.168.3.10/24 router=192.168.3.1 dns=192.168.3.1 hostname=vm3 domain=qemu.internal\n'
     'TTQ-LISTEN name=vm3 port=80 status=ok\n'
     'TTQ-LOOKUP name=vm3 query=vm4.qemu.internal address=192.168.4.10 status=ok tries=1\n'
     'TTQ-LOOKUP name=vm3 query=vm9.qemu.internal address=- status=fail tries=5\n'
     'TTQ-RESULT name=vm3 target=vm4.qemu.internal status=ok rtt_ms=1.5 tries=1 address=192.168.4.10\n'
     'TTQ-FETCH name=vm3 url=http://10.0.0.12:8004/ status=ok tries=2 body=TTQ-HTTP%20name=vm4%2525\n'
     'TTQ-FETCH name=vm3 url=http://10.0.0.12:9/ status=fail tries=10 body=\n',
     dict(EMPTY_REPORT,
          lease={'name': 'vm3', 'ip': '192.168.3.10/24', 'router': '192.168.3.1', 'dns': '192.168.3.1',
                 'hostname': 'vm3', 'domain': 'qemu.internal'},
          listen={'name': 'vm3', 'port': '80', 'status': 'ok'},
          lookups={'vm4.qemu.internal': {'name': 'vm3', 'query': 'vm4.qemu.internal', 'address': '192.168.4.10',
                                         'status': 'ok', 'tries': '1'},
                   'vm9.qemu.internal': {'name': 'vm3', 'query': 'vm9.qemu.internal', 'address': '-',
                                         'status': 'fail', 'tries': '5'}},
          results={'vm4.qemu.internal': {'name': 'vm3', 'target': 'vm4.qemu.internal', 'status': 'ok',
                                         'rtt_ms': 1.5, 'tries': '1', 'address': '192.168.4.10'}},
          fetches={'http://10.0.0.12:8004/': {'name': 'vm3', 'url': 'http://10.0.0.12:8004/', 'status': 'ok',
                                              'tries': '2', 'body': 'TTQ-HTTP name=vm4%25'},
                   'http://10.0.0.12:9/': {'name': 'vm3', 'url': 'http://10.0.0.12:9/', 'status': 'fail',
                                           'tries': '10', 'body': ''}})),
])
def test_parse_serial(text, expected):
    assert guest_boot.parse_serial(text) == expected


@pytest.mark.parametrize('settings, expected', [
    ({}, 'console=ttyS0 quiet panic=-1 ttq.name=vm1'),
    ({'lookup': ['vm2.qemu.internal', 'vm3.qemu.internal'], 'listen': 80, 'fetch': ['http://10.0.0.12:8004/']},
     'console=ttyS0 quiet panic=-1 ttq.name=vm1 ttq.lookup=vm2.qemu.internal,vm3.qemu.internal '
     'ttq.listen=80 ttq.fetch=http://10.0.0.12:8004/'),
    ({'address': '10.0.0.5/24', 'gateway': '10.0.0.1', 'ping': ['10.0.0.1', '10.0.0.20'],
      'mac': '52:54:00:AB:00:01', 'after': 'stay', 'tries': 2},
     'console=ttyS0 quiet panic=-1 ttq.name=vm1 ttq.ip=10.0.0.5/24 ttq.gw=10.0.0.1 '
     'ttq.ping=10.0.0.1,10.0.0.20 ttq.mac=52:54:00:ab:00:01 ttq.tries=2 ttq.after=stay'),
    ({'address6': 'fd00:1::10/64', 'gateway6': 'fd00:1::1', 'ping': ['fd00:1::1']},
     'console=ttyS0 quiet panic=-1 ttq.name=vm1 ttq.ip6=fd00:1::10/64 ttq.gw6=fd00:1::1 ttq.ping=fd00:1::1'),
    ({'ip6_wait': 3}, 'console=ttyS0 quiet panic=-1 ttq.name=vm1 ttq.ip6_wait=3'),
    ({'ping': ['192.168.9.1'], 'unreach': ['192.168.9.12', 'fd00:10::20'], 'unreach_after': 20},
     'console=ttyS0 quiet panic=-1 ttq.name=vm1 ttq.ping=192.168.9.1 ttq.unreach=192.168.9.12,fd00:10::20 '
     'ttq.unreach_after=20'),
])
def test_kernel_append(settings, expected):
    assert guest_boot.kernel_append('vm1', **settings) == expected


def test_kernel_append_leaves_name_and_address_to_dhcp():
    assert guest_boot.kernel_append(None, ping=['vm2.qemu.internal'], dhcp_tries=3) == \
        'console=ttyS0 quiet panic=-1 ttq.ping=vm2.qemu.internal ttq.dhcp_tries=3'


@pytest.mark.parametrize('settings', [{'address': '10.0.0.5 /24'}, {'address6': 'fd00:1::10 /64'},
                                      {'after': 'reboot'}])
def test_kernel_append_refuses(settings):
    with pytest.raises(ValueError):
        guest_boot.kernel_append('vm1', **settings)
