# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the guests of a topology are addressed: the three kinds of guest network.

    OWN_SUBNET     routed topologies: every guest has a subnet of its own on its tap, and the
                   host side of the tap is its gateway; a pool plans /24 subnets
    BRIDGE_SUBNET  all guests share the subnet of a bridge that holds their gateway; a pool
                   plans addresses in it
    VDE_SUBNET     the guests with vde: true (routed, routed_nat) share the subnet of the host's
                   VDE switch, whose tap holds their gateway; their addresses are planned in it
    LAN            the guests are on the LAN itself (a bridge with the uplink); only the LAN
                   knows which addresses are free, so nothing is planned

Each answers the same questions for the planner (Topology.guests is one of them): what a
pool plans, whether a guest's address and gateway fit (resolve), what the host side of its
tap holds, and which of the host's networks are internal (NAT sources); and the same of IPv6
(ipv6_refused, pool6, resolve6, tap_addresses6, internal_networks6): a routed tap holds a /64
of its own with ::1 on the host side, the bridge of bridged_nat one /64, the LAN none (its
router advertises it).
"""

from __future__ import annotations

from ansible_collections.tuntap.qemu.plugins.module_utils import names
from ansible_collections.tuntap.qemu.plugins.module_utils._guest import guest_config
from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import nets, schema
from ansible_collections.tuntap.qemu.plugins.module_utils._fleet.records import Resolved


def _lan_text(host):
    net, variable = host.lan
    return '%s (%s)' % (net.cidr, variable) if net is not None else 'the LAN subnet'


def _checked_gateway(guest, error):
    """The given gateway as an IPAddress when it is an address of the guest subnet, else None."""
    _network, messages = guest_config.guest_network(guest.path, names.normalize_address(guest.net),
                                                    guest.gateway_given)
    for message in messages:
        error(message)
    if messages:
        return None
    return names.netaddr.IPAddress(guest.gateway_given)


def _in_subnet(guest, subnet, what, hint, error):
    """A bridged guest's address must be in `subnet` with the same prefix; False (with an
    error naming the guest's address) when it is not, or when `subnet` itself is invalid."""
    if subnet is None:
        return False
    net = guest.net
    if net.cidr == subnet.cidr:
        return True
    if nets.overlap(net, subnet):
        why = 'has prefix /%d but %s is %s' % (net.prefixlen, what, subnet.cidr)
    else:
        why = 'is outside %s %s' % (what, subnet.cidr)
    error('%s.address: %r %s %s' % (guest.path, nets.address_text(guest), why, hint))
    return False


class GuestNetwork(object):
    """The defaults of a kind of guest network; the kinds below override what differs."""

    name = None
    pool = None             # what a tuntap_qemu_pool plans: 'subnets', 'addresses' or None
    lan_visible = False     # guest addresses are on the LAN (unique across the fleet)
    unique_in_host = False  # guests share one subnet: addresses unique on the host
    own_subnets = False     # each guest has a subnet of its own (overlaps are errors)
    pool6 = None            # what a tuntap_qemu_pool6 plans: 'subnets', 'addresses' or None

    def ipv6_refused(self, topology):
        """Why IPv6 settings of the inventory do not apply to these guests, or None."""
        return None

    def resolve6(self, host, guest, error):
        """(True, the host side of its IPv6 network) when the guest's address6 fits, else
        (False, None) after reporting why."""
        return True, None

    def tap_addresses6(self, resolved):
        """The IPv6 address the host side of the guest's tap holds (none or one)."""
        return []

    def internal_networks6(self, host, resolved):
        """The host's IPv6 guest networks (CIDR strings): NAT66 sources, forwarding."""
        return []

    def missing_address(self, host, guest):
        """The error for a guest without an address that no pool plans, or None when a pool
        may plan it (pools.py reports a missing pool)."""
        return None

    def resolve(self, host, guest, error):
        """Resolved(guest, gateway) when the guest's address and gateway fit, else None."""
        raise NotImplementedError

    def tap_addresses(self, resolved):
        """What the host side of the guest's tap holds."""
        return []

    def internal_networks(self, host, resolved):
        """The host's guest networks (CIDR strings), the sources of its NAT."""
        return []

    def dhcp_networks(self, host, resolved):
        """[(interface, the host's address on it with prefix, its IPv6 address with prefix or
        None, [Resolved guests on it])]: where the host's DHCP and DNS server listens (and
        advertises the IPv6 network); none: the LAN has its own."""
        return []


