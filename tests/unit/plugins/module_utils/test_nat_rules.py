# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NAT rules: parameters -> desired rules, comments <-> rules, and the plan."""

from __future__ import annotations

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._nat import nat_rules


def masquerade_params(**overrides):
    params = {'source': ['192.168.0.0/24'], 'out_interface': 'eth0', 'state': 'present',
              'allow_forward': True}
    params.update(overrides)
    return params


def port_params(**overrides):
    params = {'protocol': 'tcp', 'port': 8080, 'host_address': None,
              'destination': '192.168.0.10', 'destination_port': None, 'in_interface': None,
              'source': None, 'state': 'present'}
    params.update(overrides)
    return params


def comments(rules):
    return [rule['comment'] for rule in rules]


# ---------------------------------------------------------------- desired rules

@pytest.mark.parametrize('overrides, expected', [
    ({}, ['tuntap.qemu masquerade 192.168.0.0/24 oif eth0 | nat',
          'tuntap.qemu masquerade 192.168.0.0/24 oif eth0 | forward out',
          'tuntap.qemu masquerade 192.168.0.0/24 oif eth0 | forward back',
          'tuntap.qemu masquerade 192.168.0.0/24 oif eth0 | forward bridged']),
    ({'allow_forward': False}, ['tuntap.qemu masquerade 192.168.0.0/24 oif eth0 | nat']),
    ({'source': ['fd00:0:0:1::/64'], 'allow_forward': False, 'out_interface': 'br-wan'},
     ['tuntap.qemu masquerade fd00:0:0:1::/64 oif br-wan | nat']),
    ({'state': 'absent'}, []),
])
def test_masquerade_rules(overrides, expected):
    request = nat_rules.masquerade_request(masquerade_params(**overrides))
    assert request['errors'] == []
    assert comments(request['rules']) == expected
    assert request['interfaces'] == [('out_interface', overrides.get('out_interface', 'eth0'))]


def test_masquerade_keys_per_network():
    request = nat_rules.masquerade_request(
        masquerade_params(source=['192.168.0.0/24', '10.1.0.0/16'], state='absent'))
    assert request['keys'] == {'masquerade 192.168.0.0/24 oif eth0',
                               'masquerade 10.1.0.0/16 oif eth0'}


def test_masquerade_rule_contents():
    rules = nat_rules.masquerade_request(masquerade_params(source=['fd00::/64']))['rules']
    nat, out, back, bridged = rules
    assert nat['chain'] == 'postrouting' and nat['family'] == 'ipv6'
    assert nat['match'] == [('oifname', 'eth0'), ('saddr', 'fd00::/64')]
    assert nat['action'] == ('masquerade',)
    assert back['match'] == [('iifname', 'eth0'), ('daddr', 'fd00::/64'),
                             ('ct_state', ('established', 'related'))]
    assert bridged['match'] == [('saddr', 'fd00::/64'), ('daddr', 'fd00::/64')]
    assert out['action'] == back['action'] == bridged['action'] == ('accept',)


@pytest.mark.parametrize('overrides, expected', [
    ({}, ['tuntap.qemu port_forward tcp *:8080 | dnat 192.168.0.10:8080',
          'tuntap.qemu port_forward tcp *:8080 | output 192.168.0.10:8080',
          'tuntap.qemu port_forward tcp *:8080 | forward 192.168.0.10:8080',
          'tuntap.qemu port_forward tcp *:8080 | forward reply 192.168.0.10:8080']),
    ({'protocol': 'udp', 'port': 53, 'destination_port': 5353, 'host_address': '198.51.100.2',
      'in_interface': 'eth0', 'source': ['10.0.0.0/8', '172.16.0.0/12']},
     ['tuntap.qemu port_forward udp 198.51.100.2:53 | dnat 192.168.0.10:5353 iif eth0 from 10.0.0.0/8',
      'tuntap.qemu port_forward udp 198.51.100.2:53 | dnat 192.168.0.10:5353 iif eth0 from 172.16.0.0/12',
      'tuntap.qemu port_forward udp 198.51.100.2:53 | forward 192.168.0.10:5353',
      'tuntap.qemu port_forward udp 198.51.100.2:53 | forward reply 192.168.0.10:5353']),
    ({'destination': 'fd00::10', 'host_address': '2001:db8::2'},
     ['tuntap.qemu port_forward tcp [2001:db8::2]:8080 | dnat [fd00::10]:8080',
      'tuntap.qemu port_forward tcp [2001:db8::2]:8080 | output [fd00::10]:8080',
      'tuntap.qemu port_forward tcp [2001:db8::2]:8080 | forward [fd00::10]:8080',
      'tuntap.qemu port_forward tcp [2001:db8::2]:8080 | forward reply [fd00::10]:8080']),
    ({'state': 'absent', 'destination': None}, []),
])
def test_port_forward_rules(overrides, expected):
    request = nat_rules.port_forward_request(port_params(**overrides))
    assert request['errors'] == []
    assert comments(request['rules']) == expected
    assert len(request['keys']) == 1


