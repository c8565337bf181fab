# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""guest_dhcp: our table inet tuntap_qemu_dhcp (rules, batch, reading it back), input chains
of other tables with policy drop, our rules in iptables-nft's INPUT."""

from __future__ import annotations

from ansible_collections.tuntap.qemu.plugins.module_utils._dhcp import dhcp_firewall
from ansible_collections.tuntap.qemu.plugins.module_utils._nat import iptables

RULES = dhcp_firewall.rules(['tap0', 'br0'])


def test_rules():
    assert [rule['comment'] for rule in RULES] == [
        'tuntap.qemu dhcp iif tap0 udp/67', 'tuntap.qemu dhcp iif tap0 udp/53', 'tuntap.qemu dhcp iif tap0 tcp/53',
        'tuntap.qemu dhcp iif br0 udp/67', 'tuntap.qemu dhcp iif br0 udp/53', 'tuntap.qemu dhcp iif br0 tcp/53']
    assert dhcp_firewall.render_table(RULES).splitlines()[3] == (
        '\t\tiifname "tap0" udp dport 67 counter accept comment "tuntap.qemu dhcp iif tap0 udp/67"')
    assert iptables.rule_args(RULES[2]) == ['-i', 'tap0', '-p', 'tcp', '-m', 'tcp', '--dport', '53', '-m', 'comment',
                                            '--comment', 'tuntap.qemu dhcp iif tap0 tcp/53', '-j', 'ACCEPT']


ABSENT = {'exists': False, 'chain_ok': False, 'comments': []}


def listed(rules, policy='accept', prio=0):
    items = [{'table': {'family': 'inet', 'name': 'tuntap_qemu_dhcp'}},
             {'chain': {'family': 'inet', 'table': 'tuntap_qemu_dhcp', 'name': 'input', 'type': 'filter',
                        'hook': 'input', 'prio': prio, 'policy': policy}}]
    items += [{'rule': {'family': 'inet', 'table': 'tuntap_qemu_dhcp', 'chain': 'input', 'handle': index + 2,
                        'comment': rule['comment']}} for index, rule in enumerate(rules)]
    return {'nftables': items}


TABLE = {'family': 'inet', 'name': 'tuntap_qemu_dhcp'}
# Declared, deleted, declared: whatever table exists when the batch runs is replaced (the
# unit's ExecStartPre may have loaded firewall.nft since the plan read the host).
REPLACE = [{'add': {'table': TABLE}}, {'delete': {'table': TABLE}}, {'add': {'table': TABLE}}]


def test_batch_creates_the_table():
    batch = dhcp_firewall.table_batch(ABSENT, RULES)
    assert batch[:3] == REPLACE
    assert batch[3]['add']['chain']['hook'] == 'input'
    assert len(batch) == 4 + len(RULES)
    assert batch[4]['add']['rule']['expr'][-2:] == [{'counter': None}, {'accept': None}]


def test_batch_nothing_when_equal():
    assert dhcp_firewall.table_batch(dhcp_firewall.parse_table(listed(RULES)), RULES) == []


def test_batch_rebuilds_a_changed_table():
    for state in (dhcp_firewall.parse_table(listed(RULES[:3])),
                  dhcp_firewall.parse_table(listed(RULES, policy='drop')),
                  dhcp_firewall.parse_table(listed(RULES, prio=10))):
        batch = dhcp_firewall.table_batch(state, RULES)
        assert batch[:3] == REPLACE
        assert len(batch) == 4 + len(RULES)


def test_batch_removes_the_table():
    assert dhcp_firewall.table_batch(dhcp_firewall.parse_table(listed(RULES)), []) == [
        {'delete': {'table': {'family': 'inet', 'name': 'tuntap_qemu_dhcp'}}}]
    assert dhcp_firewall.table_batch(ABSENT, []) == []


