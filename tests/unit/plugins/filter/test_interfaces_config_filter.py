# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The interfaces_config filter: carry (uplink_stanza's result) first, the older gateway form."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.tuntap.qemu.plugins.filter import interfaces_config as interfaces_filter
from ansible_collections.tuntap.qemu.plugins.module_utils import interfaces_config

PLAN = {
    'topology': 'bridged_lan',
    'taps': [],
    'bridge': {'name': 'br0', 'addresses': ['10.0.0.14/24'], 'ports': ['eth0'], 'uplink': 'eth0'},
}
CARRY = {'uplink': 'eth0', 'method': 'static', 'allow': ['auto'], 'bridge_options': [['mtu', '9000']],
         'port_options': [['mtu', '9000']], 'inet6': [], 'warnings': []}


@pytest.mark.parametrize('args, kwargs', [
    pytest.param((), {}, id='plan alone'),
    pytest.param((None,), {}, id='no carry'),
    pytest.param((CARRY,), {'carry': CARRY}, id='carry'),
    pytest.param(('10.0.0.1',), {'uplink_gateway': '10.0.0.1'}, id='older form: the gateway'),
    pytest.param((CARRY, '10.0.0.1'), {'carry': CARRY, 'uplink_gateway': '10.0.0.1'}, id='both'),
])
def test_filter_arguments(args, kwargs):
    assert interfaces_filter.interfaces_config(PLAN, *args) == interfaces_config.render_interfaces(PLAN, **kwargs)


@pytest.mark.parametrize('plan, carry, message', [
    pytest.param('br0', None, 'expects one host plan', id='not a plan'),
    pytest.param(PLAN, ['mtu'], 'carry must be the result of tuntap.qemu.uplink_stanza', id='carry not a mapping'),
])
def test_filter_refuses(plan, carry, message):
    with pytest.raises(AnsibleFilterError, match=message):
        interfaces_filter.interfaces_config(plan, carry)
