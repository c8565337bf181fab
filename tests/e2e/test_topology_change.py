# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory is the truth (issue 10): converging another inventory over a converged
lab leaves exactly what a fresh converge of that inventory leaves.

The lab's five hypervisors (routed, routed_nat with a VDE switch, bridged_nat, bridged_lan,
isolated; real guests on each) are converged; then every one of them moves to another topology
(tuntap_lab.CHANGED_HYPERVISORS: routed -> bridged_nat, routed_nat -> bridged_lan,
bridged_nat -> routed_nat, bridged_lan -> routed, isolated -> bridged_nat) and hv2, hv4 and
hv5 lose guests (hv2 its VDE switch too: the switch's process, its tap and its guests go). site.yml
runs four ways: --check --diff (reports the removals, changes nothing), for real, again
(changed=0), again in check mode (changed=0); between the check and the real run, one
run with tuntap_qemu_prune=false must remove nothing. The runtime state (links, addresses, routes,
nftables ruleset, forwarding) and the persisted files of each hypervisor must then equal
those of a second lab that converged the changed inventory from scratch; the removed
guests' QEMU processes and runtime folders are gone; the guests of the new inventory,
ended and started again by site.yml, pass their pings.

Nothing here touches the root network namespace (the fixture of test_reboot compares it).
"""

from __future__ import annotations

import os
import re
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), 'lab'))

import tuntap_lab  # noqa: E402  pylint: disable=wrong-import-position
from test_reboot import (network_state, recap, root_namespace_untouched, state_diff)  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import

REMOVED_GUESTS = sorted(set(guest['name'] for hv in tuntap_lab.HYPERVISORS.values() for guest in hv['guests'])
                        - set(guest['name'] for hv in tuntap_lab.CHANGED_HYPERVISORS.values()
                              for guest in hv['guests']))


def persisted_files(lab, name):
    """{path: text} of a hypervisor's persistent configuration (its /etc/netns folder and its
    lab state folder: nft file, unit folder), with the lab's own names replaced, so that two
    labs can be compared."""
    roots = ['/etc/netns/%s' % lab.hypervisors[name]['namespace'], os.path.join(lab.state_dir, name)]
    state = {}
    for root in roots:
        for folder, _dirs, files in os.walk(root):
            for entry in files:
                path = os.path.join(folder, entry)
                if os.path.islink(path):
                    text = '-> ' + os.readlink(path)
                else:
                    with open(path, errors='replace') as handle:
                        text = handle.read()
                key = path.replace(lab.state_dir, '<state>').replace(lab.prefix, '<prefix>')
                state[key] = text.replace(lab.state_dir, '<state>').replace(lab.prefix, '<prefix>')
    return state


def guest_pid(lab, name):
    return tuntap_lab.guest_process(os.path.join(lab.guest_dir(name), 'qemu.pid'), name)


def _snapshot(lab):
    return dict((name, {'network': network_state(hv['namespace']), 'files': persisted_files(lab, name)})
                for name, hv in sorted(lab.hypervisors.items()))


@pytest.fixture(scope='module')
def build():
    return tuntap_lab.build_guest.build_guest()


@pytest.fixture(scope='module')
def fresh(build):
    """The changed inventory converged on a fresh lab: {hv: {network, files}}."""
    lab = tuntap_lab.Lab('ttqf%d-' % (os.getpid() % 100000), specs=tuntap_lab.CHANGED_HYPERVISORS)
    try:
        lab.up('/usr/bin/python3', build)
        started = time.monotonic()
        rc, changed = lab.converge('site.yml')
        assert rc == 0 and changed > 0, 'the changed inventory does not converge on a fresh lab'
        print('fresh lab, changed inventory: site.yml %.1f s' % (time.monotonic() - started))
        yield _snapshot(lab)
    finally:
        lab.down()


@pytest.fixture(scope='module')
def changed(build):
    """A lab converged with the lab inventory, then with the changed one, four ways.

    Yields {'lab', 'before' (snapshot before the change), 'check' (rc, output, snapshot
    after it), 'real' (rc, output), 'after' (snapshot), 'again' (rc, changed),
    'again_check' (rc, changed), 'pids' (removed guest: its PID before the change),
    'vde_pids' (hv2's VDE switch before the change), 'additive_vde_pids' (after the run
    without pruning), 'reports'}."""
    lab = tuntap_lab.Lab('ttqt%d-' % (os.getpid() % 100000))
    try:
        lab.up('/usr/bin/python3', build)
        rc, changed_count = lab.converge('site.yml')
        assert rc == 0 and changed_count > 0, 'the lab inventory does not converge'
        # Every guest of the first inventory runs; the removed ones must be stopped later.
        reports = lab.guest_reports()
        assert all(report['done'] is not None for report in reports.values()), reports
        pids = dict((name, guest_pid(lab, name)) for name in REMOVED_GUESTS)
        assert all(pids.values()), 'the guests to remove do not run: %s' % pids
        lab.reconfigure(tuntap_lab.CHANGED_HYPERVISORS, '/usr/bin/python3', build)
        result = {'lab': lab, 'pids': pids, 'before': _snapshot(lab), 'vde_pids': lab.vde_switch_pids('hv2')}
        started = time.monotonic()
        rc, _count = lab.converge('site.yml', extra_args=['--check', '--diff'])
        result['check'] = (rc, lab.last_output, _snapshot(lab),
                           dict((name, guest_pid(lab, name)) for name in REMOVED_GUESTS))
        print('topology change, --check --diff: %.1f s' % (time.monotonic() - started))
        # tuntap_qemu_prune=false: the roles only add; what the plan no longer holds stays.
        rc, _count = lab.converge('site.yml', extra_vars={'tuntap_qemu_prune': 'false'})
        links = dict((name, network_state(hv['namespace'])['links']) for name, hv in sorted(lab.hypervisors.items()))
        result['additive'] = (rc, lab.last_output, links,
                              dict((name, guest_pid(lab, name)) for name in REMOVED_GUESTS))
        result['additive_vde_pids'] = lab.vde_switch_pids('hv2')
        started = time.monotonic()
        rc, _count = lab.converge('site.yml', extra_args=['--diff'])
        result['real'] = (rc, lab.last_output)
        print('topology change: site.yml %.1f s' % (time.monotonic() - started))
        result['after'] = _snapshot(lab)
        # The guests last (re)started in the run without pruning, on a half-changed host: end
        # them (by their pidfiles) and let site.yml start them again, so that their pings
        # show the final state.
        lab.stop_guests()
        for _hv, _spec, guest in lab.guests():
            if os.path.exists(lab.serial_log(guest)):
                os.remove(lab.serial_log(guest))
        result['restart'] = lab.converge('site.yml')
        result['reports'] = lab.guest_reports()
        result['again'] = lab.converge('site.yml')
        result['again_check'] = lab.converge('site.yml', extra_args=['--check'])
        yield result
    finally:
        lab.down()


def test_check_mode_reports_the_change_and_changes_nothing(changed):
    rc, output, after, pids = changed['check']
    assert rc == 0, output
    counts = recap(output)
    assert sorted(counts) == sorted(tuntap_lab.CHANGED_HYPERVISORS) and all(counts.values()), counts
    for name in sorted(changed['before']):
        assert after[name] == changed['before'][name], '%s changed in check mode:\n%s' % (
            name, state_diff(changed['before'][name], after[name]))
    assert pids == changed['pids'], 'check mode stopped a guest: %s, before %s' % (pids, changed['pids'])


def test_check_mode_names_every_removal(changed):
    """The diff of the check run shows what goes: the removed guests, their taps, the old
    NAT rules and the bridges of the topologies left, hv2's VDE switch tap."""
    _rc, output, _after, _pids = changed['check']
    for guest in REMOVED_GUESTS:
        assert guest in output, 'the check run does not name the removed guest %s' % guest
    assert 'vde0' in output
    # hv2 leaves routed_nat: its masquerade of vm4's subnet goes.
    assert '192.168.4.0/24' in output
    # hv3 leaves bridged_nat and hv4 bridged_lan: their br0 goes.
    assert 'br0' in output