def test_port_forward_matches():
    rules = nat_rules.port_forward_request(port_params(destination_port=80))['rules']
    dnat = rules[0]
    assert dnat['match'] == [('nfproto', 'ipv4'), ('daddr_local', True), ('dport', ('tcp', 8080))]
    assert dnat['action'] == ('dnat', '192.168.0.10', 80)
    assert dnat['rank'] == 1
    specific = nat_rules.port_forward_request(port_params(host_address='198.51.100.2'))['rules'][0]
    assert specific['rank'] == 0
    assert ('daddr', '198.51.100.2') in specific['match']
    output = rules[1]
    assert output['chain'] == 'output'
    assert output['match'] == [('daddr_not', '127.0.0.0/8'), ('daddr_local', True),
                               ('dport', ('tcp', 8080))]
    assert output['action'] == dnat['action'] and output['rank'] == 1
    assert rules[2]['match'] == [('daddr', '192.168.0.10'), ('dport', ('tcp', 80)),
                                 ('ct_status', 'dnat')]
    specific_output = nat_rules.port_forward_request(
        port_params(host_address='198.51.100.2'))['rules'][1]
    assert specific_output['match'] == [('daddr', '198.51.100.2'), ('dport', ('tcp', 8080))]
    assert specific_output['rank'] == 0


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize('overrides, message', [
    ({'source': ['192.168.0.1/24']}, "source[0]: '192.168.0.1/24' has host bits set; the network is 192.168.0.0/24"),
    ({'source': ['192.168.0.10']}, "source[0]: '192.168.0.10' is a host address, not a network"),
    ({'source': ['eth0']}, "source[0]: 'eth0' is not a valid network in CIDR form"),
    ({'source': ['10.0.0.0/8', '10.0.0.0/8']}, "source[1]: '10.0.0.0/8' is listed twice"),
    ({'source': []}, 'source: give at least one network'),
    ({'out_interface': 'eth*'}, "out_interface: interface name 'eth*' is not supported in NAT rules"),
    ({'out_interface': 'a-very-long-name0'}, "out_interface: interface name 'a-very-long-name0' is 17 bytes long"),
    ({'out_interface': ''}, 'out_interface: an interface name is required'),
])
def test_masquerade_errors(overrides, message):
    request = nat_rules.masquerade_request(masquerade_params(**overrides))
    assert any(error.startswith(message) for error in request['errors']), request['errors']
    assert request['rules'] == []


@pytest.mark.parametrize('overrides, message', [
    ({'port': 0}, 'port: port 0 is outside 1-65535'),
    ({'port': 65536}, 'port: port 65536 is outside 1-65535'),
    ({'destination_port': -1}, 'destination_port: port -1 is outside 1-65535'),
    ({'destination': '192.168.0.10/24'}, "destination: '192.168.0.10/24' is not a single IP address"),
    ({'destination': 'guest1'}, "destination: 'guest1' is not a valid IP address"),
    ({'destination': '224.0.0.1'}, "destination: '224.0.0.1' is not a unicast host address"),
    ({'destination': None}, 'destination: the guest address is required'),
    ({'host_address': '2001:db8::1'}, 'host_address: 2001:db8::1 and destination 192.168.0.10 are of different'),
    ({'source': ['fd00::/64']}, 'source[0]: fd00::/64 is not of the address family'),
    ({'source': ['10.0.0.1/8']}, "source[0]: '10.0.0.1/8' has host bits set"),
    ({'in_interface': 'eth0/1'}, "in_interface: interface name 'eth0/1' contains '/'"),
])
def test_port_forward_errors(overrides, message):
    request = nat_rules.port_forward_request(port_params(**overrides))
    assert any(error.startswith(message) for error in request['errors']), request['errors']
    assert request['rules'] == []


