# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 13, parts 2 and 3: bad isolation and VDE input is refused by the fleet plan with
nothing changed on any host.

Through playbooks/site.yml on fresh lab namespaces (hv1 routed, hv2 routed_nat with its VDE
switch, hv3 bridged_nat, hv5 isolated; the LAN and its peer): an inventory the fleet plan
refuses - a VDE guest on a host without a VDE switch, an isolated guest on routed (its guests
share no bridge), tuntap_qemu_vde on bridged_nat, tuntap_qemu_nat6 on isolated - fails before
any host is touched, with the exact error naming the host and the path; every hypervisor's
and the peer's links, addresses, routes, rules, sysctls and files stay as they were, and no
VDE switch was started. The fleet plan's task is the one that fails, and the error it
reports is the only one (the rest of the inventory, hv2's VDE switch and guests and hv5's
isolated network included, is right: the lab converges it elsewhere).

What isolation and VDE do when the input is right is the lab matrix's (test_lab_topologies:
hv2's VDE guests, hv4's isolated vm8, hv5's rows that must fail).
"""

from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_reboot  # noqa: E402  pylint: disable=wrong-import-position
from test_ipv6 import PLAN_TASK, _host, _inventory, _plan_errors, _write_inventory  # noqa: E402  pylint: disable=wrong-import-position
from test_reboot import tuntap_lab  # noqa: E402  pylint: disable=wrong-import-position
# The root namespace's addresses, routes, ruleset and forwarding are the same after the module.
from test_reboot import root_namespace_untouched  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import

HOSTS = ['hv1', 'hv2', 'hv3', 'hv5']


def _state(lab):
    """Every namespace of the lab: the hypervisors' network state and files, the peer's
    network; the hypervisors' VDE switches (pids) and VDE runtime folders."""
    state = dict((name, (test_reboot.network_state(hv['namespace']), test_reboot.files_state(lab, name)))
                 for name, hv in sorted(lab.hypervisors.items()))
    state['peer'] = (test_reboot.network_state(lab.peer), {})
    state['vde'] = dict((name, (lab.vde_switch_pids(name), sorted(os.listdir(lab.vde_runtime_dir(name)))
                                if os.path.isdir(lab.vde_runtime_dir(name)) else None))
                        for name in sorted(lab.hypervisors))
    return state


@pytest.fixture(scope='module')
def lab():
    if os.geteuid() != 0:
        pytest.fail('the lab creates network namespaces: run the e2e tests as root')
    lab = tuntap_lab.Lab('ttqi%d-' % (os.getpid() % 100000), only=HOSTS)
    try:
        lab.up('/usr/bin/python3', tuntap_lab.build_guest.build_guest())
        test_reboot.settle_lab(lab)
        yield lab
    finally:
        lab.down()


def _vde_guest_without_a_switch(inventory):
    _host(inventory, 'hv1')['tuntap_qemu_guests'][0]['vde'] = True


def _isolated_guest_on_routed(inventory):
    _host(inventory, 'hv1')['tuntap_qemu_guests'][1]['isolated'] = True


def _vde_on_bridged_nat(inventory):
    _host(inventory, 'hv3')['tuntap_qemu_vde'] = {'address': '192.168.21.1/24'}


def _nat6_on_isolated(inventory):
    _host(inventory, 'hv5')['tuntap_qemu_nat6'] = True


@pytest.mark.parametrize('change, error', [
    (_vde_guest_without_a_switch,
     'hv1: tuntap_qemu_guests[0].vde: true, but the host has no VDE switch; set tuntap_qemu_vde'),
    (_isolated_guest_on_routed,
     'hv1: tuntap_qemu_guests[1].isolated: true, but routed guests have a tap and a subnet of their own, so they '
     'reach each other only through the host; isolation is for guests that share a bridge (bridged_nat, '
     'bridged_lan and isolated)'),
    (_vde_on_bridged_nat,
     "hv3: tuntap_qemu_vde: is given, but bridged_nat has no routed guest network for a VDE switch's tap (its "
     "guests share a bridge); a VDE switch is for routed and routed_nat"),
    (_nat6_on_isolated,
     'hv5: tuntap_qemu_nat6: true, but isolated guests are not behind NAT (the host does not route them: they '
     'never leave it); NAT66 is for routed_nat and bridged_nat'),
], ids=['vde-guest-without-a-switch', 'isolated-on-routed', 'vde-on-bridged-nat', 'nat6-on-isolated'])
def test_the_fleet_plan_refuses_bad_isolation_and_vde_input_and_nothing_changes(lab, change, error):
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
    assert after['vde'] == before['vde'] == dict((name, ([], None)) for name in HOSTS), after['vde']
    for name in sorted(set(before) - {'vde'}):
        assert after[name][0] == before[name][0], '%s changed:\n%s' % (
            name, test_reboot.state_diff(before[name][0], after[name][0]))
        assert after[name][1] == before[name][1], (name, before[name][1], after[name][1])
