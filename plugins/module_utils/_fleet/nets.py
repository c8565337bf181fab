# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Addresses and networks of the planner, through netaddr (names.netaddr)."""

from __future__ import annotations

from ansible_collections.tuntap.qemu.plugins.module_utils import names


def interface_address(path, value, error):
    net, message = names.parse_interface_address(path, value)
    if message:
        error(message)
        return None
    return net


def net(value, prefixlen, version):
    return names.netaddr.IPNetwork('%s/%d' % (names.netaddr.IPAddress(value, version), prefixlen))


def parse_ip(value):
    try:
        return names.netaddr.IPAddress(value)
    except (names.netaddr.AddrFormatError, ValueError, TypeError):
        return None


def overlap(one, other):
    return one.version == other.version and one.first <= other.last and other.first <= one.last


def address_text(guest):
    """A guest's address as the inventory gave it, or as the plan made it."""
    if guest.address_given is not None:
        return guest.address_given
    return names.normalize_address(guest.net)