def test_comment_too_long_is_an_error():
    request = nat_rules.port_forward_request(port_params(
        destination='fd00:1111:2222:3333:4444:5555:6666:7777', in_interface='abcdefghijklmno',
        host_address='2001:db8:1111:2222:3333:4444:5555:6666', source=['fd00:1111:2222:3333::/64']))
    assert any('nftables keeps at most 128' in error for error in request['errors'])


# ---------------------------------------------------------------- comments

@pytest.mark.parametrize('rules', [
    nat_rules.masquerade_rules('192.168.0.0/24', 'eth0'),
    nat_rules.masquerade_rules('fd00:0:0:1::/64', 'br-wan.100'),
    nat_rules.port_forward_rules('tcp', None, 80, '192.168.0.10', 8080),
    nat_rules.port_forward_rules('udp', '198.51.100.2', 53, '192.168.0.53', 53, 'eth0',
                                 ['10.0.0.0/8', '172.16.0.0/12']),
    nat_rules.port_forward_rules('tcp', '2001:db8::2', 443, 'fd00::80', 8443, None, ['2001:db8::/32']),
])
def test_rule_from_comment_round_trip(rules):
    for rule in rules:
        assert nat_rules.rule_from_comment(rule['comment']) == rule


@pytest.mark.parametrize('comment', [
    '', 'something else', 'tuntap.qemu masquerade 192.168.0.0/24 oif eth0',
    'tuntap.qemu masquerade 192.168.0.0/24 oif eth0 | drop',
    'tuntap.qemu masquerade 192.168.0.1/24 oif eth0 | nat',
    'tuntap.qemu masquerade 192.168.0.0/24 oif eth* | nat',
    'tuntap.qemu port_forward tcp *:80 | dnat 192.168.0.999:80',
    'tuntap.qemu port_forward icmp *:80 | forward 192.168.0.9:80',
    'tuntap.qemu port_forward tcp *:80 | dnat 192.168.0.9:80 from 10.0.0.1/8',
])
def test_rule_from_foreign_comment_is_none(comment):
    assert nat_rules.rule_from_comment(comment) is None


@pytest.mark.parametrize('comment, key', [
    ('tuntap.qemu masquerade 192.168.0.0/24 oif eth0 | nat', 'masquerade 192.168.0.0/24 oif eth0'),
    ('tuntap.qemu port_forward tcp *:80 | forward 192.168.0.9:80', 'port_forward tcp *:80'),
    ('docker', None),
    (None, None),
])
def test_key_of(comment, key):
    assert nat_rules.key_of(comment) == key


# ---------------------------------------------------------------- the plan

def entries(rules, first_handle=10):
    return [{'chain': rule['chain'], 'comment': rule['comment'], 'handle': first_handle + index}
            for index, rule in enumerate(rules)]


def test_plan_nothing_to_do():
    rules = nat_rules.masquerade_rules('192.168.0.0/24', 'eth0')
    plan = nat_rules.plan_rules(entries(rules), {rules[0]['key']}, rules)
    assert plan == {'delete': [], 'add': [], 'after': entries(rules), 'changed': False}


def test_plan_touches_only_owned_keys():
    mine = nat_rules.masquerade_rules('192.168.0.0/24', 'eth0')
    other = nat_rules.masquerade_rules('10.1.0.0/16', 'eth0')
    stranger = {'chain': 'forward', 'comment': 'hand made', 'handle': 99}
    current = entries(other) + [stranger]
    plan = nat_rules.plan_rules(current, {mine[0]['key']}, mine)
    assert plan['delete'] == []
    assert [rule for rule, _before in plan['add']] == mine
    assert [entry for entry in plan['after'] if 'handle' in entry] == current
    assert [entry['comment'] for entry in plan['after']] == [
        other[0]['comment'], mine[0]['comment']] + [
        rule['comment'] for rule in other[1:]] + ['hand made'] + [
        rule['comment'] for rule in mine[1:]]


def test_plan_removes_exactly_the_absent_key():
    mine = nat_rules.masquerade_rules('192.168.0.0/24', 'eth0')
    other = nat_rules.masquerade_rules('10.1.0.0/16', 'eth0')
    current = entries(mine + other)
    plan = nat_rules.plan_rules(current, {mine[0]['key']}, [])
    assert plan['delete'] == current[:4]
    assert plan['after'] == current[4:]
    assert plan['add'] == []


