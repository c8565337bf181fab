# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The topology rule table: a topology is data, and the role's argument specs say what the
planner reads (one source for each rule)."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import guest_networks, planner, schema, topologies

ROOT = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..')


@pytest.fixture
def sealed():
    """A toy 'sealed' topology registered through the rule table alone: guests share a
    bridge of the host's that holds their gateway, no NAT, no forwarding, no DHCP."""
    topology = topologies.register(topologies.Topology(
        'sealed', guest_networks.BRIDGE_SUBNET, bridge=topologies.INTERNAL, nat=False, forwarding=False))
    yield topology
    topologies.unregister('sealed')


def test_a_new_topology_is_one_rule_object(sealed):
    plan, errors = planner.plan_fleet({'hv9': {
        'tuntap_qemu_topology': 'sealed',
        'tuntap_qemu_bridge': 'iso0',
        'tuntap_qemu_bridge_address': '172.30.0.1/24',
        'tuntap_qemu_pool': '172.30.0.0/24',
        'tuntap_qemu_guests': [{'name': 'a'}, {'name': 'b', 'address': '172.30.0.20/24'}],
    }})
    assert errors == []
    host = plan['hv9']
    assert host['topology'] == 'sealed'
    assert host['forwarding'] is False
    assert host['nat'] == []
    assert host['bridge'] == {'name': 'iso0', 'addresses': ['172.30.0.1/24'], 'ports': ['tap0', 'tap1'],
                              'uplink': None, 'gateway': None, 'readdress': False, 'dhcp': False,
                              'isolated_ports': []}
    assert [(guest['address'], guest['gateway']) for guest in host['guests']] == [
        ('172.30.0.2/24', '172.30.0.1'), ('172.30.0.20/24', '172.30.0.1')]
    assert [tap['addresses'] for tap in host['taps']] == [[], []]


def test_a_new_topology_is_validated_like_the_others(sealed):
    _plan, errors = planner.plan_fleet({'hv9': {
        'tuntap_qemu_topology': 'sealed',
        'tuntap_qemu_guests': [{'name': 'a', 'address': '172.30.0.5/24'}],
    }})
    assert errors == ["hv9: tuntap_qemu_bridge_address: missing; sealed needs the guests' gateway on the "
                      'bridge with its prefix, such as 192.168.0.1/24']
    _plan, errors = planner.plan_fleet({'hv9': {'tuntap_qemu_topology': 'sealedx'}})
    assert errors == ["hv9: tuntap_qemu_topology: 'sealedx' is not one of routed, routed_nat, bridged_nat, "
                      'bridged_lan, isolated, sealed']


def test_the_toy_topology_is_gone_afterwards():
    assert topologies.names() == ('routed', 'routed_nat', 'bridged_nat', 'bridged_lan', 'isolated')


def _role_options(role):
    with open(os.path.join(ROOT, 'roles', role, 'meta', 'argument_specs.yml')) as handle:
        return yaml.safe_load(handle)['argument_specs']['main']['options']


def test_the_hypervisor_role_specs_list_the_planner_guest_keys_with_their_types():
    options = _role_options('hypervisor')['tuntap_qemu_guests']['options']
    specs = dict((key, (value['type'], value.get('choices'))) for key, value in options.items())
    wanted = schema.guest_option_types()
    assert sorted(specs) == sorted(wanted)
    for key, (kind, choices) in wanted.items():
        assert specs[key][0] == kind, key
        assert sorted(specs[key][1] or []) == sorted(choices or []), key


def test_the_hypervisor_role_specs_list_the_topologies():
    assert _role_options('hypervisor')['tuntap_qemu_topology']['choices'] == list(topologies.names())


@pytest.mark.parametrize('role', ['hypervisor', 'routed', 'routed_nat', 'bridged_nat', 'bridged_lan', 'isolated'])
def test_defaults_of_the_uplink_and_bridge_are_the_planner_defaults(role):
    options = _role_options(role)
    if 'tuntap_qemu_uplink' in options:
        assert options['tuntap_qemu_uplink'].get('default') == schema.DEFAULT_UPLINK
    if 'tuntap_qemu_bridge' in options:
        assert options['tuntap_qemu_bridge'].get('default') == schema.DEFAULT_BRIDGE
    with open(os.path.join(ROOT, 'roles', 'hypervisor', 'defaults', 'main.yml')) as handle:
        defaults = yaml.safe_load(handle)
    assert defaults['tuntap_qemu_uplink'] == schema.DEFAULT_UPLINK
    assert defaults['tuntap_qemu_bridge'] == schema.DEFAULT_BRIDGE


def test_docs_describe_every_variable_the_planner_reads():
    with open(os.path.join(ROOT, 'docs', 'inventory.md')) as handle:
        text = handle.read()
    for variable in schema.HOST_VARIABLES:
        assert '`%s`' % variable in text, variable
