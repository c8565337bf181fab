# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""take / restore / carry of the uplink's ifupdown stanzas, table-driven over interfaces texts."""

from __future__ import annotations

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils import ifupdown_stanzas as stanzas

BEGIN = stanzas.begin_line('eth0', 'br0', stanzas.DEFAULT_MANAGED_FILE)
END = '# END tuntap.qemu uplink eth0\n'


def carry(**fields):
    base = {'uplink': 'eth0', 'method': None, 'allow': [], 'bridge_options': [], 'port_options': [],
            'inet6': [], 'warnings': []}
    base.update(fields)
    return base


# name, text, expected taken text, expected carry dict
CASES = [
    ('allow-hotplug static',
     'source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\n'
     'allow-hotplug eth0\niface eth0 inet static\n    address 10.44.0.50/24\n    gateway 10.44.0.1\n',
     'source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\n'
     + BEGIN + '#ttq:allow-hotplug eth0\n#ttq:iface eth0 inet static\n#ttq:    address 10.44.0.50/24\n'
     '#ttq:    gateway 10.44.0.1\n' + END,
     carry(method='static', allow=['allow-hotplug'])),
    ('auto dhcp',
     'auto eth0\niface eth0 inet dhcp\n',
     BEGIN + '#ttq:auto eth0\n#ttq:iface eth0 inet dhcp\n' + END,
     carry(method='dhcp', allow=['auto'])),
    ('auto lo eth0 on one line',
     'auto lo eth0\niface lo inet loopback\niface eth0 inet dhcp\n',
     BEGIN + '#ttq:auto lo eth0\nauto lo\n' + END + 'iface lo inet loopback\n'
     + BEGIN + '#ttq:iface eth0 inet dhcp\n' + END,
     carry(method='dhcp', allow=['auto'])),
    ('inet6 stanza, comment between stanzas taken with them, trailing comment stays',
     'allow-hotplug eth0\niface eth0 inet dhcp\n# This is an autoconfigured IPv6 interface\n'
     'iface eth0 inet6 auto\n    privext 2\n\n# the end\n',
     BEGIN + '#ttq:allow-hotplug eth0\n#ttq:iface eth0 inet dhcp\n'
     '#ttq:# This is an autoconfigured IPv6 interface\n#ttq:iface eth0 inet6 auto\n#ttq:    privext 2\n'
     + END + '\n# the end\n',
     carry(method='dhcp', allow=['allow-hotplug'],
           inet6=[{'method': 'auto', 'options': [['privext', '2']]}])),
    ('options mtu, dns-*, hwaddress and an up line that names eth0',
     'auto eth0\niface eth0 inet static\n\taddress 10.44.0.50\n\tnetmask 255.255.255.0\n\tmtu 9000\n'
     '\thwaddress ether 52:54:00:12:34:56\n\tdns-nameservers 10.44.0.1  9.9.9.9\n\tdns-search lan\n'
     '\tup ip route add 10.9.0.0/16 via 10.44.0.2 dev eth0\n\tpost-up echo up\n',
     BEGIN + '#ttq:auto eth0\n#ttq:iface eth0 inet static\n#ttq:\taddress 10.44.0.50\n'
     '#ttq:\tnetmask 255.255.255.0\n#ttq:\tmtu 9000\n#ttq:\thwaddress ether 52:54:00:12:34:56\n'
     '#ttq:\tdns-nameservers 10.44.0.1  9.9.9.9\n#ttq:\tdns-search lan\n'
     '#ttq:\tup ip route add 10.9.0.0/16 via 10.44.0.2 dev eth0\n#ttq:\tpost-up echo up\n' + END,
     carry(method='static', allow=['auto'],
           bridge_options=[['mtu', '9000'], ['dns-nameservers', '10.44.0.1  9.9.9.9'], ['dns-search', 'lan'],
                           ['up', 'ip route add 10.9.0.0/16 via 10.44.0.2 dev eth0'], ['post-up', 'echo up']],
           port_options=[['mtu', '9000'], ['hwaddress', 'ether 52:54:00:12:34:56']],
           warnings=['the command "up ip route add 10.9.0.0/16 via 10.44.0.2 dev eth0" of iface eth0 inet '
                     'names eth0; on the bridge it runs as written, check it'])),
    ('comments inside the stanza, blank line after it stays outside',
     'iface eth0 inet static\n  # the LAN address\n  address 10.44.0.50/24\n\n  # gw\n  gateway 10.44.0.1\n\n'
     'auto eth1\n',
     BEGIN + '#ttq:iface eth0 inet static\n#ttq:  # the LAN address\n#ttq:  address 10.44.0.50/24\n#ttq:\n'
     '#ttq:  # gw\n#ttq:  gateway 10.44.0.1\n' + END + '\nauto eth1\n',
     carry(method='static')),
    ('stanza at EOF without newline',
     'auto lo\niface eth0 inet static\n    address 10.44.0.50/24',
     'auto lo\n' + BEGIN + '#ttq:iface eth0 inet static\n#ttq:    address 10.44.0.50/24\n' + END.rstrip('\n'),
     carry(method='static')),
    ('auto lo eth0 at EOF without newline',
     'iface eth0 inet dhcp\nauto lo eth0',
     BEGIN + '#ttq:iface eth0 inet dhcp\n#ttq:auto lo eth0\nauto lo\n' + END.rstrip('\n'),
     carry(method='dhcp', allow=['auto'])),
    ('eth0 not configured',
     'auto lo\niface lo inet loopback\n# eth0 is not here\n',
     'auto lo\niface lo inet loopback\n# eth0 is not here\n',
     carry()),
    ('empty file', '', '', carry()),
    ('eth1 untouched, eth0 between',
     'auto eth1\niface eth1 inet dhcp\nauto eth0\niface eth0 inet manual\niface eth1 inet6 auto\n',
     'auto eth1\niface eth1 inet dhcp\n' + BEGIN + '#ttq:auto eth0\n#ttq:iface eth0 inet manual\n' + END
     + 'iface eth1 inet6 auto\n',
     carry(method='manual', allow=['auto'])),
    ('vlan eth0.10 is another interface: untouched, with a warning',
     'auto eth0.10\niface eth0.10 inet static\n    address 10.10.0.2/24\n',
     'auto eth0.10\niface eth0.10 inet static\n    address 10.10.0.2/24\n',
     carry(warnings=['iface eth0.10 (a VLAN on eth0) is not moved: eth0 is a bridge port now, so the VLAN '
                     'belongs on the bridge'])),
    ('alias eth0:1 is taken with its auto name, not carried',
     'auto eth0 eth0:1\niface eth0 inet dhcp\niface eth0:1 inet static\n    address 10.44.1.1/24\n',
     BEGIN + '#ttq:auto eth0 eth0:1\n#ttq:iface eth0 inet dhcp\n#ttq:iface eth0:1 inet static\n'
     '#ttq:    address 10.44.1.1/24\n' + END,
     carry(method='dhcp', allow=['auto'],
           warnings=['the alias stanza iface eth0:1 inet static was moved out and is not carried; give its '
                     'addresses to the bridge'])),
    ('no-auto-down and rename: no-auto-down taken with a warning, rename stays',
     'rename enp1s0=eth0\nno-auto-down eth0 eth1\nallow-hotplug eth0\niface eth0 inet dhcp\n',
     'rename enp1s0=eth0\n' + BEGIN + '#ttq:no-auto-down eth0 eth1\nno-auto-down eth1\n'
     '#ttq:allow-hotplug eth0\n#ttq:iface eth0 inet dhcp\n' + END,
     carry(method='dhcp', allow=['allow-hotplug'],
           warnings=['no-auto-down eth0 is not carried to the bridge; add it to the bridge by hand if it is '
                     'still wanted'])),
    ('continued line and an option with the uplink as a prefix of another name',
     'auto eth0 \\\n  eth01\niface eth0 inet static\n    address 10.44.0.50/24\n    up echo \\\n   two\n'
     'iface eth01 inet dhcp\n',
     BEGIN + '#ttq:auto eth0 \\\n#ttq:  eth01\nauto eth01\n#ttq:iface eth0 inet static\n'
     '#ttq:    address 10.44.0.50/24\n#ttq:    up echo \\\n#ttq:   two\n' + END + 'iface eth01 inet dhcp\n',
     carry(method='static', allow=['auto'], bridge_options=[['up', 'echo    two']])),
    ('both auto and allow-hotplug, and a second inet stanza',
     'auto eth0\nallow-hotplug eth0\niface eth0 inet static\n    address 10.44.0.50/24\n'
     'iface eth0 inet static\n    address 10.44.0.51/24\n    mtu 1400\n',
     BEGIN + '#ttq:auto eth0\n#ttq:allow-hotplug eth0\n#ttq:iface eth0 inet static\n'
     '#ttq:    address 10.44.0.50/24\n#ttq:iface eth0 inet static\n#ttq:    address 10.44.0.51/24\n'
     '#ttq:    mtu 1400\n' + END,
     carry(method='static', allow=['auto', 'allow-hotplug'], bridge_options=[['mtu', '1400']],
           port_options=[['mtu', '1400']],
           warnings=['2 inet stanzas for eth0: their options are carried together'])),
    ('an option of another interface kind cannot be carried',
     'iface eth0 inet dhcp\n    bond-master bond0\n',
     BEGIN + '#ttq:iface eth0 inet dhcp\n#ttq:    bond-master bond0\n' + END,
     carry(method='dhcp', warnings=['option bond-master bond0 of iface eth0 inet cannot be carried to a bridge'])),
]
IDS = [case[0] for case in CASES]


