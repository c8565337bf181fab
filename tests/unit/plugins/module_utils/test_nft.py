# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""nftables backend: rule rendering (JSON and text), the persistent file, the include
block of nftables.conf, reading `nft -j` output and the batch."""

from __future__ import annotations

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._nat import nat_rules, nft

MASQ = nat_rules.masquerade_rules('192.168.0.0/24', 'eth0')
MASQ6 = nat_rules.masquerade_rules('fd00::/64', 'eth0', allow_forward=False)
FWD = nat_rules.port_forward_rules('tcp', None, 8080, '192.168.0.10', 80)
FWD6 = nat_rules.port_forward_rules('udp', '2001:db8::2', 53, 'fd00::53', 53, 'eth0', ['2001:db8::/32'])


@pytest.mark.parametrize('rule, statement', [
    (MASQ[0], 'oifname "eth0" ip saddr 192.168.0.0/24 counter masquerade '
              'comment "tuntap.qemu masquerade 192.168.0.0/24 oif eth0 | nat"'),
    (MASQ[2], 'iifname "eth0" ip daddr 192.168.0.0/24 ct state established,related counter accept '
              'comment "tuntap.qemu masquerade 192.168.0.0/24 oif eth0 | forward back"'),
    (MASQ6[0], 'oifname "eth0" ip6 saddr fd00::/64 counter masquerade '
               'comment "tuntap.qemu masquerade fd00::/64 oif eth0 | nat"'),
    (FWD[0], 'meta nfproto ipv4 fib daddr type local tcp dport 8080 counter dnat ip to 192.168.0.10:80 '
             'comment "tuntap.qemu port_forward tcp *:8080 | dnat 192.168.0.10:80"'),
    (FWD[2], 'ip daddr 192.168.0.10 tcp dport 80 ct status dnat counter accept '
             'comment "tuntap.qemu port_forward tcp *:8080 | forward 192.168.0.10:80"'),
    (FWD6[0], 'iifname "eth0" ip6 saddr 2001:db8::/32 ip6 daddr 2001:db8::2 udp dport 53 counter '
              'dnat ip6 to [fd00::53]:53 comment "tuntap.qemu port_forward udp [2001:db8::2]:53 | '
              'dnat [fd00::53]:53 iif eth0 from 2001:db8::/32"'),
])
def test_rule_statement(rule, statement):
    assert nft.rule_statement(rule) == statement


def test_rule_expr():
    assert nft.rule_expr(MASQ[0]) == [
        {'match': {'op': '==', 'left': {'meta': {'key': 'oifname'}}, 'right': 'eth0'}},
        {'match': {'op': '==', 'left': {'payload': {'protocol': 'ip', 'field': 'saddr'}},
                   'right': {'prefix': {'addr': '192.168.0.0', 'len': 24}}}},
        {'counter': None},
        {'masquerade': None},
    ]
    assert nft.rule_expr(FWD[0]) == [
        {'match': {'op': '==', 'left': {'meta': {'key': 'nfproto'}}, 'right': 'ipv4'}},
        {'match': {'op': '==', 'left': {'fib': {'result': 'type', 'flags': ['daddr']}},
                   'right': 'local'}},
        {'match': {'op': '==', 'left': {'payload': {'protocol': 'tcp', 'field': 'dport'}},
                   'right': 8080}},
        {'counter': None},
        {'dnat': {'family': 'ip', 'addr': '192.168.0.10', 'port': 80}},
    ]
    assert nft.rule_expr(MASQ[2])[2] == {'match': {'op': 'in', 'left': {'ct': {'key': 'state'}},
                                                   'right': ['established', 'related']}}
    assert nft.rule_expr(FWD6[0])[-1] == {'dnat': {'family': 'ip6', 'addr': 'fd00::53', 'port': 53}}


def test_render_table_puts_rules_in_their_chains():
    text = nft.render_table(MASQ + FWD)
    assert text.startswith('table inet tuntap_qemu {\n\tchain postrouting {\n'
                           '\t\ttype nat hook postrouting priority srcnat; policy accept;\n'
                           '\t\toifname "eth0" ip saddr 192.168.0.0/24 counter masquerade')
    chains = text.split('\tchain ')[1:]
    assert [chain.split(' ')[0] for chain in chains] == [
        'postrouting', 'prerouting', 'output', 'forward']
    assert chains[1].count('dnat ip to') == 1
    assert chains[2].startswith('output {\n\t\ttype nat hook output priority -100; policy accept;\n'
                                '\t\tip daddr != 127.0.0.0/8 fib daddr type local tcp dport 8080 ')
    assert chains[2].count('dnat ip to') == 1
    assert chains[3].count(' accept comment') == 5
    assert nft.render_table([]) == ''


def test_render_file():
    assert nft.render_file([]) is None
    text = nft.render_file(MASQ)
    assert text.startswith('#!/usr/sbin/nft -f\n')
    assert '\ntable inet tuntap_qemu\ndelete table inet tuntap_qemu\n\n' in text
    assert text.endswith(nft.render_table(MASQ))


ADMIN_CONF = '#!/usr/sbin/nft -f\n\nflush ruleset\n\ntable inet filter {\n}\n'
BLOCK = ('# BEGIN tuntap.qemu NAT table (masquerade and port_forward modules)\n'
         'include "/etc/nftables.d/tuntap-qemu.nft"\n'
         '# END tuntap.qemu NAT table\n')


@pytest.mark.parametrize('before, after', [
    (ADMIN_CONF, ADMIN_CONF + BLOCK),
    (ADMIN_CONF + BLOCK, ADMIN_CONF + BLOCK),
    (ADMIN_CONF.rstrip('\n'), ADMIN_CONF + BLOCK),
    (None, '#!/usr/sbin/nft -f\n' + BLOCK),
    ('# top\n' + BLOCK.replace('tuntap-qemu.nft', 'old.nft') + 'table ip x {\n}\n',
     '# top\n' + BLOCK + 'table ip x {\n}\n'),
])
def test_conf_with_include(before, after):
    assert nft.conf_with_include(before, '/etc/nftables.d/tuntap-qemu.nft') == after


@pytest.mark.parametrize('before, after', [
    (ADMIN_CONF + BLOCK, ADMIN_CONF),
    (ADMIN_CONF, ADMIN_CONF),
    ('# top\n' + BLOCK + 'table ip x {\n}\n', '# top\ntable ip x {\n}\n'),
    (None, None),
    # The file that conf_with_include made of a missing one goes with the block.
    ('#!/usr/sbin/nft -f\n' + BLOCK, None),
    ('#!/usr/sbin/nft -f\n\n' + BLOCK, '#!/usr/sbin/nft -f\n\n'),
])
def test_conf_without_include(before, after):
    assert nft.conf_without_include(before) == after


# What `nft -j list table inet tuntap_qemu` prints (nftables 1.0.6), expressions shortened.
LISTING = {'nftables': [
    {'metainfo': {'version': '1.0.6', 'release_name': 'Lester Gooch #5', 'json_schema_version': 1}},
    {'table': {'family': 'inet', 'name': 'tuntap_qemu', 'handle': 1}},
    {'chain': {'family': 'inet', 'table': 'tuntap_qemu', 'name': 'postrouting', 'handle': 1,
               'type': 'nat', 'hook': 'postrouting', 'prio': 100, 'policy': 'accept'}},
    {'chain': {'family': 'inet', 'table': 'tuntap_qemu', 'name': 'prerouting', 'handle': 2,
               'type': 'nat', 'hook': 'prerouting', 'prio': -100, 'policy': 'accept'}},
    {'chain': {'family': 'inet', 'table': 'tuntap_qemu', 'name': 'forward', 'handle': 3,
               'type': 'filter', 'hook': 'forward', 'prio': 0, 'policy': 'accept'}},
    {'chain': {'family': 'inet', 'table': 'tuntap_qemu', 'name': 'output', 'handle': 10,
               'type': 'nat', 'hook': 'output', 'prio': -100, 'policy': 'accept'}},
    {'rule': {'family': 'inet', 'table': 'tuntap_qemu', 'chain': 'forward', 'handle': 6,
              'comment': MASQ[1]['comment'], 'expr': [{'accept': None}]}},
    {'rule': {'family': 'inet', 'table': 'tuntap_qemu', 'chain': 'postrouting', 'handle': 4,
              'comment': MASQ[0]['comment'],
              'expr': [{'counter': {'packets': 3, 'bytes': 252}}, {'masquerade': None}]}},
    {'rule': {'family': 'inet', 'table': 'tuntap_qemu', 'chain': 'forward', 'handle': 9,
              'expr': [{'accept': None}]}},
]}


def test_parse_table():
    state = nft.parse_table(LISTING)
    assert state['exists'] is True
    assert state['chains']['prerouting'] == {'type': 'nat', 'hook': 'prerouting', 'prio': -100,
                                             'policy': 'accept'}
    assert state['entries'] == [
        {'chain': 'postrouting', 'handle': 4, 'comment': MASQ[0]['comment']},
        {'chain': 'forward', 'handle': 6, 'comment': MASQ[1]['comment']},
        {'chain': 'forward', 'handle': 9, 'comment': ''},
    ]
    assert nft.chain_errors(state) == []


def test_chain_errors_name_the_chain():
    state = nft.parse_table(LISTING)
    state['chains']['forward']['prio'] = 10
    errors = nft.chain_errors(state)
    assert len(errors) == 1 and 'chain forward' in errors[0]


ABSENT = {'exists': False, 'chains': {}, 'entries': []}


def test_batch_creates_table_and_chains():
    plan = nat_rules.plan_rules([], {MASQ[0]['key']}, MASQ)
    batch = nft.table_batch(ABSENT, plan)
    assert batch[0] == {'add': {'table': {'family': 'inet', 'name': 'tuntap_qemu'}}}
    assert [command['add']['chain']['name'] for command in batch[1:5]] == [
        'postrouting', 'prerouting', 'output', 'forward']
    assert batch[1]['add']['chain'] == {'family': 'inet', 'table': 'tuntap_qemu',
                                        'name': 'postrouting', 'type': 'nat',
                                        'hook': 'postrouting', 'prio': 100, 'policy': 'accept'}
    assert batch[3]['add']['chain'] == {'family': 'inet', 'table': 'tuntap_qemu',
                                        'name': 'output', 'type': 'nat',
                                        'hook': 'output', 'prio': -100, 'policy': 'accept'}
    rules = [command['add']['rule'] for command in batch[5:]]
    assert [rule['comment'] for rule in rules] == [rule['comment'] for rule in MASQ]
    assert rules[0]['expr'] == nft.rule_expr(MASQ[0])


def test_batch_no_change_is_empty():
    state = nft.parse_table(LISTING)
    plan = nat_rules.plan_rules(state['entries'], {MASQ[0]['key']}, MASQ[:2])
    # The rule without a comment is not ours to touch; nothing else differs.
    assert nft.table_batch(state, plan) == []


def test_batch_deletes_by_handle_and_inserts_before():
    state = nft.parse_table(LISTING)
    state['entries'].append({'chain': 'prerouting', 'handle': 20, 'comment': FWD[0]['comment']})
    specific = nat_rules.port_forward_rules('tcp', '198.51.100.2', 8080, '192.168.0.11', 80)
    plan = nat_rules.plan_rules(state['entries'], {MASQ[0]['key'], specific[0]['key']},
                                MASQ[:1] + specific)
    batch = nft.table_batch(state, plan)
    assert batch[0] == {'delete': {'rule': {'family': 'inet', 'table': 'tuntap_qemu',
                                            'chain': 'forward', 'handle': 6}}}
    assert batch[1]['insert']['rule']['handle'] == 20
    assert batch[1]['insert']['rule']['comment'] == specific[0]['comment']
    assert 'handle' not in batch[2]['add']['rule']


def test_batch_deletes_table_without_rules():
    state = nft.parse_table(LISTING)
    state['entries'] = state['entries'][:2]
    plan = nat_rules.plan_rules(state['entries'], {MASQ[0]['key']}, [])
    assert nft.table_batch(state, plan) == [
        {'delete': {'table': {'family': 'inet', 'name': 'tuntap_qemu'}}}]
    assert nft.table_batch(ABSENT, nat_rules.plan_rules([], {MASQ[0]['key']}, [])) == []


def test_batch_adds_a_missing_chain():
    state = nft.parse_table(LISTING)
    del state['chains']['prerouting']
    plan = nat_rules.plan_rules(state['entries'], {MASQ[0]['key']}, MASQ[:2])
    assert nft.table_batch(state, plan) == [{'add': {'chain': {
        'family': 'inet', 'table': 'tuntap_qemu', 'name': 'prerouting', 'type': 'nat',
        'hook': 'prerouting', 'prio': -100, 'policy': 'accept'}}}]


# `nft -j list chains` on a Docker-style host (iptables-nft) with a native table beside it.
CHAINS = {'nftables': [
    {'metainfo': {'version': '1.0.6'}},
    {'chain': {'family': 'ip', 'table': 'filter', 'name': 'FORWARD', 'handle': 1,
               'type': 'filter', 'hook': 'forward', 'prio': 0, 'policy': 'drop'}},
    {'chain': {'family': 'ip', 'table': 'filter', 'name': 'DOCKER-USER', 'handle': 2}},
    {'chain': {'family': 'ip6', 'table': 'filter', 'name': 'FORWARD', 'handle': 1,
               'type': 'filter', 'hook': 'forward', 'prio': 0, 'policy': 'accept'}},
    {'chain': {'family': 'inet', 'table': 'fw', 'name': 'fwd', 'handle': 1,
               'type': 'filter', 'hook': 'forward', 'prio': 0, 'policy': 'drop'}},
    {'chain': {'family': 'inet', 'table': 'tuntap_qemu', 'name': 'forward', 'handle': 3,
               'type': 'filter', 'hook': 'forward', 'prio': 0, 'policy': 'drop'}},
]}


def test_foreign_chains():
    assert nft.foreign_chains(CHAINS) == {
        'drop': [{'family': 'ip', 'table': 'filter', 'chain': 'FORWARD', 'docker_user': True},
                 {'family': 'inet', 'table': 'fw', 'chain': 'fwd', 'docker_user': False}],
        'iptables_nft': {'ip': ['DOCKER-USER', 'FORWARD'], 'ip6': ['FORWARD']},
    }


HAIRPIN = nat_rules.port_forward_rules('tcp', None, 8006, '192.168.5.11', 80,
                                       hairpin_network='192.168.5.0/24')
HAIRPIN6 = nat_rules.port_forward_rules('tcp', None, 8006, 'fd00:5::11', 80,
                                        hairpin_network='fd00:5::/64')


@pytest.mark.parametrize('rule, statement', [
    # As `nft -s list` prints them (nftables 1.0.6).
    (HAIRPIN[1], 'ip daddr != 127.0.0.0/8 fib daddr type local tcp dport 8006 counter '
                 'dnat ip to 192.168.5.11:80 comment "tuntap.qemu port_forward tcp *:8006 | '
                 'output 192.168.5.11:80"'),
    (HAIRPIN6[1], 'ip6 daddr != ::1 fib daddr type local tcp dport 8006 counter '
                  'dnat ip6 to [fd00:5::11]:80 comment "tuntap.qemu port_forward tcp *:8006 | '
                  'output [fd00:5::11]:80"'),
    (HAIRPIN[-1], 'ip saddr 192.168.5.0/24 ip daddr 192.168.5.11 tcp dport 80 ct status dnat '
                  'counter masquerade comment "tuntap.qemu port_forward tcp *:8006 | '
                  'hairpin 192.168.5.11:80 from 192.168.5.0/24"'),
    (HAIRPIN6[-1], 'ip6 saddr fd00:5::/64 ip6 daddr fd00:5::11 tcp dport 80 ct status dnat '
                   'counter masquerade comment "tuntap.qemu port_forward tcp *:8006 | '
                   'hairpin [fd00:5::11]:80 from fd00:5::/64"'),
])
def test_output_and_hairpin_statements(rule, statement):
    assert nft.rule_statement(rule) == statement


def test_output_and_hairpin_expr():
    assert nft.rule_expr(HAIRPIN[1])[0] == {'match': {
        'op': '!=', 'left': {'payload': {'protocol': 'ip', 'field': 'daddr'}},
        'right': {'prefix': {'addr': '127.0.0.0', 'len': 8}}}}
    assert nft.rule_expr(HAIRPIN6[1])[0]['match']['right'] == '::1'
    assert nft.rule_expr(HAIRPIN[-1])[-2:] == [{'counter': None}, {'masquerade': None}]


def test_render_table_puts_hairpin_in_postrouting_and_output_in_its_chain():
    chains = nft.render_table(HAIRPIN).split('\tchain ')[1:]
    assert 'hairpin 192.168.5.11:80' in chains[0] and 'masquerade' in chains[0]
    assert chains[2].count('| output 192.168.5.11:80"') == 1