class OwnSubnet(GuestNetwork):
    """routed: the gateway is the host side of the tap, by default the subnet's first host."""

    name = 'own_subnet'
    pool = 'subnets'
    pool6 = 'subnets'
    own_subnets = True

    def resolve(self, host, guest, error):
        net, path = guest.net, guest.path
        for uplink_net, variable in ((host.uplink_net, schema.UPLINK_ADDRESS), (host.uplink_net6, schema.UPLINK_ADDRESS6)):
            if uplink_net is not None and nets.overlap(net, uplink_net):
                error('%s.address: %r is in %s, which overlaps the uplink subnet %s (%s)'
                      % (path, nets.address_text(guest), net.cidr, uplink_net.cidr, variable))
                return None
        if guest.gateway_given is None:
            if net.size == 1:
                error('%s.address: %r leaves no room for the host side of the tap; give a subnet '
                      'such as /24, or a gateway' % (path, nets.address_text(guest)))
                return None
            if net.size == 2:
                # A /31 (/127): the host side is the other address of the pair.
                gateway = net.first if int(net.ip) == net.last else net.last
            else:
                gateway = net.first + 1
            gateway = names.netaddr.IPAddress(gateway, net.version)
            if gateway == net.ip:
                error('%s.address: %r is the first host address of its subnet, which the host side '
                      'of the tap takes unless gateway says otherwise' % (path, nets.address_text(guest)))
                return None
            return Resolved(guest.with_derived('gateway'), str(gateway))
        gateway = _checked_gateway(guest, error)
        if gateway is None:
            return None
        if net.size > 2 and (gateway == net.network or (net.version == 4 and gateway == net.broadcast)):
            error('%s.gateway: %r is not a host address of the guest subnet %s; the gateway is the '
                  'host side of the tap' % (path, guest.gateway_given, net.cidr))
            return None
        return Resolved(guest, str(gateway))

    def resolve6(self, host, guest, error):
        net6, where = guest.net6, '%s.address6' % guest.path
        uplink_net6 = host.uplink_net6
        if uplink_net6 is not None and nets.overlap(net6, uplink_net6):
            error('%s: %r is in %s, which overlaps the uplink\'s IPv6 subnet %s (%s)'
                  % (where, _address6_text(guest), net6.cidr, uplink_net6.cidr, schema.UPLINK_ADDRESS6))
            return False, None
        if host.advertises6 and net6.prefixlen != schema.POOL6_SUBNET_PREFIX:
            error('%s: %r is a /%d, but the host advertises the tap\'s network for SLAAC (%s), '
                  'which needs exactly /%d' % (where, guest.address6_given, net6.prefixlen, schema.DHCP,
                                               schema.POOL6_SUBNET_PREFIX))
            return False, None
        if net6.size <= 2:
            error('%s: %r leaves no room for the host side of the tap (::1 of its network); give a '
                  '/64' % (where, guest.address6_given))
            return False, None
        host_side = names.netaddr.IPAddress(net6.first + 1, 6)
        if net6.ip == host_side:
            error('%s: %r is ::1 of its network, which the host side of the tap takes'
                  % (where, guest.address6_given))
            return False, None
        return True, str(host_side)

    def tap_addresses(self, resolved):
        return ['%s/%d' % (resolved.gateway, resolved.guest.net.prefixlen)]

    def tap_addresses6(self, resolved):
        if resolved.guest.net6 is None:
            return []
        return ['%s/%d' % (resolved.gateway6, resolved.guest.net6.prefixlen)]

    def internal_networks(self, host, resolved):
        return [str(item.guest.net.cidr) for item in resolved]

    def internal_networks6(self, host, resolved):
        return [str(item.guest.net6.cidr) for item in resolved if item.guest.net6 is not None]

    def dhcp_networks(self, host, resolved):
        # Each tap is a network of its own; its host side is the guest's gateway.
        return [(item.guest.tap, self.tap_addresses(item)[0], (self.tap_addresses6(item) or [None])[0], [item])
                for item in resolved]


class SharedSubnet(GuestNetwork):
    """Guests that share one subnet on one interface of the host, which holds their gateway
    (and their IPv6 router); the kinds below say which interface and variables that is."""

    pool = 'addresses'
    pool6 = 'addresses'
    unique_in_host = True
    needs_pool = True       # guests without an address need tuntap_qemu_pool (else: planned anyway)
    what = None             # 'the bridge', for messages ('the bridge subnet', 'the bridge address')

    def subnet(self, host):
        """The host side (an IPNetwork) of the IPv4 subnet, or None (invalid or missing)."""
        raise NotImplementedError

    def subnet6(self, host):
        """The host side of the IPv6 network, or None."""
        raise NotImplementedError

    def variable(self, host):
        """The variable that names subnet(), for messages."""
        raise NotImplementedError

    def variable6(self, host):
        raise NotImplementedError

    def interface(self, host):
        """The host's interface that holds the subnet."""
        raise NotImplementedError

    def guests_label(self, host):
        """What its guests are called in messages ('bridged_nat guests')."""
        raise NotImplementedError

    def resolve(self, host, guest, error):
        subnet, net, path = self.subnet(host), guest.net, guest.path
        if not _in_subnet(guest, subnet, '%s subnet' % self.what, '(%s)' % self.variable(host), error):
            return None
        if net.ip == subnet.ip:
            error('%s.address: %r is %s address, the host side (%s)'
                  % (path, nets.address_text(guest), self.what, self.variable(host)))
            return None
        given = guest.gateway_given
        if given is not None and nets.parse_ip(given) != subnet.ip:
            error('%s.gateway: %r is not the host side; %s guests route through %s address %s (%s)'
                  % (path, given, self.guests_label(host), self.what, subnet.ip, self.variable(host)))
            return None
        if given is None:
            guest = guest.with_derived('gateway')
        return Resolved(guest, str(subnet.ip))

    def resolve6(self, host, guest, error):
        subnet6, net6, where = self.subnet6(host), guest.net6, '%s.address6' % guest.path
        if subnet6 is None:
            error('%s: %r is given, but %s has no IPv6 address; set %s'
                  % (where, guest.address6_given, self.what, self.variable6(host)))
            return False, None
        if net6.cidr != subnet6.cidr:
            if nets.overlap(net6, subnet6):
                why = 'has prefix /%d but %s network is %s' % (net6.prefixlen, self.what, subnet6.cidr)
            else:
                why = 'is outside %s network %s' % (self.what, subnet6.cidr)
            error('%s: %r %s (%s)' % (where, guest.address6_given, why, self.variable6(host)))
            return False, None
        if net6.ip == subnet6.ip:
            error('%s: %r is %s\'s IPv6 address, the host side (%s)'
                  % (where, guest.address6_given, self.what, self.variable6(host)))
            return False, None
        return True, str(subnet6.ip)

    def internal_networks(self, host, resolved):
        return [str(self.subnet(host).cidr)]

    def internal_networks6(self, host, resolved):
        subnet6 = self.subnet6(host)
        return [str(subnet6.cidr)] if subnet6 is not None else []

    def dhcp_networks(self, host, resolved):
        subnet6 = self.subnet6(host)
        address6 = names.normalize_address(subnet6) if subnet6 is not None else None
        return [(self.interface(host), names.normalize_address(self.subnet(host)), address6, list(resolved))]


