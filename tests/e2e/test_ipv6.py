# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 13: bad IPv6 input is refused by the fleet plan with nothing changed on any host.

Through playbooks/site.yml on fresh lab namespaces (hv1 routed, hv2 routed_nat, hv4
bridged_lan; the LAN and its peer): an inventory the fleet plan refuses - a /80 address6 on a
network the host advertises for SLAAC, an IPv6 pool overlapping another host's, an address6 on
bridged_lan, tuntap_qemu_nat6 on routed - fails before any host is touched, with the exact
error naming the host and the path; every hypervisor's and the peer's links, addresses,
routes, rules, sysctls and files stay as they were. The fleet plan's task is the one that
fails, and the error it reports is the only one (the rest of the inventory is right).
"""

from __future__ import annotations

import json
import os
import re
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_reboot  # noqa: E402  pylint: disable=wrong-import-position
from test_reboot import tuntap_lab  # noqa: E402  pylint: disable=wrong-import-position
# The root namespace's addresses, routes, ruleset and forwarding are the same after the module.
from test_reboot import root_namespace_untouched  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import

HOSTS = ['hv1', 'hv2', 'hv4']
PLAN_TASK = 'tuntap.qemu.hypervisor : Validate the fleet and plan every hypervisor (fails before any host is touched)'


def _inventory(lab):
    with open(lab.inventory) as handle:
        return json.load(handle)


def _write_inventory(lab, inventory):
    with open(lab.inventory, 'w') as handle:
        json.dump(inventory, handle, indent=2)


def _host(inventory, name):
    return inventory['all']['children']['hypervisors']['hosts'][name]


def _state(lab):
    """Every namespace of the lab: the hypervisors' network state and files, the peer's network."""
    state = dict((name, (test_reboot.network_state(hv['namespace']), test_reboot.files_state(lab, name)))
                 for name, hv in sorted(lab.hypervisors.items()))
    state['peer'] = (test_reboot.network_state(lab.peer), {})
    return state


def _plan_errors(output):
    """The errors list of the fleet plan's failed result (`fatal: [host]: FAILED! => {...}`)."""
    results = [json.loads(match) for match in re.findall(r'^fatal: \[[^\]]+\]: FAILED! => (\{.*\})$', output, re.M)]
    assert len(results) == 1, output
    return results[0].get('errors')


@pytest.fixture(scope='module')
def lab():
    if os.geteuid() != 0:
        pytest.fail('the lab creates network namespaces: run the e2e tests as root')
    lab = tuntap_lab.Lab('ttq6%d-' % (os.getpid() % 100000), only=HOSTS)
    try:
        lab.up('/usr/bin/python3', tuntap_lab.build_guest.build_guest())
        # hv4's uplink takes its SLAAC address first: the snapshots compare the hosts.
        test_reboot.settle_lab(lab)
        yield lab
    finally:
        lab.down()


def _slash_80_on_an_advertised_network(inventory):
    # hv1 is routed and serves its guests (DHCP and router advertisements, the default):
    # the tap's network is advertised for SLAAC, which takes a /64.
    _host(inventory, 'hv1')['tuntap_qemu_guests'][0]['address6'] = 'fd00:9:0:99::10/80'


def _pool6_overlapping_another_hosts(inventory):
    _host(inventory, 'hv1')['tuntap_qemu_pool6'] = 'fd00:1::/56'
    _host(inventory, 'hv2')['tuntap_qemu_pool6'] = 'fd00:1:0:80::/57'


def _address6_on_bridged_lan(inventory):
    _host(inventory, 'hv4')['tuntap_qemu_guests'][0]['address6'] = 'fd00:10::107/64'


def _nat6_on_routed(inventory):
    _host(inventory, 'hv1')['tuntap_qemu_nat6'] = True


@pytest.mark.parametrize('change, error', [
    (_slash_80_on_an_advertised_network,
     "hv1: tuntap_qemu_guests[0].address6: 'fd00:9:0:99::10/80' is a /80, but the host advertises the tap's "
     "network for SLAAC (tuntap_qemu_dhcp), which needs exactly /64"),
    (_pool6_overlapping_another_hosts,
     'hv2: tuntap_qemu_pool6: fd00:1:0:80::/57 overlaps tuntap_qemu_pool6 fd00:1::/56 of hv1; '
     'IPv6 pools are unique across the fleet'),
    (_address6_on_bridged_lan,
     "hv4: tuntap_qemu_guests[0].address6: 'fd00:10::107/64' is given, but bridged_lan guests take their "
     "IPv6 addresses by SLAAC from the LAN's router; leave it out"),
    (_nat6_on_routed,
     'hv1: tuntap_qemu_nat6: true, but routed guests are not behind NAT (their /64s are routed); '
     'NAT66 is for routed_nat and bridged_nat'),
], ids=['slash-80-for-slaac', 'pool6-overlap', 'address6-on-bridged-lan', 'nat6-on-routed'])
def test_the_fleet_plan_refuses_bad_ipv6_input_and_nothing_changes(lab, change, error):
    right = _inventory(lab)
    wrong = json.loads(json.dumps(right))
    change(wrong)
    before = _state(lab)
    _write_inventory(lab, wrong)
    try:
        rc, changed = lab.converge('site.yml')
    finally:
        _write_inventory(lab, right)
    output = lab.last_output
    assert rc != 0 and changed == 0, output
    failed = [(task, host) for task, status, host, _item, _text in test_reboot.results_by_task(output)
              if status in ('failed', 'fatal')]
    assert failed == [(PLAN_TASK, failed[0][1])], output
    # The plan's result lists every problem of the fleet: this one only.
    assert _plan_errors(output) == [error], output
    after = _state(lab)
    for name in sorted(before):
        assert after[name][0] == before[name][0], '%s changed:\n%s' % (
            name, test_reboot.state_diff(before[name][0], after[name][0]))
        assert after[name][1] == before[name][1], (name, before[name][1], after[name][1])
