# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host plan (_fleet/host_plan.py) rendered as Debian ifupdown stanzas for /etc/network/interfaces.d.

The same plan the roles converge at runtime, so what comes back at boot is what the
converge made: taps created with their owner (`ip tuntap add ... user`, the modern form of
`tunctl -u`), their host-side addresses, the bridge with `bridge_ports` (bridge-utils'
ifupdown hook) and its isolated ports (bridge.isolated_ports, set in the bridge's `up` once
they are enslaved), and for bridged_lan the uplink as a manual port whose address moved to the
bridge. Forwarding and NAT come back through their own files (sysctl.d, nftables).

A DHCP uplink (bridge.dhcp) makes the bridge `iface BR inet dhcp`: ifupdown starts its
dhclient on the bridge, which has the uplink's MAC (bridge_hw), so the lease is the same.

`carry` is what uplink_stanza took over from the admin's own stanza of the uplink, or None:

    {"uplink": "eth0", "method": "static"|"dhcp"|..., "allow": ["allow-hotplug"],
     "bridge_options": [["mtu", "9000"], ["dns-nameservers", "10.44.0.1"]],
     "port_options": [["mtu", "9000"]],
     "inet6": [{"method": "static", "options": [["address", "2001:db8::50/64"]]}],
     "warnings": []}