def test_plan_replaces_changed_rule_and_drops_duplicates():
    old = nat_rules.port_forward_rules('tcp', None, 80, '192.168.0.10', 80)
    new = nat_rules.port_forward_rules('tcp', None, 80, '192.168.0.11', 80)
    current = entries(old + old[:1])
    plan = nat_rules.plan_rules(current, {old[0]['key']}, new)
    assert [entry['handle'] for entry in plan['delete']] == [10, 11, 12, 13, 14]
    assert [rule['comment'] for rule, _before in plan['add']] == comments(new)


def test_plan_places_specific_dnat_first():
    general = nat_rules.port_forward_rules('tcp', None, 80, '192.168.0.10', 80)
    specific = nat_rules.port_forward_rules('tcp', '198.51.100.2', 80, '192.168.0.11', 80)
    current = entries(general)
    plan = nat_rules.plan_rules(current, {specific[0]['key']}, specific)
    dnat, before = plan['add'][0]
    assert dnat['chain'] == 'prerouting' and before == current[0]
    prerouting = [entry['comment'] for entry in plan['after'] if entry['chain'] == 'prerouting']
    assert prerouting == [specific[0]['comment'], general[0]['comment']]
    # So is its output rule, and the forward rules of equal rank go to the end of their chain.
    output, before = plan['add'][1]
    assert output['chain'] == 'output' and before == current[1]
    assert all(before is None for _rule, before in plan['add'][2:])


def test_masqueraded_networks():
    rules = (nat_rules.masquerade_rules('192.168.0.0/24', 'eth0')
             + nat_rules.masquerade_rules('fd00::/64', 'eth1', allow_forward=False)
             + nat_rules.port_forward_rules('tcp', None, 80, '10.0.0.10', 80,
                                            hairpin_network='10.0.0.0/24'))
    assert nat_rules.masqueraded_networks(rules) == ['192.168.0.0/24', 'fd00::/64']
    assert len(nat_rules.forward_rules(rules)) == 5


def test_rules_of_entries_reports_unknown_comments():
    rules = nat_rules.masquerade_rules('192.168.0.0/24', 'eth0')
    current = entries(rules) + [{'chain': 'forward', 'comment': 'hand made', 'handle': 1},
                                {'chain': 'prerouting', 'comment': rules[0]['comment'], 'handle': 2}]
    rebuilt, unknown = nat_rules.rules_of_entries(current)
    assert rebuilt == rules
    assert unknown == ['hand made', rules[0]['comment']]


def test_plan_appends_at_the_end_of_the_chain():
    masquerade = nat_rules.masquerade_rules('192.168.0.0/24', 'eth0')
    forward = nat_rules.port_forward_rules('tcp', None, 80, '192.168.0.10', 80, sources=['10.0.0.0/8'])
    # In chain order, as the backends read them: dnat, output, then the forward rules.
    current = entries(masquerade[:1] + forward[:2] + masquerade[1:] + forward[2:])
    wider = nat_rules.port_forward_rules('tcp', None, 80, '192.168.0.10', 80,
                                         sources=['10.0.0.0/8', '172.16.0.0/12'])
    plan = nat_rules.plan_rules(current, {forward[0]['key']}, wider)
    assert [entry['chain'] for entry in plan['after']] == (
        ['postrouting'] + ['prerouting'] * 2 + ['output'] * 2 + ['forward'] * 5)
    assert plan['after'][2] == wider[1]
    assert plan['after'][4] == wider[3]
    # A chain without entries yet: the rule goes between the chains around it.
    plan = nat_rules.plan_rules(entries(masquerade), {forward[0]['key']}, forward)
    assert [entry['chain'] for entry in plan['after']] == (
        ['postrouting', 'prerouting', 'output'] + ['forward'] * 5)


# ---------------------------------------------------------------- output and hairpin rules

LONG6 = 'fd00:1234:5678:9abc:def0:1234:5678:9abc'


