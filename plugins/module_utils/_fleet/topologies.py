# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The topology rule table: one Topology object per topology, consulted by every step of
the planner (reading, pools, checks, the host plan). A new topology is one more object in
TOPOLOGIES (register()) and its tests; nothing else branches on a topology's name.
"""

from __future__ import annotations

import dataclasses

from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import guest_networks

INTERNAL = 'internal'   # a bridge of the host's own that holds the guests' gateway
UPLINK = 'uplink'       # a bridge with the uplink as a port: the host's LAN address moves to it


@dataclasses.dataclass(frozen=True)
class Topology:
    """What a topology needs, derives and plans.

    name            the value of tuntap_qemu_topology
    guests          how its guests are addressed (guest_networks.OWN_SUBNET, BRIDGE_SUBNET, LAN)
    bridge          None, INTERNAL (needs tuntap_qemu_bridge_address) or UPLINK (needs
                    tuntap_qemu_uplink_address; takes the uplink, its address and routes)
    nat             masquerade its guest networks out of the uplink
    forwarding      the host routes (ip_forward on)
    subnets_on_lan  its guest subnets are routed on the LAN, so unique across the fleet
    dhcp            its internal guest networks get DHCP and DNS from the host by default
                    (tuntap_qemu_dhcp); False where the LAN has its own (bridged_lan)

    Derived from these (properties below), never from the name: forwards (port forwards
    reach its guests), shares_bridge (guest isolated: true), vde (tuntap_qemu_vde and guest
    vde: true), and what the uplink and the bridge need.
    """
    name: str
    guests: guest_networks.GuestNetwork
    bridge: str = None
    nat: bool = False
    forwarding: bool = True
    subnets_on_lan: bool = False
    dhcp: bool = False

    @property
    def forwards(self):
        """Port forwards reach its guests: the host's address is NATed to them."""
        return self.nat

    @property
    def shares_bridge(self):
        """Its guests' taps are ports of one bridge, so a guest may be an isolated port
        (guest isolated: true)."""
        return self.bridge is not None

    @property
    def vde(self):
        """A VDE switch fits (tuntap_qemu_vde): the host routes each guest network, so the
        switch's tap is one more routed network that stands for many guests."""
        return self.guests.own_subnets

    @property
    def needs_uplink_address(self):
        return self.bridge == UPLINK

    @property
    def needs_bridge_address(self):
        return self.bridge == INTERNAL

    @property
    def moves_uplink(self):
        """The uplink's addresses and routes move to the bridge: the host must hold exactly
        what the inventory says (uplink_check exact), and readdressing it is possible."""
        return self.bridge == UPLINK


TOPOLOGIES = {}


def register(topology):
    """Add a topology to the table (a test may add a toy one and remove it with unregister)."""
    TOPOLOGIES[topology.name] = topology
    return topology


def unregister(name):
    TOPOLOGIES.pop(name, None)


def names():
    return tuple(TOPOLOGIES)


def names_where(test, last='and'):
    """'a, b and c': the topologies for which test(topology) holds, for messages."""
    found = [topology.name for topology in TOPOLOGIES.values() if test(topology)]
    return (' %s ' % last).join(part for part in (', '.join(found[:-1]), found[-1] if found else '') if part)


register(Topology('routed', guest_networks.OWN_SUBNET, subnets_on_lan=True, dhcp=True))
register(Topology('routed_nat', guest_networks.OWN_SUBNET, nat=True, dhcp=True))
register(Topology('bridged_nat', guest_networks.BRIDGE_SUBNET, bridge=INTERNAL, nat=True, dhcp=True))
register(Topology('bridged_lan', guest_networks.LAN, bridge=UPLINK, forwarding=False))
# libvirt's isolated network: guests reach each other and the host (its DHCP, DNS and RA on
# the bridge), never the LAN - no NAT, forwarding off.
register(Topology('isolated', guest_networks.BRIDGE_SUBNET, bridge=INTERNAL, forwarding=False, dhcp=True))