def test_without_prune_nothing_of_the_old_inventory_goes(changed):
    """With tuntap_qemu_prune=false the same change converges, and the removed guests, their
    taps and the bridges of the topologies left all stay (the later run with pruning on,
    from this state, must still end where a fresh converge ends)."""
    rc, output, links, pids = changed['additive']
    assert rc == 0, output
    assert pids == changed['pids'], 'a guest was stopped without pruning: %s, before %s' % (pids, changed['pids'])
    assert 'tap1' in links['hv2'], "hv2's second tap (vm4's) went without pruning"
    assert 'tap1' in links['hv4'], "hv4's second tap (vm8's) went without pruning"
    assert 'br0' in links['hv3'] and 'br0' in links['hv4'], 'a bridge went without pruning'
    assert 'vde0' in links['hv2'], "hv2's VDE switch tap went without pruning"
    assert changed['additive_vde_pids'] == changed['vde_pids'], 'the VDE switch was stopped without pruning'


def test_the_change_converges(changed):
    rc, output = changed['real']
    assert rc == 0, output


@pytest.mark.parametrize('hypervisor', sorted(tuntap_lab.CHANGED_HYPERVISORS))
def test_runtime_state_equals_a_fresh_converge(changed, fresh, hypervisor):
    after, expected = changed['after'][hypervisor]['network'], fresh[hypervisor]['network']
    assert after['links'], 'no state recorded'
    assert after == expected, '%s after the change, against a fresh converge:\n%s' % (
        hypervisor, state_diff(expected, after, ('fresh converge', 'after the change')))


