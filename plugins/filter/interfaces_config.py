# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter: a host plan (tuntap.qemu.fleet_plan) as a Debian interfaces.d file."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.tuntap.qemu.plugins.module_utils import interfaces_config as renderer


def interfaces_config(plan, carry=None, uplink_gateway=None):
    if not isinstance(plan, dict) or 'taps' not in plan:
        raise AnsibleFilterError('interfaces_config expects one host plan of tuntap.qemu.fleet_plan, got %r'
                                 % (type(plan).__name__,))
    if isinstance(carry, str) and uplink_gateway is None:
        # The older form: interfaces_config(uplink_gateway), a router's address.
        carry, uplink_gateway = None, carry
    if carry is not None and not isinstance(carry, dict):
        raise AnsibleFilterError('interfaces_config: carry must be the result of tuntap.qemu.uplink_stanza '
                                 '(a mapping) or null, got %r' % (type(carry).__name__,))
    return renderer.render_interfaces(plan, uplink_gateway or None, carry or None)


class FilterModule(object):
    def filters(self):
        return {'interfaces_config': interfaces_config}
