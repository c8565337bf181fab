# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""End to end with the lab's own code: site.yml converges one hypervisor per topology, two
real guests each, and every expected check succeeds (DHCP leases equal to the plan, DNS
names, pings, port forwards from the peer, the host and the other guest); each result is
read from the guests' own serial consoles (or, for the LAN peer's and the host's checks,
from there)."""

from __future__ import annotations

import os
import sys
import time

import pytest

LAB = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'lab')
sys.path.insert(0, LAB)

import tuntap_lab  # noqa: E402  pylint: disable=wrong-import-position

# Per DHCP guest: its lease, its lookup of the other guest, three pings (the other guest by
# name); per forward: the hairpin fetch of the other guest, the peer's and the host's own.
EXPECTED_ROWS = {'hv1': 14, 'hv2': 16, 'hv3': 16, 'hv4': 9}


@pytest.fixture(scope='module')
def converged_lab():
    if os.geteuid() != 0:
        pytest.fail('the lab creates network namespaces: run the e2e tests as root')
    lab = tuntap_lab.Lab('ttqe%d-' % (os.getpid() % 100000))
    try:
        build = tuntap_lab.build_guest.build_guest()
        lab.up('/usr/bin/python3', build)
        started = time.monotonic()
        rc, changed = lab.converge('site.yml')
        assert rc == 0 and changed > 0
        converged = time.monotonic() - started
        rc, changed = lab.converge('site.yml')
        assert (rc, changed) == (0, 0), 'the second site.yml run must change nothing'
        reports = lab.guest_reports()
        print('guest build %.1f s (%s), site.yml %.1f s, to all guest results %.1f s'
              % (build['build_seconds'], 'cached' if build['cached'] else 'built', converged,
                 time.monotonic() - started))
        yield lab, reports
    finally:
        lab.down()


@pytest.mark.parametrize('hypervisor', sorted(EXPECTED_ROWS))
def test_topology_matrix(converged_lab, hypervisor):
    lab, reports = converged_lab
    title, rows = lab.matrices(reports)[hypervisor]
    ok = lab.print_matrix(title, rows)
    if not ok:
        for guest in lab.hypervisors[hypervisor]['guests']:
            with open(lab.serial_log(guest), errors='replace') as handle:
                print('--- serial log of %s ---\n%s' % (guest['name'], handle.read()))
    assert len(rows) == EXPECTED_ROWS[hypervisor]
    for guest in lab.hypervisors[hypervisor]['guests']:
        report = reports[guest['name']]
        assert report['done'] is not None, '%s never printed TTQ-DONE' % guest['name']
        assert report['done']['fail'] == '0', report
    assert ok, 'some pings of %s failed (matrix above)' % title


def test_routed_nat_needs_its_nat(converged_lab):
    """Without the masquerade, vm3 (routed_nat, no route back on the LAN) still reaches its
    gateway but no longer the LAN peer."""
    lab, _reports = converged_lab
    playbook = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'playbooks', 'routed_nat_without_nat.yml')
    rc, changed = lab.converge(playbook)
    assert rc == 0 and changed >= 2
    vm3 = [guest for guest in lab.hypervisors['hv2']['guests'] if guest['name'] == 'vm3'][0]
    report, _waited = tuntap_lab.guest_boot.wait_for_done(lab.serial_log(vm3), tuntap_lab.GUEST_TIMEOUT)
    assert report['done'] is not None, 'vm3 did not finish after its restart'
    results = report['results']
    assert results['192.168.3.1']['status'] == 'ok', results
    assert results[tuntap_lab.PEER_ADDRESS]['status'] == 'fail', results


def _report(lease_ip='192.168.3.10/24', hostname='vm3', looked_up='192.168.4.10', ping_address='192.168.4.10',
            body='TTQ-HTTP name=vm4', forwarded=tuntap_lab.PEER_ADDRESS):
    """vm3's serial report as guest_boot.parse_serial gives it, everything right by default."""
    ok = {'status': 'ok', 'rtt_ms': 1.0}
    return {
        'lease': {'ip': lease_ip, 'hostname': hostname},
        'lookups': {'vm4.qemu.internal': {'status': 'ok', 'address': looked_up},
                    tuntap_lab.PEER_NAME: {'status': 'ok', 'address': forwarded}},
        'results': {'192.168.3.1': ok, tuntap_lab.PEER_ADDRESS: ok,
                    'vm4.qemu.internal': dict(ok, address=ping_address)},
        'fetches': {'http://10.0.0.12:8004/': {'status': 'ok', 'body': body}},
    }


@pytest.mark.parametrize('report, failing', [
    (_report(), []),
    (_report(lease_ip='192.168.3.77/24'), ['lease']),
    (_report(hostname='guest'), ['lease']),
    (_report(looked_up='192.168.4.99'), ['lookup vm4']),
    # The name outside the zone must come from the LAN's DNS server, through the host's.
    (_report(forwarded='10.0.0.99'), ['lookup peer']),
    # A ping that answered, but of an address other than the plan's, is no proof of the name.
    (_report(ping_address='192.168.4.99'), ['vm4 by name']),
    # The forward reached a listener, but not the guest it names.
    (_report(body='TTQ-HTTP name=vm3'), ['10.0.0.12:8004']),
    ({'results': {}}, ['lease', 'lookup vm4', 'lookup peer', 'gateway', 'vm4 by name', 'peer', '10.0.0.12:8004']),
])
def test_guest_rows_fail_on_what_differs_from_the_plan(report, failing):
    """The rows of a DHCP guest with a forward to its sibling (hv2's vm3): each check compares
    with the plan, and only the rows named fail."""
    hv = tuntap_lab.HYPERVISORS['hv2']
    rows = tuntap_lab.Lab.guest_rows(hv, hv['guests'][0], report)
    assert len(rows) == 7
    failed = [target for _source, target, ok, _latency in rows if not ok]
    assert len(failed) == len(failing) and all(text.startswith(prefix) for text, prefix in zip(failed, failing)), rows