@pytest.mark.parametrize('hypervisor', sorted(tuntap_lab.CHANGED_HYPERVISORS))
def test_persisted_files_equal_a_fresh_converge(changed, fresh, hypervisor):
    after, expected = changed['after'][hypervisor]['files'], fresh[hypervisor]['files']
    assert after == expected, '%s files after the change, against a fresh converge:\n%s' % (
        hypervisor, state_diff(expected, after, ('fresh converge', 'after the change')))


def test_removed_guests_are_gone(changed):
    lab = changed['lab']
    for name, pid in sorted(changed['pids'].items()):
        assert not os.path.exists('/proc/%d' % pid), '%s (pid %d) still runs' % (name, pid)
        assert not os.path.exists(lab.guest_dir(name)), '%s left its runtime folder' % name


def test_the_removed_vde_switch_is_gone(changed):
    """hv2 leaves routed_nat and its VDE switch: the process (ended by the module, by its
    pidfile) is gone, and so are its pidfile and socket."""
    lab = changed['lab']
    assert len(changed['vde_pids']) == 1, changed['vde_pids']
    pid = changed['vde_pids'][0]
    assert not os.path.exists('/proc/%d' % pid), 'the VDE switch (pid %d) still runs' % pid
    folder = lab.vde_runtime_dir('hv2')
    left = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    assert not left, 'the VDE runtime folder keeps %s' % left


def test_site_yml_starts_the_ended_guests_again(changed):
    rc, count = changed['restart']
    # The recap counts the guests' loop once per host.
    assert rc == 0 and count == len(changed['lab'].hypervisors), \
        'after ending the guests, site.yml must change only the guests task of each host: %s' % (changed['restart'],)


def test_next_runs_change_nothing(changed):
    assert changed['again'] == (0, 0), 'the run after the change must change nothing'
    assert changed['again_check'] == (0, 0), 'check mode after the change must report nothing'


@pytest.mark.parametrize('hypervisor', sorted(tuntap_lab.CHANGED_HYPERVISORS))
def test_guests_ping_after_the_change(changed, hypervisor):
    lab, reports = changed['lab'], changed['reports']
    title, rows = lab.matrices(reports)[hypervisor]
    ok = lab.print_matrix(title + ' (after the topology change)', rows)
    if not ok:
        for guest in lab.hypervisors[hypervisor]['guests']:
            with open(lab.serial_log(guest), errors='replace') as handle:
                print('--- serial log of %s ---\n%s' % (guest['name'], handle.read()))
    for guest in lab.hypervisors[hypervisor]['guests']:
        report = reports[guest['name']]
        assert report['done'] is not None, '%s never printed TTQ-DONE' % guest['name']
        assert report['done']['fail'] == '0', report
    assert rows and ok, 'some pings of %s failed after the change (matrix above)' % title


def _global6(state, ifname):
    """The static global IPv6 addresses (ADDRESS/PREFIX) a link holds in a network state
    (not the kernel's SLAAC ones, which carry mngtmpaddr or dynamic)."""
    return sorted('%s/%d' % (item['local'], item['prefixlen']) for item in state['addresses'].get(ifname, [])
                  if item.get('family') == 'inet6' and item.get('scope') == 'global'
                  and not item.get('dynamic') and not item.get('mngtmpaddr'))


def test_the_uplinks_static_ipv6_address_moves_to_the_bridge_and_is_persisted(changed):
    """hv2 (routed_nat -> bridged_lan): tuntap_qemu_uplink_address6 moves from eth0 to br0 with
    the IPv4 address, and interfaces.d brings it back on br0 at boot."""
    address6 = '%s/64' % tuntap_lab.CHANGED_HYPERVISORS['hv2']['uplink_address6']
    before, after = changed['before']['hv2'], changed['after']['hv2']
    assert _global6(before['network'], 'eth0') == [address6]
    assert _global6(after['network'], 'br0') == [address6]
    assert _global6(after['network'], 'eth0') == []
    stanzas = [text for path, text in after['files'].items() if path.endswith('/network/interfaces.d/tuntap-qemu')]
    assert len(stanzas) == 1, sorted(after['files'])
    assert re.search(r'^iface br0 inet6 static\n(?:[ \t]+\S.*\n)*?[ \t]+address %s\n' % re.escape(address6),
                     stanzas[0], re.M), stanzas[0]
