# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a guest needs to join its topology: stable MACs and its network configuration
rendered as a Debian /etc/network/interfaces stanza or as a kernel `ip=` argument."""

from __future__ import annotations

import hashlib

from ansible_collections.tuntap.qemu.plugins.module_utils import names

QEMU_OUI = '52:54:00'


def stable_mac(guest, nic_index):
    """A MAC with QEMU's 52:54:00 prefix derived from the guest name and NIC index.

    The same guest and NIC get the same MAC on every run and every controller.
    """
    digest = hashlib.sha256(('%s/%d' % (guest, nic_index)).encode('utf-8')).digest()
    return '%s:%02x:%02x:%02x' % (QEMU_OUI, digest[0], digest[1], digest[2])


def guest_network(path, address, gateway=None):
    """Validate a guest's address (ADDRESS/PREFIX) and gateway; (dict, errors)."""
    errors = []
    net, error = names.parse_interface_address('%s.address' % path, address)
    if error:
        return None, [error]
    result = {'address': names.normalize_address(net), 'ip': str(net.ip),
              'prefixlen': net.prefixlen, 'netmask': str(net.netmask),
              'network': str(net.cidr), 'version': net.version, 'gateway': None}
    if gateway:
        try:
            gw = names.netaddr.IPAddress(gateway)
        except (names.netaddr.AddrFormatError, ValueError, TypeError):
            return None, ['%s.gateway: %r is not an IP address' % (path, gateway)]
        if gw not in net:
            errors.append('%s.gateway: %s is outside the guest subnet %s' % (path, gateway, net.cidr))
        elif gw == net.ip:
            errors.append('%s.gateway: %s is the guest address itself' % (path, gateway))
        result['gateway'] = str(gw)
    return result, errors


def render_interfaces_stanza(network, device='eth0', inet6=None):
    """The Debian /etc/network/interfaces stanza of the classic guide, for inside the guest.

    inet6: a dual-stack guest's IPv6 network (guest_network() of its address6, with 'slaac':
    True when its kernel makes the address from the router advertisements): a second stanza,
    `inet6 auto` (SLAAC) or `inet6 static`.
    """
    family = 'inet' if network['version'] == 4 else 'inet6'
    lines = ['auto %s' % device, 'iface %s %s static' % (device, family),
             '    address %s' % network['address']]
    if network['gateway']:
        lines.append('    gateway %s' % network['gateway'])
    if inet6 is not None and inet6.get('slaac'):
        lines.append('iface %s inet6 auto' % device)
    elif inet6 is not None:
        lines.extend(['iface %s inet6 static' % device, '    address %s' % inet6['address']])
        if inet6['gateway']:
            lines.append('    gateway %s' % inet6['gateway'])
    return '\n'.join(lines) + '\n'


def render_kernel_ip(network, hostname='', device='eth0'):
    """The kernel command line form: ip=<client>::<gateway>:<netmask>:<hostname>:<device>:off"""
    if network['version'] != 4:
        raise ValueError('the kernel ip= argument describes IPv4 only')
    return 'ip=%s::%s:%s:%s:%s:off' % (network['ip'], network['gateway'] or '',
                                       network['netmask'], hostname, device)
