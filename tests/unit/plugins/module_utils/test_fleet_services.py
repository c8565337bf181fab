# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 12 in the fleet plan: DHCP with static leases, DNS names and port forwards."""

from __future__ import annotations

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import planner as fleet
from ansible_collections.tuntap.qemu.plugins.module_utils._guest.guest_config import stable_mac


def bridged(**variables):
    host = {'tuntap_qemu_topology': 'bridged_nat', 'tuntap_qemu_uplink_address': '10.0.0.13/24',
            'tuntap_qemu_bridge_address': '192.168.5.1/24',
            'tuntap_qemu_guests': [{'name': 'vm5', 'address': '192.168.5.10/24'},
                                   {'name': 'vm6', 'address': '192.168.5.11/24'}]}
    host.update(variables)
    return host


def routed(topology='routed_nat', **variables):
    host = {'tuntap_qemu_topology': topology, 'tuntap_qemu_uplink_address': '10.0.0.12/24',
            'tuntap_qemu_guests': [{'name': 'vm3', 'address': '192.168.3.10/24'},
                                   {'name': 'vm4', 'address': '192.168.4.10/24'}]}
    host.update(variables)
    return host


def plan_of(**hosts):
    plan, errors = fleet.plan_fleet(hosts)
    assert errors == []
    return plan


def errors_of(**hosts):
    plan, errors = fleet.plan_fleet(hosts)
    assert plan is None
    return errors


def test_bridged_nat_serves_its_bridge_with_a_lease_per_guest_and_a_range():
    plan = plan_of(hv3=bridged(tuntap_qemu_dhcp_range='192.168.5.100-192.168.5.150',
                               tuntap_qemu_dns_domain='Lab.Example.'))
    assert plan['hv3']['dhcp'] == {
        'domain': 'lab.example', 'host_name': 'hv3',
        'networks': [{'interface': 'br0', 'address': '192.168.5.1/24', 'address6': None,
                      'range': ['192.168.5.100', '192.168.5.150'],
                      'hosts': [{'mac': stable_mac('vm5', 0), 'address': '192.168.5.10', 'name': 'vm5', 'address6': None},
                                {'mac': stable_mac('vm6', 0), 'address': '192.168.5.11', 'name': 'vm6', 'address6': None}]}]}


def test_routed_nat_serves_each_tap_and_leaves_static_guests_out():
    host = routed()
    host['tuntap_qemu_guests'][1]['dhcp'] = False
    plan = plan_of(hv2=host)
    assert plan['hv2']['dhcp']['networks'] == [
        {'interface': 'tap0', 'address': '192.168.3.1/24', 'address6': None, 'range': None,
         'hosts': [{'mac': stable_mac('vm3', 0), 'address': '192.168.3.10', 'name': 'vm3', 'address6': None}]}]
    assert [guest['dhcp'] for guest in plan['hv2']['guests']] == [True, False]


@pytest.mark.parametrize('host', [
    routed(tuntap_qemu_dhcp=False),
    routed(tuntap_qemu_guests=[{'name': 'vm3', 'address': '192.168.3.10/24', 'dhcp': False}]),
    routed(tuntap_qemu_guests=[{'name': 'vm3', 'address': 'fd00:3::10/64'}]),   # DHCPv4 only
    {'tuntap_qemu_topology': 'bridged_lan', 'tuntap_qemu_uplink_address': '10.0.0.14/24',
     'tuntap_qemu_guests': [{'name': 'vm7', 'address': '10.0.0.101/24'}]},
])
def test_no_dhcp_where_no_guest_is_served(host):
    assert plan_of(hv=host)['hv']['dhcp'] is None


def test_a_host_name_that_is_no_dns_label_is_left_out_of_the_zone():
    plan = plan_of(**{'hv_2.example.com': routed()})
    assert plan['hv_2.example.com']['dhcp']['host_name'] is None
    plan = plan_of(**{'hv2.example.com': routed()})
    assert plan['hv2.example.com']['dhcp']['host_name'] == 'hv2'


def test_forwards_become_one_port_forward_list():
    host = routed()
    host['tuntap_qemu_guests'][1]['forwards'] = [{'port': 8004, 'guest_port': 80},
                                                 {'port': 5353, 'protocol': 'udp', 'source': ['10.0.0.0/24']}]
    plan = plan_of(hv2=host)
    assert plan['hv2']['port_forwards'] == [
        {'port': 8004, 'protocol': 'tcp', 'destination': '192.168.4.10', 'destination_port': 80, 'source': None},
        {'port': 5353, 'protocol': 'udp', 'destination': '192.168.4.10', 'destination_port': 5353,
         'source': ['10.0.0.0/24']}]


def test_a_pool_plans_around_the_dynamic_range():
    host = bridged(tuntap_qemu_pool='192.168.5.0/24', tuntap_qemu_dhcp_range='192.168.5.2-192.168.5.9',
                   tuntap_qemu_guests=[{'name': 'vm5'}])
    plan = plan_of(hv3=host)
    assert plan['hv3']['guests'][0]['address'] == '192.168.5.10/24'