@pytest.mark.parametrize('name, text, taken, expected', CASES, ids=IDS)
def test_take(name, text, taken, expected):
    result = stanzas.take(text, 'eth0', 'br0')
    assert result.text == taken
    assert result.changed is (taken != text)
    assert result.carry.to_dict() == expected


@pytest.mark.parametrize('name, text, taken, expected', CASES, ids=IDS)
def test_take_is_idempotent(name, text, taken, expected):
    first = stanzas.take(text, 'eth0', 'br0')
    again = stanzas.take(first.text, 'eth0', 'br0')
    assert again.text == first.text
    assert again.changed is False
    assert again.carry == first.carry


@pytest.mark.parametrize('name, text, taken, expected', CASES, ids=IDS)
def test_restore_round_trip_is_byte_identical(name, text, taken, expected):
    restored = stanzas.restore(stanzas.take(text, 'eth0', 'br0').text, 'eth0')
    assert restored.text == text
    assert restored.changed is (taken != text)
    assert restored.carry.to_dict() == (expected if taken != text else carry())


@pytest.mark.parametrize('name, text, taken, expected', CASES, ids=IDS)
def test_restore_of_an_untaken_text_changes_nothing(name, text, taken, expected):
    result = stanzas.restore(text, 'eth0')
    assert result.text == text and result.changed is False


