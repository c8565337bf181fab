# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that render a guest's side of the network from {address, gateway}."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.tuntap.qemu.plugins.module_utils._guest import guest_config


def _network(value, what):
    if not isinstance(value, dict) or 'address' not in value:
        raise AnsibleFilterError('%s expects a dict with address (ADDRESS/PREFIX) and optional '
                                 'gateway, got %r' % (what, value))
    network, errors = guest_config.guest_network(what, value['address'], value.get('gateway'))
    if errors:
        raise AnsibleFilterError('; '.join(errors))
    return network


def guest_interfaces(value, device='eth0'):
    """Debian /etc/network/interfaces stanza for the guest."""
    return guest_config.render_interfaces_stanza(_network(value, 'guest_interfaces'), device)


def guest_kernel_ip(value, hostname='', device='eth0'):
    """Kernel command line ip= argument for the guest."""
    try:
        return guest_config.render_kernel_ip(_network(value, 'guest_kernel_ip'), hostname, device)
    except ValueError as exc:
        raise AnsibleFilterError('guest_kernel_ip: %s' % exc)


def stable_mac(guest, nic_index=0):
    """The default MAC qemu_guest gives NIC nic_index of guest."""
    return guest_config.stable_mac(guest, int(nic_index))


class FilterModule(object):
    def filters(self):
        return {
            'guest_interfaces': guest_interfaces,
            'guest_kernel_ip': guest_kernel_ip,
            'stable_mac': stable_mac,
        }
