# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""End to end with the lab's own code: site.yml converges one hypervisor per topology, two
real guests each, and every expected check succeeds (DHCP leases equal to the plan, DNS
names, pings, port forwards from the peer, the host and the other guest; IPv6 addresses equal
to the plan, ping6 of the gateway, the other guest and the peer, the peer's ping6 of the
routed /64s, NAT66 seen from the peer); each result is
read from the guests' own serial consoles (or, for the LAN peer's and the host's checks,
from there)."""

from __future__ import annotations

import json
import os
import sys
import time

import pytest

LAB = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'lab')
sys.path.insert(0, LAB)

import tuntap_lab  # noqa: E402  pylint: disable=wrong-import-position

# Per DHCP guest: its lease, its lookups of the other guest and of the peer's name, three
# pings (the other guest by name); per forward: the hairpin fetch of the other guest, the
# peer's and the host's own. IPv6, per guest: its address against the plan, ping6 of the
# gateway (not on the LAN), the other guest and the peer; the peer's ping6 of each guest
# where the IPv6 networks are routed (hv1, hv2, hv4), its NAT66 counter row where not (hv3).
# Issue 13: hv2's VDE guests (IPv4 only, each other on the switch): lease, 2 lookups, gateway,
# sibling, peer. hv5 (isolated, 3 guests): lease, ip6, 3 lookups each; vm9 pings 3 targets
# and 3 over IPv6, vm10 and vm11 2 and 2 (not each other); must fail: each guest -> peer
# (IPv4, IPv6), vm10 <-> vm11 (IPv4, IPv6), the peer -> each guest (IPv4, IPv6); the peer's
# counter of hv5's pings.
#   hv1: 2 x (6 + 4) + 2 (peer, IPv4) + 2 (peer, IPv6)                      = 24
#   hv2: 2 x (6 + 4) + 1 hairpin + 1 NAT + 2 forwards + 2 (peer, IPv6)
#        + 2 x 6 (VDE)                                                      = 38
#   hv3: 2 x (6 + 4) + 1 hairpin + 1 NAT + 2 forwards + 1 NAT66             = 25
#   hv4: 2 x (3 + 3) + 2 (peer, IPv4) + 1 (hv4 on br0) + 2 (peer, IPv6)     = 17
#   hv5: 3 x 5 + 6 + 2 x 4 (pings) + 3 x 2 + 2 x 2 (must fail) + 6 (peer) + 1 = 46
EXPECTED_ROWS = {'hv1': 24, 'hv2': 38, 'hv3': 25, 'hv4': 17, 'hv5': 46}


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


VM3_IP6 = tuntap_lab.ipv6_plan(tuntap_lab.HYPERVISORS['hv2'])['vm3'].address


def _report(lease_ip='192.168.3.10/24', hostname='vm3', looked_up='192.168.4.10', ping_address='192.168.4.10',
            body='TTQ-HTTP name=vm4', forwarded=tuntap_lab.PEER_ADDRESS, ip6=VM3_IP6, failed6=()):
    """vm3's serial report as guest_boot.parse_serial gives it, everything right by default;
    failed6: its IPv6 ping targets that did not answer."""
    ok = {'status': 'ok', 'rtt_ms': 1.0}
    results6 = dict((target, {'status': 'fail', 'rtt_ms': None} if target in failed6 else ok)
                    for target in ('fd00:2::1', 'fd00:2:0:4::10', tuntap_lab.PEER_ADDRESS6))
    return {
        'lease': {'ip': lease_ip, 'hostname': hostname},
        'boot': {'ip': lease_ip, 'ip6': ip6},
        'lookups': {'vm4.qemu.internal': {'status': 'ok', 'address': looked_up},
                    tuntap_lab.PEER_NAME: {'status': 'ok', 'address': forwarded}},
        'results': dict({'192.168.3.1': ok, tuntap_lab.PEER_ADDRESS: ok,
                         'vm4.qemu.internal': dict(ok, address=ping_address)}, **results6),
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
    # IPv6: another address than the plan's SLAAC one (the static form of it, a neighbour's),
    # none at all; each ping6 that did not answer.
    (_report(ip6='fd00:2::2/64'), ['ip6']),
    (_report(ip6='fd00:2::5054:ff:fe35:802e/64'), ['ip6']),
    (_report(ip6='-'), ['ip6']),
    (_report(failed6=['fd00:2::1']), ['gateway fd00:2::1']),
    (_report(failed6=['fd00:2:0:4::10']), ['vm4 fd00:2:0:4::10']),
    (_report(failed6=[tuntap_lab.PEER_ADDRESS6]), ['peer fd00:10::20']),
    ({'results': {}}, ['lease', 'ip6', 'lookup vm4', 'lookup peer', 'gateway', 'vm4 by name', 'peer', 'gateway',
                       'vm4', 'peer', '10.0.0.12:8004']),
])
def test_guest_rows_fail_on_what_differs_from_the_plan(report, failing):
    """The rows of a DHCP guest with a forward to its sibling (hv2's vm3): each check compares
    with the plan, and only the rows named fail."""
    hv = tuntap_lab.HYPERVISORS['hv2']
    rows = tuntap_lab.Lab.guest_rows(hv, hv['guests'][0], report)
    assert len(rows) == 11
    failed = [target for _source, target, ok, _latency in rows if not ok]
    assert len(failed) == len(failing) and all(text.startswith(prefix) for text, prefix in zip(failed, failing)), rows


def test_the_labs_ipv6_plan_is_the_fleet_plan(tmp_path):
    """What the lab expects of every guest's IPv6 (ipv6_plan: its address, gateway, SLAAC or
    static, and what a static guest is given on its command line) is what the fleet plan
    makes of the lab's inventory; bridged_lan guests have no IPv6 in the plan (SLAAC from the
    LAN: the EUI-64 of the plan's MAC in the LAN's /64), nor have VDE guests on a switch
    without address6. The rest of what the matrix expects is the plan's too: each guest's
    gateway, which guests are isolated ports (the bridge's isolated_ports) and which are on
    the host's VDE switch, whose socket is in the lab's state folder."""
    sys.path.insert(0, tuntap_lab.collections_path(str(tmp_path)))
    from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import planner  # pylint: disable=import-outside-toplevel

    lab = tuntap_lab.Lab('ttqp-', state_dir=str(tmp_path))
    lab.write_inventory('/usr/bin/python3', {'kernel': '/k', 'initrd': '/i'})
    with open(lab.inventory) as handle:
        inventory = json.load(handle)['all']
    hostvars = dict((name, dict(inventory['vars'], **variables))
                    for name, variables in inventory['children']['hypervisors']['hosts'].items())
    plan, errors = planner.plan_fleet(hostvars)
    assert errors == []
    for name, hv in sorted(tuntap_lab.HYPERVISORS.items()):
        expected = tuntap_lab.ipv6_plan(hv)
        specs = dict((guest['name'], guest) for guest in hv['guests'])
        assert sorted(expected) == sorted(guest['name'] for guest in hv['guests']
                                          if not guest.get('vde') or hv['vde'].get('address6'))
        vde = plan[name]['vde']
        assert (vde is not None) == bool(hv.get('vde'))
        if vde is not None:
            assert os.path.dirname(vde['socket']) == lab.vde_runtime_dir(name), vde
        isolated_taps = sorted(guest['tap'] for guest in plan[name]['guests'] if specs[guest['name']].get('isolated'))
        assert (plan[name]['bridge'] or {}).get('isolated_ports', []) == isolated_taps
        for guest in plan[name]['guests']:
            spec = specs[guest['name']]
            assert guest['gateway'] == tuntap_lab.guest_gateway(hv, spec), (name, guest)
            assert guest['isolated'] == bool(spec.get('isolated')), (name, guest)
            assert guest['vde'] == (vde['socket'] if spec.get('vde') else None), (name, guest)
            if guest['name'] not in expected:
                assert (guest['address6'], guest['gateway6'], guest['slaac']) == (None, None, False), (name, guest)
                continue
            mine = expected[guest['name']]
            if hv['topology'] == 'bridged_lan':
                assert (guest['address6'], guest['gateway6'], guest['slaac']) == (None, None, False)
                assert mine.address == tuntap_lab.slaac_address(guest['mac'], tuntap_lab.LAN_NETWORK6)
                continue
            assert (guest['address6'], guest['gateway6'], guest['slaac']) == (mine.address, mine.gateway, mine.slaac), \
                (name, guest)
            append = [spec for spec in inventory['children']['hypervisors']['hosts'][name]['tuntap_qemu_guests']
                      if spec['name'] == guest['name']][0]['append'].split()
            static = ['ttq.ip6=%s' % mine.address, 'ttq.gw6=%s' % mine.gateway]
            assert all((word in append) != mine.slaac for word in static), (guest['name'], append)


def _vm10_report(blocked=('192.168.9.12', tuntap_lab.PEER_ADDRESS, 'fd00:5::5054:ff:fe7b:c825', tuntap_lab.PEER_ADDRESS6),
                 tried=1796176780):
    """hv5's vm10 (isolated port of an isolated network): everything it must reach answered;
    the targets it must not reach did not, but for those not in blocked, tried at clock tried."""
    ok = {'status': 'ok', 'rtt_ms': 1.0}
    unreach = ('192.168.9.12', tuntap_lab.PEER_ADDRESS, 'fd00:5::5054:ff:fe7b:c825', tuntap_lab.PEER_ADDRESS6)
    return {
        'lease': {'ip': '192.168.9.11/24', 'hostname': 'vm10'},
        'boot': {'ip': '192.168.9.11/24', 'ip6': 'fd00:5::5054:ff:fec8:6ffb/64', 'clock': '1796176760'},
        'lookups': {'vm9.qemu.internal': {'status': 'ok', 'address': '192.168.9.10'},
                    'vm11.qemu.internal': {'status': 'ok', 'address': '192.168.9.12'},
                    tuntap_lab.PEER_NAME: {'status': 'ok', 'address': tuntap_lab.PEER_ADDRESS}},
        'results': {'192.168.9.1': ok, 'vm9.qemu.internal': dict(ok, address='192.168.9.10'), 'fd00:5::1': ok,
                    'fd00:5::5054:ff:fe6f:157': ok},
        'unreach': dict((target, {'status': 'blocked' if target in blocked else 'reached',
                                  'rtt_ms': None if target in blocked else 0.9, 'clock': str(tried)})
                        for target in unreach),
    }


# vm11's TTQ-BOOT clock: it was up 20 s before vm10's tries by default.
@pytest.mark.parametrize('report, vm11_up, failing', [
    (_vm10_report(), 1796176760, []),
    # An answer where none may come.
    (_vm10_report(blocked=(tuntap_lab.PEER_ADDRESS, 'fd00:5::5054:ff:fe7b:c825', tuntap_lab.PEER_ADDRESS6)),
     1796176760, ['vm11 192.168.9.12 reached']),
    (_vm10_report(blocked=('192.168.9.12', 'fd00:5::5054:ff:fe7b:c825')), 1796176760,
     ['peer 10.0.0.20 reached', 'peer fd00:10::20 reached']),
    # vm11 came up after the try (or too close to it to tell): no proof of its isolation.
    (_vm10_report(), 1796176779, ['vm11 192.168.9.12 blocked (isolated) (not proven', 'vm11 fd00:5::5054:ff:fe7b:c825']),
    (_vm10_report(), None, ['vm11 192.168.9.12 blocked (isolated) (not proven', 'vm11 fd00:5::5054:ff:fe7b:c825']),
    # Not tried at all (an old guest without ttq.unreach).
    (dict(_vm10_report(), unreach={}), 1796176760,
     ['vm11 192.168.9.12 not tried', 'peer 10.0.0.20 not tried', 'vm11 fd00', 'peer fd00']),
])
def test_isolated_guest_rows_hold_only_when_nothing_answered_a_guest_that_was_up(report, vm11_up, failing):
    """The must-fail rows of an isolated port on an isolated network (hv5's vm10): ok only when
    the target did not answer, and for a guest target only when that guest's TTQ-BOOT clock is
    at least UNREACH_PROOF_SECONDS before the try."""
    hv = tuntap_lab.HYPERVISORS['hv5']
    vm11 = {'boot': {'clock': str(vm11_up)} if vm11_up else {}}
    rows = tuntap_lab.Lab.guest_rows(hv, hv['guests'][1], report, {'vm10': report, 'vm11': vm11})
    assert len(rows) == 13
    failed = [target for _source, target, ok, _latency in rows if not ok]
    assert len(failed) == len(failing) and all(text.startswith(prefix) for text, prefix in zip(failed, failing)), rows


@pytest.mark.parametrize('mac, network, expected', [
    ('52:54:00:15:39:a4', 'fd00:3::/64', 'fd00:3::5054:ff:fe15:39a4/64'),
    # The universal/local bit flips either way.
    ('02:00:00:00:00:01', 'fd00:10::/64', 'fd00:10::ff:fe00:1/64'),
])
def test_slaac_address(mac, network, expected):
    assert tuntap_lab.slaac_address(mac, tuntap_lab.ipaddress.IPv6Network(network)) == expected
