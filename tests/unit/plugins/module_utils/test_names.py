# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Table-driven tests of interface-name, address, network, MAC and owner validation."""

from __future__ import annotations

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils import names


@pytest.mark.parametrize('value, fragment', [
    ('tap0', None),
    ('br-guests', None),
    ('a' * 15, None),
    ('', 'must not be empty'),
    (None, 'must not be empty'),
    ('a' * 16, 'is 16 bytes long; Linux allows at most 15'),
    ('tapé' * 4, 'bytes long'),
    ('tap/0', "contains '/'"),
    ('tap 0', "contains ' '"),
    ('tap\t0', "contains '\\t'"),
    ('eth0:1', "contains ':'"),
    ('.', 'is not allowed'),
    ('..', 'is not allowed'),
])
def test_ifname_error(value, fragment):
    error = names.ifname_error('devices[3].name', value)
    if fragment is None:
        assert error is None
    else:
        assert error.startswith('devices[3].name: ')
        assert fragment in error


@pytest.mark.parametrize('value, expected, fragment', [
    ('192.168.0.1/24', '192.168.0.1/24', None),
    ('10.0.0.5/32', '10.0.0.5/32', None),
    ('10.0.0.0/31', '10.0.0.0/31', None),
    ('fd00::1/64', 'fd00::1/64', None),
    ('FD00:0:0:0::A/64', 'fd00::a/64', None),
    ('192.168.0.1', None, 'write ADDRESS/PREFIX'),
    ('192.168.0.0/24', None, 'is the network address of its subnet'),
    ('192.168.0.1/33', None, 'is not a valid ADDRESS/PREFIX'),
    ('192.168.0.1/', None, 'invalid prefix length'),
    ('192.168.0.1/x', None, 'invalid prefix length'),
    ('300.1.1.1/24', None, 'is not a valid ADDRESS/PREFIX'),
    ('224.0.0.1/24', None, 'multicast'),
    ('bogus/24', None, 'is not a valid ADDRESS/PREFIX'),
])
def test_parse_interface_address(value, expected, fragment):
    net, error = names.parse_interface_address('addresses[0]', value)
    if fragment is None:
        assert error is None
        assert names.normalize_address(net) == expected
    else:
        assert net is None
        assert error.startswith('addresses[0]: %r' % value)
        assert fragment in error


@pytest.mark.parametrize('value, fragment', [
    ('192.168.0.0/24', None),
    ('fd00:1::/64', None),
    ('192.168.0.1/24', 'has host bits set; the network is 192.168.0.0/24'),
    ('192.168.0.0', 'has no prefix length'),
    ('192.168.0.0/40', 'is not a valid network'),
    (5, 'is not a network in CIDR form'),
])
def test_parse_network(value, fragment):
    net, error = names.parse_network('source[1]', value)
    if fragment is None:
        assert error is None and str(net.cidr) == value
    else:
        assert net is None and error.startswith('source[1]: ') and fragment in error


@pytest.mark.parametrize('value, expected, fragment', [
    ('52:54:00:12:34:56', '52:54:00:12:34:56', None),
    ('52-54-00-AB-CD-EF', '52:54:00:ab:cd:ef', None),
    ('11:22:33:44:55:66', None, 'is a multicast MAC'),
    ('ff:ff:ff:ff:ff:ff', None, 'is a multicast MAC'),
    ('00:00:00:00:00:00', None, 'all-zero'),
    ('52:54:00:12:34', None, 'is not a MAC address'),
    ('hello', None, 'is not a MAC address'),
])
def test_parse_mac(value, expected, fragment):
    mac, error = names.parse_mac('guests[2].mac', value)
    if fragment is None:
        assert (mac, error) == (expected, None)
    else:
        assert mac is None and error.startswith('guests[2].mac: ') and fragment in error


def test_duplicate_errors_name_both_positions():
    errors = names.duplicate_errors('names', ['tap0', 'tap1', 'tap0', 'tap1', 'tap2'])
    assert errors == ["names[2]: 'tap0' is listed twice (also at names[0])",
                      "names[3]: 'tap1' is listed twice (also at names[1])"]


@pytest.mark.parametrize('value, expected, fragment', [
    ('root', 0, None),
    ('0', 0, None),
    ('4242', 4242, None),
    ('no-such-user-xyz', None, "unknown user 'no-such-user-xyz'"),
    ('', None, 'must not be empty'),
])
def test_resolve_user(value, expected, fragment):
    uid, error = names.resolve_user('user', value)
    if fragment is None:
        assert (uid, error) == (expected, None)
    else:
        assert uid is None and error.startswith('user: ') and fragment in error


def test_resolve_group_unknown():
    gid, error = names.resolve_group('devices[0].group', 'no-such-group-xyz')
    assert gid is None
    assert error == "devices[0].group: unknown group 'no-such-group-xyz' on this host"
    assert names.resolve_group('group', 'root') == (0, None)
