# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory's variables (docs/inventory.md) and the keys of a guest entry.

One source: the planner reads these names, the action plugin fetches exactly HOST_VARIABLES,
and a unit test keeps roles/hypervisor/meta/argument_specs.yml equal to GUEST_OPTIONS.
"""

from __future__ import annotations

TOPOLOGY = 'tuntap_qemu_topology'
UPLINK = 'tuntap_qemu_uplink'
UPLINK_ADDRESS = 'tuntap_qemu_uplink_address'
UPLINK_GATEWAY = 'tuntap_qemu_uplink_gateway'
UPLINK_READDRESS = 'tuntap_qemu_uplink_readdress'
UPLINK_NETWORK = 'tuntap_qemu_uplink_network'
# The uplink's static IPv6 address beside its IPv4 one (also beside a DHCP lease): checked on
# the uplink, moved to the bridge and persisted there by bridged_lan.
UPLINK_ADDRESS6 = 'tuntap_qemu_uplink_address6'
# tuntap_qemu_uplink_address: dhcp - the uplink's address is a DHCP lease (the inventory
# does not know it; bridged_lan moves the DHCP client to the bridge).
UPLINK_DHCP = 'dhcp'
BRIDGE = 'tuntap_qemu_bridge'
BRIDGE_ADDRESS = 'tuntap_qemu_bridge_address'
POOL = 'tuntap_qemu_pool'
# Issue 13: IPv6 beside IPv4 (dual-stack) - a pool of /64s (routed) or the bridge's /64
# (bridged_nat), optional NAT66.
POOL6 = 'tuntap_qemu_pool6'
BRIDGE_ADDRESS6 = 'tuntap_qemu_bridge_address6'
NAT6 = 'tuntap_qemu_nat6'
GUEST_USER = 'tuntap_qemu_guest_user'
GUEST_GROUP = 'tuntap_qemu_guest_group'
GUESTS = 'tuntap_qemu_guests'
# Issue 12: DHCP with static leases and DNS names for the guests of the internal networks.
DHCP = 'tuntap_qemu_dhcp'
DHCP_RANGE = 'tuntap_qemu_dhcp_range'
DNS_DOMAIN = 'tuntap_qemu_dns_domain'
# Issue 13: the host's VDE switch (routed, routed_nat), a mapping of VDE_KEYS: its tap holds the
# host side (the VDE guests' gateway); guests with vde: true are on the switch.
VDE = 'tuntap_qemu_vde'
# The folder of the switch's control socket (<folder>/<tap>.ctl) and pidfile: the role passes it
# to vde_switch as runtime_dir (the lab gives each host its own).
VDE_RUNTIME_DIR = 'tuntap_qemu_vde_runtime_dir'
# The host variables the plan reads; the action plugin fetches exactly these.
HOST_VARIABLES = (TOPOLOGY, UPLINK, UPLINK_ADDRESS, UPLINK_GATEWAY, UPLINK_READDRESS, UPLINK_NETWORK,
                  BRIDGE, BRIDGE_ADDRESS, POOL, GUEST_USER, GUEST_GROUP, GUESTS, DHCP, DHCP_RANGE,
                  DNS_DOMAIN, POOL6, BRIDGE_ADDRESS6, NAT6, UPLINK_ADDRESS6, VDE, VDE_RUNTIME_DIR)

DEFAULT_UPLINK = 'eth0'
DEFAULT_BRIDGE = 'br0'
POOL_SUBNET_PREFIX = 24
# An IPv6 guest network is a /64: what SLAAC needs, and what tuntap_qemu_pool6 plans.
POOL6_SUBNET_PREFIX = 64
# ICANN reserved .internal for private networks (2024): it never clashes with a public name.
DEFAULT_DNS_DOMAIN = 'qemu.internal'
# tuntap_qemu_vde's keys, its tap's default name and the default of tuntap_qemu_vde_runtime_dir
# (the vde_switch module's default socket is <runtime_dir>/<tap>.ctl).
VDE_KEYS = ('address', 'address6', 'tap', 'group')
DEFAULT_VDE_TAP = 'vde0'
DEFAULT_VDE_RUNTIME_DIR = '/run/tuntap-qemu/vde'

# qemu_guest options a guest entry may carry; they are passed on only when given.
QEMU_STRINGS = ('kernel', 'initrd', 'append', 'disk', 'machine')
QEMU_CHOICES = {'disk_format': ('raw', 'qcow2'), 'accel': ('kvm', 'tcg', 'auto')}
QEMU_INTEGERS = ('memory', 'cpus')
QEMU_BOOLEANS = ('autostart',)
QEMU_LISTS = ('extra_args',)
QEMU_OPTIONS = QEMU_STRINGS + tuple(sorted(QEMU_CHOICES)) + QEMU_INTEGERS + QEMU_BOOLEANS + QEMU_LISTS
# address6: the guest's IPv6 address beside its IPv4 one (dual-stack).
GUEST_NETWORK_KEYS = ('name', 'tap', 'user', 'group', 'run_as', 'mac', 'address', 'address6', 'gateway')
# dhcp: false keeps a guest static (no lease, no name); forwards: its port forwards.
GUEST_SERVICE_KEYS = ('dhcp', 'forwards')
# isolated: its tap an isolated port of the shared bridge; vde: on the host's VDE switch, no tap.
GUEST_ATTACHMENT_KEYS = ('isolated', 'vde')
GUEST_KEYS = GUEST_NETWORK_KEYS + GUEST_SERVICE_KEYS + GUEST_ATTACHMENT_KEYS + QEMU_OPTIONS
# The keys of an entry of a guest's forwards (port_forward's list form gets the rest).
FORWARD_KEYS = ('port', 'guest_port', 'protocol', 'source')
FORWARD_PROTOCOLS = ('tcp', 'udp')


def guest_option_types():
    """{key: (argument spec type, choices or None)} of every guest key: what
    roles/hypervisor/meta/argument_specs.yml must say of tuntap_qemu_guests' options."""
    types = dict((key, ('str', None)) for key in GUEST_NETWORK_KEYS)
    types.update(dhcp=('bool', None), forwards=('list', None), isolated=('bool', None), vde=('bool', None))
    types.update((key, ('path' if key in ('kernel', 'initrd', 'disk') else 'str', None)) for key in QEMU_STRINGS)
    types.update((key, ('str', list(choices))) for key, choices in QEMU_CHOICES.items())
    types.update((key, ('int', None)) for key in QEMU_INTEGERS)
    types.update((key, ('bool', None)) for key in QEMU_BOOLEANS)
    types.update((key, ('list', None)) for key in QEMU_LISTS)
    return types