@pytest.mark.parametrize('variables, error', [
    ({'tuntap_qemu_dhcp_range': '192.168.5.5-192.168.5.10'},
     'hv3: tuntap_qemu_dhcp_range: 192.168.5.5-192.168.5.10 holds tuntap_qemu_guests[0].address 192.168.5.10 (vm5); '
     'a dynamic range must leave the planned addresses out'),
    ({'tuntap_qemu_dhcp_range': ['192.168.5.1', '192.168.5.9']},
     "hv3: tuntap_qemu_dhcp_range: ['192.168.5.1', '192.168.5.9'] holds the bridge address 192.168.5.1, the "
     "guests' gateway (tuntap_qemu_bridge_address)"),
    ({'tuntap_qemu_dhcp_range': '192.168.6.1-192.168.6.9'},
     "hv3: tuntap_qemu_dhcp_range: '192.168.6.1-192.168.6.9' is not inside the bridge subnet 192.168.5.0/24 "
     "(tuntap_qemu_bridge_address)"),
    ({'tuntap_qemu_dhcp_range': '192.168.5.90-192.168.5.80'},
     "hv3: tuntap_qemu_dhcp_range: '192.168.5.90-192.168.5.80' ends before it starts"),
    ({'tuntap_qemu_dhcp_range': 'lots'},
     "hv3: tuntap_qemu_dhcp_range: 'lots' is not a range of two IPv4 addresses, such as 192.168.5.100-192.168.5.150"),
    ({'tuntap_qemu_dhcp_range': '192.168.5.100-192.168.5.150', 'tuntap_qemu_dhcp': False},
     "hv3: tuntap_qemu_dhcp_range: '192.168.5.100-192.168.5.150' is given, but tuntap_qemu_dhcp is false"),
    ({'tuntap_qemu_dhcp': 'yes'}, "hv3: tuntap_qemu_dhcp: 'yes' is not true or false"),
    ({'tuntap_qemu_dns_domain': 'bad_domain'},
     "hv3: tuntap_qemu_dns_domain: 'bad_domain' is not a DNS domain name (labels of letters, digits and -, "
     "separated by dots, such as qemu.internal)"),
    ({'tuntap_qemu_guests': [{'name': 'vm_5', 'address': '192.168.5.10/24'}]},
     "hv3: tuntap_qemu_guests[0].name: 'vm_5' is not a DNS label (letters, digits and - only), which a guest "
     "served by DHCP is named by in qemu.internal; rename it, or give it dhcp: false"),
    ({'tuntap_qemu_guests': [{'name': 'vm5', 'address': '192.168.5.10/24', 'dhcp': 'no'}]},
     "hv3: tuntap_qemu_guests[0].dhcp: 'no' is not true or false"),
])
def test_bad_dhcp_input_is_refused(variables, error):
    assert errors_of(hv3=bridged(**variables)) == [error]


def test_the_range_is_for_a_shared_subnet_and_the_lan_has_its_own_dhcp():
    assert errors_of(hv2=routed(tuntap_qemu_dhcp_range='192.168.3.100-192.168.3.110')) == [
        "hv2: tuntap_qemu_dhcp_range: '192.168.3.100-192.168.3.110' is given, but routed_nat guests have a subnet "
        "each (a tap of their own); a dynamic range is for a shared guest subnet (bridged_nat)"]
    assert errors_of(hv4={'tuntap_qemu_topology': 'bridged_lan', 'tuntap_qemu_uplink_address': '10.0.0.14/24',
                          'tuntap_qemu_dhcp': True}) == [
        "hv4: tuntap_qemu_dhcp: true, but bridged_lan guests are on the LAN, whose own DHCP server gives them "
        "their addresses; leave it out"]


def test_a_static_guest_may_keep_a_name_that_is_no_dns_label():
    plan = plan_of(hv3=bridged(tuntap_qemu_guests=[{'name': 'vm_5', 'address': '192.168.5.10/24', 'dhcp': False}]))
    assert plan['hv3']['dhcp'] is None


def test_duplicate_forwards_and_forwards_to_guests_not_behind_nat_are_refused():
    host = routed()
    host['tuntap_qemu_guests'][0]['forwards'] = [{'port': 8004, 'guest_port': 80}]
    host['tuntap_qemu_guests'][1]['forwards'] = [{'port': 8004}, {'port': 8004, 'protocol': 'udp'}]
    assert errors_of(hv2=host) == [
        'hv2: tuntap_qemu_guests[1].forwards[0]: tcp port 8004 of this host is forwarded already by '
        'tuntap_qemu_guests[0].forwards[0] (vm3); one host port goes to one guest']
    host = routed('routed')
    host['tuntap_qemu_guests'][0]['forwards'] = [{'port': 8004}]
    assert errors_of(hv1=host) == [
        'hv1: tuntap_qemu_guests[0].forwards[0]: routed guests are not behind NAT, so they are reached at their '
        'own address; port forwards need routed_nat or bridged_nat']


@pytest.mark.parametrize('forward, error', [
    ({}, 'tuntap_qemu_guests[0].forwards[0].port: missing; the host port (1-65535)'),
    ({'port': 0}, 'tuntap_qemu_guests[0].forwards[0].port: 0 is not a port (1-65535)'),
    ({'port': 80, 'guest_port': 70000}, 'tuntap_qemu_guests[0].forwards[0].guest_port: 70000 is not a port (1-65535)'),
    ({'port': 80, 'protocol': 'sctp'}, "tuntap_qemu_guests[0].forwards[0].protocol: 'sctp' is not one of tcp, udp"),
    ({'port': 80, 'source': ['10.0.0.1/24']},
     "tuntap_qemu_guests[0].forwards[0].source[0]: '10.0.0.1/24' has host bits set; the network is 10.0.0.0/24"),
    ({'port': 80, 'source': '10.0.0.0/24'},
     "tuntap_qemu_guests[0].forwards[0].source: '10.0.0.0/24' is not a list of networks in CIDR form, such as "
     "[10.0.0.0/24]"),
    ({'port': 80, 'dport': 8080},
     "tuntap_qemu_guests[0].forwards[0]: unknown key 'dport'; a forward takes port, guest_port, protocol, source"),
])
def test_bad_forwards_are_refused(forward, error):
    host = routed()
    host['tuntap_qemu_guests'][0]['forwards'] = [forward]
    assert errors_of(hv2=host) == ['hv2: ' + error]