@pytest.mark.parametrize('name, text, taken, expected', CASES, ids=IDS)
def test_taken_text_no_longer_configures_the_uplink(name, text, taken, expected):
    assert stanzas.configures(taken, 'eth0') is False
    assert stanzas.configures(text, 'eth0') is (taken != text)


def test_blocks_of_another_uplink_are_left_alone():
    text = 'auto eth0\n# between\nauto eth1\niface eth0 inet dhcp\niface eth1 inet dhcp\n'
    for first, second in (('eth0', 'eth1'), ('eth1', 'eth0')):
        both = stanzas.take(stanzas.take(text, first, 'br0').text, second, 'br1').text
        assert stanzas.configures(both, 'eth0') is False and stanzas.configures(both, 'eth1') is False
        assert stanzas.take(both, first, 'br0').changed is False
        for back in ((first, second), (second, first)):
            assert stanzas.restore(stanzas.restore(both, back[0]).text, back[1]).text == text


def test_a_line_shared_with_another_uplinks_block_is_refused():
    taken = stanzas.take('auto eth0 eth1\n', 'eth0', 'br0').text
    with pytest.raises(stanzas.StanzaError, match='inside the block of another uplink'):
        stanzas.take(taken, 'eth1', 'br1')


def test_active_rewrite_inside_the_block_is_dropped_by_restore():
    taken = stanzas.take('auto lo eth0\n', 'eth0', 'br0').text
    assert 'auto lo\n' in taken.splitlines(True)
    assert stanzas.restore(taken, 'eth0').text == 'auto lo eth0\n'


def test_bridge_renamed_rewrites_the_comment():
    text = 'auto eth0\niface eth0 inet dhcp\n'
    taken = stanzas.take(text, 'eth0', 'br0').text
    again = stanzas.take(taken, 'eth0', 'brlan')
    assert again.changed is True and 'port of brlan' in again.text
    assert stanzas.restore(again.text, 'eth0').text == text


def test_lines_added_outside_the_block_are_taken_too():
    taken = stanzas.take('auto eth0\niface eth0 inet dhcp\n', 'eth0', 'br0').text
    added = stanzas.take(taken + 'iface eth0 inet6 auto\n', 'eth0', 'br0')
    assert added.changed is True
    assert added.carry.to_dict()['inet6'] == [{'method': 'auto', 'options': []}]
    assert stanzas.configures(added.text, 'eth0') is False
    assert stanzas.restore(added.text, 'eth0').text == 'auto eth0\niface eth0 inet dhcp\niface eth0 inet6 auto\n'


