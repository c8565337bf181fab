# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation of interface names, CIDRs, MACs and owners.

Pure functions shared by the modules and the fleet plan.  Every checker returns an
error string that names the option path and the offending value, or None.
"""

from __future__ import annotations

import grp
import importlib.util
import pwd

# netaddr costs about 85 ms to import: it is imported on first use (parse_interface_address,
# parse_network, parse_mac, or names.netaddr in the other module_utils), so a module whose
# request holds no address or MAC never imports it. Whether it is installed is known up front.
HAS_NETADDR = importlib.util.find_spec('netaddr') is not None
NETADDR_IMPORT_ERROR = None if HAS_NETADDR else ImportError("No module named 'netaddr'")


def _netaddr():
    import netaddr  # pylint: disable=import-outside-toplevel
    return netaddr


def __getattr__(name):
    """`names.netaddr`: the netaddr module, imported on first use."""
    if name == 'netaddr':
        return _netaddr()
    raise AttributeError('module %r has no attribute %r' % (__name__, name))


# IFNAMSIZ is 16 including the terminating NUL.
IFNAME_MAX_BYTES = 15
NETADDR_LIBRARY = 'netaddr (Debian package python3-netaddr, PyPI package netaddr)'


def ifname_error(path, value):
    """Return an error for an invalid Linux interface name, else None."""
    if value is None or value == '':
        return '%s: interface name must not be empty' % path
    if not isinstance(value, str):
        return '%s: interface name must be a string, got %r' % (path, value)
    if len(value.encode('utf-8')) > IFNAME_MAX_BYTES:
        return ('%s: interface name %r is %d bytes long; Linux allows at most %d'
                % (path, value, len(value.encode('utf-8')), IFNAME_MAX_BYTES))
    if value in ('.', '..'):
        return '%s: interface name %r is not allowed' % (path, value)
    for char in value:
        if char == '/' or char == ':' or char.isspace():
            return ('%s: interface name %r contains %r; names may not contain '
                    "'/', ':' or whitespace" % (path, value, char))
    return None


def duplicate_errors(path, values):
    """Errors for values that occur more than once in a list."""
    seen = {}
    errors = []
    for index, value in enumerate(values):
        if value in seen:
            errors.append('%s[%d]: %r is listed twice (also at %s[%d])'
                          % (path, index, value, path, seen[value]))
        else:
            seen[value] = index
    return errors


def parse_interface_address(path, value):
    """Parse 'ADDRESS/PREFIX' as assigned to an interface.

    Returns (IPNetwork, None) or (None, error).  The address keeps its host bits
    (192.168.0.1/24); the network address itself of a multi-host subnet is refused.
    """
    if not isinstance(value, str) or '/' not in value:
        return None, ('%s: %r is not an interface address; write ADDRESS/PREFIX, '
                      'for example 192.168.0.1/24 or fd00::1/64' % (path, value))
    prefix = value.split('/', 1)[1]
    if not prefix.isdigit():
        return None, '%s: %r has an invalid prefix length %r' % (path, value, prefix)
    netaddr = _netaddr()
    try:
        net = netaddr.IPNetwork(value)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None, '%s: %r is not a valid ADDRESS/PREFIX' % (path, value)
    host_bits = net.size > 2
    if host_bits and net.ip == net.network:
        return None, ('%s: %r is the network address of its subnet, not a host '
                      'address; did you mean %s/%d?' % (path, value, net.network + 1, net.prefixlen))
    if net.ip.is_multicast():
        return None, '%s: %r is a multicast address' % (path, value)
    return net, None


def parse_network(path, value):
    """Parse a network in CIDR form with no host bits set (192.168.0.0/24)."""
    if not isinstance(value, str):
        return None, '%s: %r is not a network in CIDR form' % (path, value)
    netaddr = _netaddr()
    try:
        net = netaddr.IPNetwork(value)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None, '%s: %r is not a valid network in CIDR form' % (path, value)
    if '/' not in value:
        return None, ('%s: %r has no prefix length; write a network such as %s/%d'
                      % (path, value, net.ip, net.prefixlen))
    if net.ip != net.network:
        return None, ('%s: %r has host bits set; the network is %s'
                      % (path, value, net.cidr))
    return net, None


def normalize_address(net):
    """Canonical text of an interface address: '192.168.0.1/24', 'fd00::1/64'."""
    return '%s/%d' % (net.ip, net.prefixlen)


def parse_mac(path, value):
    """Parse a unicast MAC; returns (canonical 'aa:bb:..', None) or (None, error)."""
    netaddr = _netaddr()
    try:
        mac = netaddr.EUI(value)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None, '%s: %r is not a MAC address' % (path, value)
    if mac.version != 48:
        return None, '%s: %r is not a 48-bit MAC address' % (path, value)
    first_octet = int(mac.words[0])
    if first_octet & 0x01:
        return None, ('%s: %r is a multicast MAC (the least significant bit of the first '
                      'octet is set); a NIC needs a unicast MAC such as 52:54:00:12:34:56'
                      % (path, value))
    if int(mac) == 0:
        return None, '%s: %r is the all-zero MAC' % (path, value)
    return format_mac(mac), None


def format_mac(mac):
    """Lower-case colon-separated text of a netaddr.EUI."""
    return ':'.join('%02x' % int(word) for word in mac.words)


def resolve_user(path, value):
    """Resolve a user name or numeric id to a uid: (uid, None) or (None, error)."""
    return _resolve(path, value, 'user', pwd.getpwnam, pwd.getpwuid, 'pw_uid')


def resolve_group(path, value):
    """Resolve a group name or numeric id to a gid: (gid, None) or (None, error)."""
    return _resolve(path, value, 'group', grp.getgrnam, grp.getgrgid, 'gr_gid')


def _resolve(path, value, what, by_name, by_id, id_field):
    text = str(value).strip()
    if text == '':
        return None, '%s: %s must not be empty' % (path, what)
    if text.isdigit():
        number = int(text)
        try:
            by_id(number)
        except KeyError:
            # A numeric id without a passwd/group entry is legal for the kernel.
            pass
        return number, None
    try:
        return getattr(by_name(text), id_field), None
    except KeyError:
        return None, '%s: unknown %s %r on this host' % (path, what, text)
