# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 14: an inventory whose uplink address is not the host's real one is refused.

The lab's hv2 (routed_nat) and hv4 (bridged_lan) get inventories with another uplink
address (and, for hv4, another gateway) than their eth0 holds: site.yml must fail on both,
naming the host, the inventory's value and what eth0 holds, and leave their links,
addresses, routes, rules and files byte-identical. Then, with the right inventory (hv4 with
a default route via the LAN peer, as ifupdown's `gateway` line leaves it, onlink), site.yml
converges, and the reboot simulation brings back exactly the runtime addresses and routes
from the files written from the same plan.
"""

from __future__ import annotations

import json
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_reboot  # noqa: E402  pylint: disable=wrong-import-position
from test_reboot import tuntap_lab  # noqa: E402  pylint: disable=wrong-import-position

GATEWAY = tuntap_lab.PEER_ADDRESS  # the LAN peer plays the router of hv4's default route
WRONG = {
    # hv2: routed_nat, its NAT and validation use the uplink address.
    'hv2': {'tuntap_qemu_uplink_address': '10.0.0.99/24'},
    # hv4: the typo of issue 14: another subnet for the host, its gateway and its guests.
    'hv4': {'tuntap_qemu_uplink_address': '10.45.0.14/24', 'tuntap_qemu_uplink_gateway': '10.45.0.1'},
}


def _inventory(lab):
    with open(lab.inventory) as handle:
        return json.load(handle)


def _write_inventory(lab, inventory):
    with open(lab.inventory, 'w') as handle:
        json.dump(inventory, handle, indent=2)


def _hosts(inventory):
    return inventory['all']['children']['hypervisors']['hosts']


def _add_default_route(lab):
    ns = lab.hypervisors['hv4']['namespace']
    tuntap_lab.run(['ip', 'route', 'add', 'default', 'via', GATEWAY, 'dev', 'eth0', 'onlink'], netns=ns)


@pytest.fixture(scope='module')
def lab():
    if os.geteuid() != 0:
        pytest.fail('the lab creates network namespaces: run the e2e tests as root')
    lab = tuntap_lab.Lab('ttqu%d-' % (os.getpid() % 100000), only=['hv2', 'hv4'])
    try:
        lab.up('/usr/bin/python3', tuntap_lab.build_guest.build_guest())
        _add_default_route(lab)
        # hv4's uplink takes SLAAC from the LAN peer by itself: before-and-after snapshots
        # compare the hosts, not the kernel's progress.
        test_reboot.settle_lab(lab)
        yield lab
    finally:
        lab.down()


def _states(lab):
    return dict((name, (test_reboot.network_state(hv['namespace']), test_reboot.files_state(lab, name)))
                for name, hv in lab.hypervisors.items())


def test_wrong_uplink_address_is_refused_and_changes_nothing(lab):
    right = _inventory(lab)
    wrong = json.loads(json.dumps(right))
    for name, variables in WRONG.items():
        _hosts(wrong)[name].update(variables)
    # hv4's guests follow the typo (else the fleet check would refuse them first).
    for guest in _hosts(wrong)['hv4']['tuntap_qemu_guests']:
        guest['address'] = guest['address'].replace('10.0.0.', '10.45.0.')
    _hosts(right)['hv4']['tuntap_qemu_uplink_gateway'] = GATEWAY
    before = _states(lab)
    _write_inventory(lab, wrong)
    try:
        rc, changed = lab.converge('site.yml')
    finally:
        _write_inventory(lab, right)
    output = lab.last_output
    assert rc != 0, output
    assert changed == 0, output
    for text in (
            'hv4: the inventory (tuntap_qemu_uplink_address 10.45.0.14/24, tuntap_qemu_uplink_gateway '
            '10.45.0.1) is not what the host holds; nothing was changed',
            'eth0 holds 10.0.0.14/24, not 10.45.0.14/24',
            'the default route of eth0 is via %s, not 10.45.0.1' % GATEWAY,
            # hv2's uplink also holds its static IPv6 address, which the inventory names (issue 13).
            'hv2: the inventory (tuntap_qemu_uplink_address 10.0.0.99/24, tuntap_qemu_uplink_address6 '
            'fd00:10::12/64) is not what the host holds',
            'eth0 holds 10.0.0.12/24, fd00:10::12/64, not 10.0.0.99/24'):
        assert text in output, text
    after = _states(lab)
    for name in lab.hypervisors:
        assert after[name][0] == before[name][0], test_reboot.state_diff(before[name][0], after[name][0])
        assert after[name][1] == before[name][1], (before[name][1], after[name][1])
    print('refused: hv2 and hv4, state and files byte-identical')


def test_reboot_brings_back_the_runtime_addresses_and_routes(lab):
    started = time.monotonic()
    rc, _changed = lab.converge('site.yml')
    assert rc == 0, lab.last_output
    runtime = test_reboot.network_state(lab.hypervisors['hv4']['namespace'])
    assert [route for route in runtime['routes'] if route.get('dst') == 'default'] == [
        {'dst': 'default', 'gateway': GATEWAY, 'dev': 'br0', 'flags': ['onlink']}], runtime['routes']
    lab.stop_guests()
    lab.recreate_hypervisor('hv4')
    # The host's own eth0 stanza (allow-hotplug eth0, static, gateway) at boot.
    _add_default_route(lab)
    lab.boot_hypervisor('hv4')
    # What the kernel does by itself once br0 is up (SLAAC from the LAN peer's router
    # advertisements, about a second) is waited for as in test_reboot; anything else that
    # differs after test_reboot.SETTLE_TIMEOUT still fails.
    deadline = time.monotonic() + test_reboot.SETTLE_TIMEOUT
    while True:
        booted = test_reboot.network_state(lab.hypervisors['hv4']['namespace'])
        if all(booted[key] == runtime[key] for key in ('addresses', 'routes')) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for key in ('addresses', 'routes'):
        assert booted[key] == runtime[key], test_reboot.state_diff(runtime[key], booted[key], ('runtime', 'boot'))
    print('hv4 after the reboot simulation: addresses and routes as at runtime (%.1f s)'
          % (time.monotonic() - started))