def test_port_forward_output_rules_follow_the_sources():
    rules = nat_rules.port_forward_rules('tcp', None, 80, 'fd00::10', 8080, None,
                                         ['2001:db8::/32', 'fd00:1::/64'])
    outputs = [rule for rule in rules if rule['chain'] == 'output']
    assert comments(outputs) == [
        'tuntap.qemu port_forward tcp *:80 | output [fd00::10]:8080 from 2001:db8::/32',
        'tuntap.qemu port_forward tcp *:80 | output [fd00::10]:8080 from fd00:1::/64']
    assert outputs[0]['match'] == [('saddr', '2001:db8::/32'), ('daddr_not', '::1'),
                                   ('daddr_local', True), ('dport', ('tcp', 80))]
    assert outputs[0]['action'] == ('dnat', 'fd00::10', 8080)


def test_in_interface_scopes_the_forward_no_output_no_hairpin():
    rules = nat_rules.port_forward_rules('tcp', None, 80, '192.168.5.11', 80, 'eth0',
                                         None, '192.168.5.0/24')
    assert [rule['chain'] for rule in rules] == ['prerouting', 'forward', 'forward']
    spec = nat_rules.port_forward_request(port_params(in_interface='eth0'))['forwards'][0]
    assert spec.hairpin_rule('192.168.0.0/24') is None


def test_hairpin_rule():
    spec = nat_rules.port_forward_request(port_params(port=8006, destination='192.168.5.11',
                                                      destination_port=80))['forwards'][0]
    rule = spec.hairpin_rule('192.168.5.0/24')
    assert rule['comment'] == ('tuntap.qemu port_forward tcp *:8006 | hairpin 192.168.5.11:80 '
                               'from 192.168.5.0/24')
    assert rule['key'] == 'port_forward tcp *:8006'
    assert rule['chain'] == 'postrouting' and rule['action'] == ('masquerade',)
    assert rule['match'] == [('saddr', '192.168.5.0/24'), ('daddr', '192.168.5.11'),
                             ('dport', ('tcp', 80)), ('ct_status', 'dnat')]
    assert nat_rules.rule_from_comment(rule['comment']) == rule
    # The same rule as port_forward_rules makes with the subnet.
    assert nat_rules.port_forward_rules('tcp', None, 8006, '192.168.5.11', 80,
                                        hairpin_network='192.168.5.0/24')[-1] == rule


@pytest.mark.parametrize('rules', [
    nat_rules.port_forward_rules('tcp', None, 8006, '192.168.5.11', 80,
                                 hairpin_network='192.168.5.0/24'),
    nat_rules.port_forward_rules('udp', '198.51.100.2', 53, '192.168.0.53', 5353, None,
                                 ['10.0.0.0/8', '172.16.0.0/12'], '192.168.0.0/24'),
    nat_rules.port_forward_rules('tcp', None, 65535, LONG6, 65535, None, None,
                                 'fd00:1234:5678:9abc::/64'),
])
def test_output_and_hairpin_round_trip(rules):
    assert {'output', 'postrouting'} <= set(rule['chain'] for rule in rules)
    for rule in rules:
        assert nat_rules.rule_from_comment(rule['comment']) == rule


def test_long_ipv6_forward_comments_fit_in_nftables():
    request = nat_rules.port_forward_request(port_params(port=65535, destination=LONG6,
                                                         destination_port=65535))
    rules = request['rules'] + [request['forwards'][0].hairpin_rule('fd00:1234:5678:9abc::/64')]
    assert request['errors'] == [] and nat_rules.comment_length_errors(rules) == []
    assert max(len(rule['comment'].encode()) for rule in rules) <= nat_rules.COMMENT_MAX_BYTES
    too_long = request['forwards'][0].hairpin_rule('fd00:1234:5678:9abc:def0:1234:5678:9a00/120')
    assert 'nftables keeps at most 128' in nat_rules.comment_length_errors([too_long])[0]


@pytest.mark.parametrize('comment', [
    'tuntap.qemu port_forward tcp *:80 | hairpin 192.168.5.11:80 from 192.168.5.1/24',
    'tuntap.qemu port_forward tcp *:80 | hairpin 192.168.5.11:80',
    'tuntap.qemu port_forward tcp *:80 | output 192.168.5.11:80 iif eth0',
    'tuntap.qemu port_forward tcp *:80 | output 192.168.5.011:80',
])
def test_bad_output_and_hairpin_comments_are_not_ours(comment):
    assert nat_rules.rule_from_comment(comment) is None