class BridgeSubnet(SharedSubnet):
    """bridged_nat, isolated: the guest is in the bridge subnet; the gateway is the bridge address."""

    name = 'bridge_subnet'
    what = 'the bridge'

    def subnet(self, host):
        return host.bridge_net

    def subnet6(self, host):
        return host.bridge_net6

    def variable(self, host):
        return schema.BRIDGE_ADDRESS

    def variable6(self, host):
        return host.bridge_net6_from or '%s (or %s)' % (schema.BRIDGE_ADDRESS6, schema.POOL6)

    def interface(self, host):
        return host.bridge

    def guests_label(self, host):
        return host.topology.name


class VdeSubnet(SharedSubnet):
    """A guest with vde: true (routed, routed_nat): on the host's VDE switch, in the VDE subnet;
    the gateway is the host side on the switch's tap. Its address is planned without a pool:
    the next free host address of the VDE subnet."""

    name = 'vde_subnet'
    needs_pool = False
    what = 'the VDE switch'

    def subnet(self, host):
        return host.vde.net if host.vde is not None else None

    def subnet6(self, host):
        return host.vde.net6 if host.vde is not None else None

    def variable(self, host):
        return '%s.address' % schema.VDE

    def variable6(self, host):
        return '%s.address6' % schema.VDE

    def interface(self, host):
        return host.vde.tap

    def guests_label(self, host):
        return 'VDE'


class Lan(GuestNetwork):
    """bridged_lan: the guest is in the LAN subnet; the gateway, if any, is the LAN's router."""

    name = 'lan'
    lan_visible = True

    def ipv6_refused(self, topology):
        return ('%s guests take their IPv6 addresses by SLAAC from the LAN\'s router; leave it out'
                % topology.name)

    def missing_address(self, host, guest):
        return ('%s.address: missing; a bridged_lan guest needs its LAN address in %s; '
                'pools do not plan LAN addresses, only the LAN knows which are free'
                % (guest.path, _lan_text(host)))

    def resolve(self, host, guest, error):
        # The LAN subnet is the uplink address's, else tuntap_qemu_uplink_network; a DHCP
        # uplink without it leaves the guest's address (with its own prefix) unchecked.
        lan, variable = host.lan
        path = guest.path
        if lan is not None and not _in_subnet(guest, lan, 'the LAN subnet',
                                              '(%s); bridged_lan guests are on the LAN' % variable, error):
            return None
        if guest.gateway_given is None:
            return Resolved(guest, None)
        gateway = _checked_gateway(guest, error)
        if gateway is None:
            return None
        if host.uplink_net is not None and gateway == host.uplink_net.ip:
            error('%s.gateway: %r is this host, which does not route in bridged_lan; give the '
                  "LAN's router or no gateway" % (path, guest.gateway_given))
            return None
        return Resolved(guest, str(gateway))


OWN_SUBNET = OwnSubnet()
BRIDGE_SUBNET = BridgeSubnet()
LAN = Lan()
VDE_SUBNET = VdeSubnet()


def of_guest(host, guest):
    """The kind of network `guest` of `host` is on: the VDE subnet for a VDE guest, else its
    topology's (None when the topology is invalid)."""
    if guest.vde:
        return VDE_SUBNET
    return host.topology.guests if host.topology is not None else None


def _address6_text(guest):
    """A guest's address6 as the inventory gave it, or as the plan made it."""
    if guest.address6_given is not None:
        return guest.address6_given
    return names.normalize_address(guest.net6)