@pytest.mark.parametrize('damaged, message', [
    (BEGIN + '#ttq:auto eth0\n', 'has no'),
    ('#ttq:auto eth0\n' + END, 'without its BEGIN'),
    (BEGIN + '#ttq:auto eth0\n' + BEGIN + END, 'inside another'),
])
def test_damaged_blocks_are_refused(damaged, message):
    with pytest.raises(stanzas.StanzaError, match=message):
        stanzas.restore(damaged, 'eth0')
    with pytest.raises(stanzas.StanzaError, match=message):
        stanzas.take(damaged, 'eth0', 'br0')


def test_carry_is_frozen():
    result = stanzas.take('auto eth0\niface eth0 inet dhcp\n', 'eth0', 'br0')
    with pytest.raises(AttributeError):
        result.carry.method = 'static'


@pytest.mark.parametrize('texts, expected', [
    ({'/etc/network/interfaces.d/eth0': 'auto eth0\niface eth0 inet dhcp\n',
      '/etc/network/interfaces.d/eth1': 'auto eth1\niface eth1 inet dhcp\n',
      '/etc/network/interfaces.d/vlan': 'iface eth0.10 inet manual\n',
      '/etc/network/interfaces.d/taken': stanzas.take('auto eth0\n', 'eth0', 'br0').text,
      '/etc/network/interfaces.d/alias': 'iface eth0:1 inet static\n  address 10.0.0.1/24\n',
      '/etc/network/interfaces.d/absent': None},
     ['/etc/network/interfaces.d/eth0', '/etc/network/interfaces.d/alias']),
    ({}, []),
])
def test_find_elsewhere(texts, expected):
    assert stanzas.find_elsewhere(texts, 'eth0') == expected


def test_sourced_paths():
    globs = {'/etc/network/interfaces.d/*': ['/etc/network/interfaces.d/b', '/etc/network/interfaces.d/a'],
             '/etc/network/extra.cfg': ['/etc/network/extra.cfg'],
             '/srv/none*': []}
    listings = {'/etc/network/more.d': ['z-last', 'a.cfg', 'b_ok', 'ttq~', '01-first']}
    text = ('source /etc/network/interfaces.d/*\n# source /ignored/*\nsource extra.cfg\n'
            'source /srv/none*\nsource-directory more.d\nsource /etc/network/interfaces.d/*\n'
            '    source-directory /nonexistent\n')
    found = stanzas.sourced_paths(text, '/etc/network', lambda pattern: globs.get(pattern, []),
                                  lambda path: listings.get(path, []))
    assert found == ['/etc/network/interfaces.d/a', '/etc/network/interfaces.d/b', '/etc/network/extra.cfg',
                     '/etc/network/more.d/01-first', '/etc/network/more.d/b_ok', '/etc/network/more.d/z-last']


def test_parse_lines_keeps_every_byte():
    text = 'auto lo\r\n\t# c\n\niface eth0 inet dhcp \\\n  \\\n  \nx'
    assert ''.join(line.text for line in stanzas.parse_lines(text)) == text
    kinds = [line.kind for line in stanzas.parse_lines(text)]
    assert kinds == ['keyword', 'comment', 'blank', 'keyword', 'option']


def test_read_sourced_follows_sources_skips_the_managed_file_and_loops(tmp_path):
    from ansible_collections.tuntap.qemu.plugins.module_utils import uplink_stanza_module

    (tmp_path / 'interfaces.d').mkdir()
    (tmp_path / 'more.d').mkdir()
    interfaces = tmp_path / 'interfaces'
    interfaces.write_text('source interfaces.d/*\nsource-directory %s\nauto eth0\n' % (tmp_path / 'more.d'))
    (tmp_path / 'interfaces.d/tuntap-qemu').write_text('iface eth0 inet manual\n')
    (tmp_path / 'interfaces.d/loop').write_text('source %s\nsource %s/nested\n' % (interfaces, tmp_path))
    (tmp_path / 'nested').write_text('iface eth0 inet6 auto\n')
    (tmp_path / 'more.d/ok-name').write_text('auto eth1\n')
    (tmp_path / 'more.d/skipped.cfg').write_text('auto eth0\n')
    found = uplink_stanza_module.read_sourced(str(interfaces), interfaces.read_text(),
                                              skip=(str(tmp_path / 'interfaces.d/tuntap-qemu'),))
    assert found == {str(tmp_path / 'interfaces.d/loop'): (tmp_path / 'interfaces.d/loop').read_text(),
                     str(tmp_path / 'more.d/ok-name'): 'auto eth1\n',
                     str(tmp_path / 'nested'): 'iface eth0 inet6 auto\n'}
    assert stanzas.find_elsewhere(found, 'eth0') == [str(tmp_path / 'nested')]
