# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet_plan action over real hostvars (inventory file, templating) and its result."""

from __future__ import annotations

import os
import re
from unittest.mock import MagicMock

import pytest
import yaml

from ansible.errors import AnsibleActionFail
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.vars.hostvars import HostVars
from ansible.vars.manager import VariableManager

from ansible_collections.tuntap.qemu.plugins.action import fleet_plan

INVENTORY = '''
all:
  vars:
    lan_prefix: "10.0.0"
  children:
    lan:
      hosts:
        peer: {}
    hypervisors:
      vars:
        tuntap_qemu_pool: 192.168.0.0/16
        tuntap_qemu_guest_user: qemu
      hosts:
        hv1:
          tuntap_qemu_topology: routed
          tuntap_qemu_uplink_address: "{{ lan_prefix }}.11/24"
          tuntap_qemu_guests:
            - {name: vm1, memory: 256}
            - {name: vm2, address: 192.168.7.10/24}
        hv2:
          tuntap_qemu_topology: bridged_lan
          tuntap_qemu_uplink_address: "{{ lan_prefix }}.12/24"
          tuntap_qemu_guests:
            - {name: vm3, address: "{{ lan_prefix }}.103/24"}
'''

BROKEN = '''
all:
  hosts:
    hv1:
      tuntap_qemu_topology: routed
      tuntap_qemu_guests:
        - {name: vm1, address: 192.168.0.10/24, mac: "52:54:00:00:00:01"}
    hv2:
      tuntap_qemu_topology: routed
      tuntap_qemu_guests:
        - {name: vm2, address: 192.168.0.20/24, mac: "52:54:00:00:00:01"}
    hv3:
      tuntap_qemu_topology: routed
      tuntap_qemu_uplink: "{{ nowhere_defined }}"
'''


def hostvars_of(tmp_path, text):
    path = tmp_path / 'inventory.yml'
    path.write_text(text)
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(path)])
    return HostVars(inventory=inventory, variable_manager=VariableManager(loader=loader, inventory=inventory),
                    loader=loader)


def run_action(args, task_vars, check_mode=False):
    task = MagicMock()
    task.args = args
    task.async_val = 0
    task.check_mode = check_mode
    task.action = 'tuntap.qemu.fleet_plan'
    connection = MagicMock()
    connection._shell.tmpdir = None
    action = fleet_plan.ActionModule(task, connection, PlayContext(), loader=None, templar=None,
                                     shared_loader_obj=None)
    return action.run(task_vars=task_vars)


def test_plans_the_hosts_given(tmp_path):
    hostvars = hostvars_of(tmp_path, INVENTORY)
    result = run_action({'hosts': ['hv2', 'hv1']}, {'hostvars': hostvars, 'ansible_play_hosts_all': ['peer']})
    assert result['changed'] is False and not result.get('failed')
    assert sorted(result['plan']) == ['hv1', 'hv2']
    hv1, hv2 = result['plan']['hv1'], result['plan']['hv2']
    assert hv1['uplink_address'] == '10.0.0.11/24'
    # vm1's subnet is the pool's first /24; vm2 keeps its own.
    assert [guest['address'] for guest in hv1['guests']] == ['192.168.0.2/24', '192.168.7.10/24']
    assert hv1['guests'][0]['memory'] == 256 and hv1['guests'][0]['run_as'] == 'qemu'
    assert hv2['bridge'] == {'name': 'br0', 'addresses': ['10.0.0.12/24'], 'ports': ['tap0', 'eth0'],
                             'uplink': 'eth0', 'gateway': None, 'readdress': False, 'dhcp': False,
                             'isolated_ports': []}
    assert hv2['guests'][0]['address'] == '10.0.0.103/24'
    assert result['msg'] == 'planned 2 hosts with 3 guests'
    assert len(result['summary']) == 3
    # Plain types only: the result holds no templating wrappers.
    assert hv1['uplink_address'].__class__ is str and hv1['guests'].__class__ is list


def test_default_hosts_are_the_play_hosts_in_check_mode_too(tmp_path):
    hostvars = hostvars_of(tmp_path, INVENTORY)
    result = run_action({}, {'hostvars': hostvars, 'ansible_play_hosts_all': ['hv1']}, check_mode=True)
    assert list(result['plan']) == ['hv1']
    assert result['msg'] == 'planned 1 host with 2 guests'


def test_a_host_without_topology_fails(tmp_path):
    hostvars = hostvars_of(tmp_path, INVENTORY)
    result = run_action({}, {'hostvars': hostvars, 'ansible_play_hosts_all': ['hv1', 'hv2', 'peer']})
    assert result['failed'] is True
    assert result['errors'] == ['peer: tuntap_qemu_topology: missing; set one of routed, routed_nat, '
                                'bridged_nat, bridged_lan, isolated']
    assert 'plan' not in result


def test_every_problem_at_once(tmp_path):
    hostvars = hostvars_of(tmp_path, BROKEN)
    result = run_action({'hosts': ['hv1', 'hv2', 'hv3', 'hv9']}, {'hostvars': hostvars})
    assert result['failed'] is True and result['changed'] is False
    assert result['errors'] == [
        "hv3: tuntap_qemu_uplink: cannot be templated: 'nowhere_defined' is undefined",
        'hv9: not a host of the inventory',
        "hv2: tuntap_qemu_guests[0].mac: '52:54:00:00:00:01' is also used by hv1 vm1",
        "hv2: tuntap_qemu_guests[0].address: '192.168.0.20/24' is in 192.168.0.0/24, which overlaps "
        '192.168.0.0/24 of hv1 vm1; routed guest subnets are routed on the LAN and unique across the '
        'fleet (routed_nat ones may repeat on other hosts)',
    ]
    assert result['msg'].startswith('4 problems in the tuntap_qemu_* variables of 4 hosts: hv3: ')
    assert result['msg'].count('; ') >= 3


def test_unknown_option_fails():
    with pytest.raises(AnsibleActionFail):
        run_action({'host': ['hv1']}, {'hostvars': {}})


@pytest.mark.parametrize('value, expected', [
    (None, None),
    (True, True),
    (3, 3),
    (1.5, 1.5),
    ('x', 'x'),
    ((1, 'a'), [1, 'a']),
    ({'a': ({'b': None},)}, {'a': [{'b': None}]}),
])
def test_plain(value, expected):
    assert fleet_plan.plain(value) == expected


DOCS = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'docs', 'inventory.md')


def doc_blocks():
    with open(DOCS) as handle:
        return re.findall(r'^```[a-z]*\n(.*?)^```$', handle.read(), re.MULTILINE | re.DOTALL)


def test_the_documented_fleet_plans_as_documented(tmp_path):
    """docs/inventory.md: its inventory, its summary and its plan of hv3 agree with the code."""
    inventory, _play, summary, hv3_plan = doc_blocks()[:4]
    hostvars = hostvars_of(tmp_path, inventory)
    result = run_action({}, {'hostvars': hostvars, 'ansible_play_hosts_all': ['hv1', 'hv2', 'hv3', 'hv4']})
    assert not result.get('failed'), result.get('errors')
    assert result['summary'] == summary.splitlines()
    assert result['plan']['hv3'] == yaml.safe_load(hv3_plan)