def test_drop_input_chains():
    document = {'nftables': [
        {'chain': {'family': 'ip', 'table': 'filter', 'name': 'INPUT', 'hook': 'input', 'policy': 'drop'}},
        {'chain': {'family': 'inet', 'table': 'filter', 'name': 'input', 'hook': 'input', 'policy': 'accept'}},
        {'chain': {'family': 'inet', 'table': 'fw', 'name': 'in', 'hook': 'input', 'policy': 'drop'}},
        {'chain': {'family': 'ip', 'table': 'filter', 'name': 'FORWARD', 'hook': 'forward', 'policy': 'drop'}},
        {'chain': {'family': 'inet', 'table': 'tuntap_qemu_dhcp', 'name': 'input', 'hook': 'input', 'policy': 'drop'}},
    ]}
    assert dhcp_firewall.drop_input_chains(document) == [('ip', 'filter', 'INPUT'), ('inet', 'fw', 'in')]


def test_parse_foreign_rules():
    text = ('-P INPUT DROP\n'
            '-A INPUT -i br0 -p udp -m udp --dport 67 -m comment --comment "tuntap.qemu dhcp iif br0 udp/67" -j ACCEPT\n'
            '-A INPUT -i lo -j ACCEPT\n'
            '-A INPUT -p tcp -m comment --comment "admin ssh" -j ACCEPT\n')
    assert dhcp_firewall.parse_foreign_rules(text) == {
        'tuntap.qemu dhcp iif br0 udp/67': ['-i', 'br0', '-p', 'udp', '-m', 'udp', '--dport', '67', '-m', 'comment',
                                            '--comment', 'tuntap.qemu dhcp iif br0 udp/67', '-j', 'ACCEPT']}


def test_the_file_replaces_the_table_and_loads_with_nft(tmp_path):
    """The file the unit loads: the table declared, deleted and declared again with the same
    rules as the runtime batch (nft --check reads it when nft is installed)."""
    wanted = dhcp_firewall.rules(['tap0'])
    text = dhcp_firewall.render_file(wanted)
    lines = text.splitlines()
    assert lines[0] == '#!/usr/sbin/nft -f'
    assert 'table inet tuntap_qemu_dhcp' in lines and 'delete table inet tuntap_qemu_dhcp' in lines
    assert lines.index('delete table inet tuntap_qemu_dhcp') < lines.index('table inet tuntap_qemu_dhcp {')
    for rule in wanted:
        assert '\t\t' + dhcp_firewall.nft.rule_statement(rule) in text
    assert dhcp_firewall.render_file([]) is None


RA_RULES = dhcp_firewall.rules(['tap0', 'br0'], ['br0'])


def test_router_solicitations_from_the_advertised_interfaces():
    assert [rule['comment'] for rule in RA_RULES][3:] == [
        'tuntap.qemu dhcp iif br0 udp/67', 'tuntap.qemu dhcp iif br0 udp/53', 'tuntap.qemu dhcp iif br0 tcp/53',
        'tuntap.qemu dhcp iif br0 icmpv6/nd-router-solicit']
    rs = RA_RULES[-1]
    assert dhcp_firewall.rule_statement(rs) == (
        'iifname "br0" icmpv6 type nd-router-solicit counter accept '
        'comment "tuntap.qemu dhcp iif br0 icmpv6/nd-router-solicit"')
    assert dhcp_firewall.rule_expr(rs) == [
        {'match': {'op': '==', 'left': {'meta': {'key': 'iifname'}}, 'right': 'br0'}},
        {'match': {'op': '==', 'left': {'payload': {'protocol': 'icmpv6', 'field': 'type'}},
                   'right': 'nd-router-solicit'}},
        {'counter': None}, {'accept': None}]
    batch = dhcp_firewall.table_batch(ABSENT, RA_RULES)
    assert batch[-1]['add']['rule']['expr'] == dhcp_firewall.rule_expr(rs)
    # iptables-nft's ip filter INPUT (IPv4) gets the DHCP and DNS accepts only.
    assert dhcp_firewall.ipv4_rules(RA_RULES) == RULES


def test_the_file_holds_the_router_solicitations():
    text = dhcp_firewall.render_file(RA_RULES)
    assert '\t\t' + dhcp_firewall.rule_statement(RA_RULES[-1]) in text