bridge_options go into the bridge's inet stanza (after address and gateway), port_options
into the uplink's manual stanza, each inet6 entry becomes `iface BR inet6 METHOD` with its
options (after the plan's own IPv6 stanzas).
"""

from __future__ import annotations

from ansible_collections.tuntap.qemu.plugins.module_utils._links import marks

HEADER = ('# Managed by tuntap.qemu (topology {topology}); local changes are overwritten.\n'
          '# Taps, bridge and addresses of the guests; forwarding and NAT are restored by\n'
          '# /etc/sysctl.d and nftables.\n')


def _family(address):
    return 'inet6' if ':' in address.split('/')[0] else 'inet'


def _address_lines(address, advertised=False):
    """The address of a stanza. An IPv6 one without duplicate address detection
    (`dad-attempts 0`: ifupdown adds it `nodad`): a tap has no carrier until its QEMU opens it,
    nor a bridge until a port has one, so the address would stay tentative and ifupdown's
    settle-dad.sh would fail the interface after 6 s (`ifup -a`, networking.service, at boot).
    The host side of a guest network is the host's own: nothing else on it claims it.
    `advertised`: the host's DHCP server sends router advertisements there (the plan's
    dhcp.networks[].address6), and a router takes none of its own: `accept_ra 0` (ifupdown's
    inet6 static sets autoconf 0 by itself, accept_ra only when given), as guest_dhcp sets both
    at runtime."""
    lines = ['    address %s' % address]
    if _family(address) == 'inet6':
        lines.append('    dad-attempts 0')
        if advertised:
            lines.append('    accept_ra 0')
    return lines


def _tap_stanza(tap, advertised=()):
    owner = ''
    if tap.get('user') is not None:
        owner += ' user %s' % tap['user']
    if tap.get('group') is not None:
        owner += ' group %s' % tap['group']
    addresses = tap.get('addresses') or []
    lines = ['auto %s' % tap['name']]
    first = addresses[0] if addresses else None
    lines.append('iface %s %s %s' % (tap['name'], _family(first) if first else 'inet',
                                     'static' if first else 'manual'))
    if first:
        lines += _address_lines(first, tap['name'] in advertised)
    lines.append('    pre-up ip tuntap add dev %s mode tap%s' % (tap['name'], owner))
    lines.append('    up ip link set dev %s up' % tap['name'])
    # Our mark, as tap_device sets it: a later converge knows the tap as ours (prune).
    lines.append("    up ip link set dev %s alias '%s'" % (tap['name'], marks.tap_mark()))
    lines.append('    post-down ip tuntap del dev %s mode tap' % tap['name'])
    for address in addresses[1:]:
        lines += ['', 'iface %s %s static' % (tap['name'], _family(address))] + _address_lines(
            address, tap['name'] in advertised)
    return lines


def _options(options):
    return ['    %s %s' % (key, value) if value != '' else '    %s' % key for key, value in options]


def _carried(carry, key):
    return list((carry or {}).get(key) or [])


def _port_lets_go_of_ra(port):
    """What the uplink learned from the LAN's router advertisements, let go once it is a port
    (the bridge's `up`: bridge-utils' hook enslaved it in pre-up), as uplink_takeover does at
    runtime. An uplink that is up before ifupdown (or one that hears an RA between the pre-up
    flush and its enslavement) makes a SLAAC address - the same one br0 makes, bridge_hw gives
    both the MAC - and RA routes: the default route (proto ra) and the on-link route of the
    prefix (proto kernel; removing the SLAAC address leaves it, and with an infinite lifetime,
    dnsmasq's ra-only default, it has no expiry either). A port hears no RA any more, so nothing
    brings them back; br0 hears the router and makes its own. With no global address left on
    the port, every proto kernel IPv6 route of it but fe80::/64 is such a prefix route."""
    return ['    up ip -6 address flush dev %s scope global' % port,
            '    up ip -6 route flush dev %s proto ra' % port,
            "    up ip -6 route show dev %s proto kernel | awk '$1 !~ /^fe80:/ {print $1}'"
            ' | xargs -r -n1 ip -6 route del dev %s proto kernel' % (port, port)]


def _bridge_stanza(bridge, gateway=None, carry=None, advertised=()):
    ports = bridge.get('ports') or []
    dhcp = bool(bridge.get('dhcp'))
    addresses = [] if dhcp else (bridge.get('addresses') or [])
    first = addresses[0] if addresses else None
    if dhcp:
        method = 'dhcp'
    else:
        method = 'static' if first else 'manual'
    lines = ['auto %s' % bridge['name'],
             'iface %s %s %s' % (bridge['name'], _family(first) if first else 'inet', method)]
    if first:
        lines += _address_lines(first, bridge['name'] in advertised)
        if gateway:
            lines.append('    gateway %s' % gateway)
    lines += _options(_carried(carry, 'bridge_options'))
    if bridge.get('uplink'):
        # bridged_lan: the uplink's addresses are the bridge's now. Whatever still gives it
        # one at boot (the host's own stanza for it, which ifup -a runs as well) is undone
        # here, after every stanza of the uplink, or the address would be on both.
        lines.append('    pre-up ip address flush dev %s scope global' % bridge['uplink'])
    lines.append('    bridge_ports %s' % (' '.join(ports) if ports else 'none'))
    if bridge.get('uplink'):
        # The bridge takes the uplink's MAC, as bridge_port does at runtime: the host keeps
        # its MAC on the LAN (else the kernel picks the lowest port MAC, maybe a tap's), and
        # a DHCP server gives the bridge the uplink's lease.
        lines.append('    bridge_hw %s' % bridge['uplink'])
    lines.append('    bridge_stp off')
    lines.append('    bridge_fd 0')
    lines.append('    bridge_maxwait 0')
    # Our mark, as bridge_port sets it (bridge-utils' hook makes the bridge after pre-up).
    lines.append("    up ip link set dev %s alias '%s'"
                 % (bridge['name'], marks.bridge_mark(bridge.get('uplink'), dhcp)))
    # Isolated guests (bridge_port's isolated_ports, the kernel's BR_ISOLATED): bridge-utils'
    # hook enslaved the ports in pre-up, and a port joins a bridge without the flag.
    for port in bridge.get('isolated_ports') or []:
        lines.append('    up ip link set dev %s type bridge_slave isolated on' % port)
    if bridge.get('uplink'):
        lines += _port_lets_go_of_ra(bridge['uplink'])
    for address in addresses[1:]:
        lines += ['', 'iface %s %s static' % (bridge['name'], _family(address))] + _address_lines(
            address, bridge['name'] in advertised)
    for stanza in _carried(carry, 'inet6'):
        lines += ['', 'iface %s inet6 %s' % (bridge['name'], stanza.get('method') or 'manual')]
        lines += _options(stanza.get('options') or [])
    return lines


def render_interfaces(plan, uplink_gateway=None, carry=None):
    """The interfaces.d file of one host plan, as text.

    The bridged_lan gateway is the plan's (bridge.gateway), the one the converge checked the
    host against; `uplink_gateway` is only for plans that carry none. A DHCP bridge has no
    gateway line (the lease gives the router). `carry` (uplink_stanza's result, or None): the
    options of the admin's uplink stanza, for a bridge that took the uplink over.
    """
    blocks = []
    bridge = plan.get('bridge')
    if bridge and 'gateway' in bridge:
        uplink_gateway = bridge['gateway']
    takes_uplink = bool(bridge and bridge.get('uplink'))
    if not takes_uplink:
        carry = None
    if takes_uplink:
        # bridged_lan: the uplink carries no address of its own any more; it is a port.
        blocks.append(['auto %s' % bridge['uplink'],
                       'iface %s inet manual' % bridge['uplink']] +
                      _options(_carried(carry, 'port_options')) +
                      ['    up ip link set dev %s up' % bridge['uplink']])
    # The interfaces where the host's DHCP server advertises an IPv6 network (guest_dhcp).
    advertised = set(network['interface'] for network in ((plan.get('dhcp') or {}).get('networks') or [])
                     if network.get('address6'))
    for tap in plan.get('taps') or []:
        blocks.append(_tap_stanza(tap, advertised))
    if bridge:
        gateway = uplink_gateway if takes_uplink and not bridge.get('dhcp') else None
        blocks.append(_bridge_stanza(bridge, gateway, carry, advertised))
    text = HEADER.format(topology=plan.get('topology'))
    return text + ''.join('\n' + '\n'.join(block) + '\n' for block in blocks)
