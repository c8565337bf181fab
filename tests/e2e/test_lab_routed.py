# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""End to end with the lab's own code: two real guests on two taps of one hypervisor
namespace, set up by the collection's modules through Ansible, routed through the host to
each other and to the LAN peer. Every result is read from the guests' own serial consoles."""

from __future__ import annotations

import os
import sys
import time

import pytest

LAB = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'lab')
sys.path.insert(0, LAB)

import tuntap_lab  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture
def lab():
    if os.geteuid() != 0:
        pytest.fail('the lab creates network namespaces: run the e2e tests as root')
    instance = tuntap_lab.Lab('ttqe%d-' % (os.getpid() % 100000))
    try:
        yield instance
    finally:
        instance.down()


def test_routed_guests_reach_each_other_and_the_lan(lab):
    build = tuntap_lab.build_guest.build_guest()
    lab.up('/usr/bin/python3')
    extra = {'lab_guest_kernel': build['kernel'], 'lab_guest_initrd': build['initrd']}
    started = time.monotonic()
    rc, changed = lab.converge('lab_demo.yml', extra)
    assert rc == 0 and changed > 0
    converged = time.monotonic() - started
    rc, changed = lab.converge('lab_demo.yml', extra)
    assert (rc, changed) == (0, 0), 'the second converge must change nothing'
    reports = lab.guest_reports()
    results_seen = time.monotonic() - started
    rows = lab.matrix_rows(reports)
    ok = lab.print_matrix('routed lab matrix', rows)
    print('guest build %.1f s (%s), converge %.1f s, converge to all results %.1f s'
          % (build['build_seconds'], 'cached' if build['cached'] else 'built', converged, results_seen))
    if not ok:
        for _hv, _spec, guest in lab.guests():
            with open(lab.serial_log(guest), errors='replace') as handle:
                print('--- serial log of %s ---\n%s' % (guest['name'], handle.read()))
    # Two guests x (gateway, other guest, LAN peer) from the guests' serial consoles, and
    # the LAN peer to each guest.
    assert len(rows) == 8
    for _hv, _spec, guest in lab.guests():
        report = reports[guest['name']]
        assert report['done'] is not None, '%s never printed TTQ-DONE' % guest['name']
        assert report['done']['fail'] == '0', report
    assert ok, 'some pings failed (matrix above)'
