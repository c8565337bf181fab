# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The list form of masquerade (`rules`) and port_forward (`forwards`): validation, the keys it
owns, its plan (one nft batch), and the rules the backend not chosen still holds."""

from __future__ import annotations

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._nat import nat_module, nat_rules, nft

MASQ_A = nat_rules.masquerade_rules('192.168.0.0/24', 'eth0')
MASQ_B = nat_rules.masquerade_rules('10.1.0.0/16', 'eth0')
PORT_P = nat_rules.port_forward_rules('tcp', None, 2201, '192.168.0.11', 22)
PORT_Q = nat_rules.port_forward_rules('udp', None, 53, '192.168.0.53', 53)
ADMIN = {'chain': 'forward', 'comment': 'the admin', 'handle': 99}
NOT_OURS = {'chain': 'postrouting', 'comment': '', 'handle': 98}


def masquerade_params(rules, **overrides):
    params = {'rules': rules, 'source': None, 'out_interface': None, 'state': 'present',
              'allow_forward': True}
    params.update(overrides)
    return params


def forward(**overrides):
    entry = {'port': 2201, 'protocol': None, 'host_address': None, 'destination': '192.168.0.11',
             'destination_port': 22, 'in_interface': None, 'source': None}
    entry.update(overrides)
    return entry


def port_params(forwards, **overrides):
    params = {'forwards': forwards, 'protocol': 'tcp', 'port': None, 'host_address': None,
              'destination': None, 'destination_port': None, 'in_interface': None,
              'source': None, 'state': 'present'}
    params.update(overrides)
    return params


def comments(rules):
    return [rule['comment'] for rule in rules]


def entries(rules, first_handle=10):
    return [{'chain': rule['chain'], 'comment': rule['comment'], 'handle': first_handle + index}
            for index, rule in enumerate(rules)]


# ---------------------------------------------------------------- the keys a list owns

@pytest.mark.parametrize('kind, key, owned', [
    ('masquerade', 'masquerade 192.168.0.0/24 oif eth0', True),
    ('masquerade', 'masquerade fd00::/64 oif wg0', True),
    ('masquerade', 'port_forward tcp *:2201', False),
    ('port_forward', 'port_forward tcp *:2201', True),
    ('port_forward', 'port_forward udp [2001:db8::1]:53', True),
    ('port_forward', 'masquerade 192.168.0.0/24 oif eth0', False),
    ('masquerade', 'masquerader 192.168.0.0/24 oif eth0', False),
    ('masquerade', None, False),
    ('masquerade', '', False),
])
def test_kind_keys(kind, key, owned):
    assert (key in nat_rules.KindKeys(kind)) is owned


# ---------------------------------------------------------------- masquerade rules=[...]

@pytest.mark.parametrize('rules, allow_forward, expected', [
    ([], True, []),
    ([{'source': ['192.168.0.0/24'], 'out_interface': 'eth0', 'allow_forward': None}], True,
     comments(MASQ_A)),
    ([{'source': ['192.168.0.0/24'], 'out_interface': 'eth0', 'allow_forward': None}], False,
     comments(MASQ_A[:1])),
    ([{'source': ['192.168.0.0/24'], 'out_interface': 'eth0', 'allow_forward': False}], True,
     comments(MASQ_A[:1])),
    ([{'source': ['192.168.0.0/24'], 'out_interface': 'eth0', 'allow_forward': None},
      {'source': ['10.1.0.0/16'], 'out_interface': 'eth0', 'allow_forward': True}], False,
     comments(MASQ_A[:1] + MASQ_B)),
])
def test_masquerade_list_rules(rules, allow_forward, expected):
    request = nat_rules.masquerade_request(masquerade_params(rules, allow_forward=allow_forward))
    assert request['errors'] == []
    assert comments(request['rules']) == expected
    assert isinstance(request['keys'], nat_rules.KindKeys) and request['keys'].kind == 'masquerade'
    assert request['interfaces'] == ([('rules[0].out_interface', 'eth0')] if rules else [])


@pytest.mark.parametrize('rules, state, message', [
    ([{'source': ['192.168.0.1/24'], 'out_interface': 'eth0'}], 'present',
     "rules[0].source[0]: '192.168.0.1/24' has host bits set"),
    ([{'source': ['192.168.0.0/24'], 'out_interface': 'eth0'},
      {'source': [], 'out_interface': 'eth1'}], 'present', 'rules[1].source: give at least one network'),
    ([{'source': ['192.168.0.0/24'], 'out_interface': 'eth*'}], 'present',
     "rules[0].out_interface: interface name 'eth*' is not supported in NAT rules"),
    ([{'source': ['192.168.0.0/24'], 'out_interface': 'eth0'},
      {'source': ['10.0.0.0/8', '192.168.0.0/24'], 'out_interface': 'eth0'}], 'present',
     'rules[1]: masquerade 192.168.0.0/24 oif eth0 is in rules[0] already'),
    ([], 'absent', 'state: rules lists every rule of its kind on the host, so state=absent does not go'),
])
def test_masquerade_list_errors(rules, state, message):
    request = nat_rules.masquerade_request(masquerade_params(rules, state=state))
    assert any(error.startswith(message) for error in request['errors']), request['errors']


# ---------------------------------------------------------------- port_forward forwards=[...]

@pytest.mark.parametrize('forwards, protocol, expected', [
    ([], 'tcp', []),
    ([forward()], 'tcp', comments(PORT_P)),
    ([forward(), forward(port=53, protocol='udp', destination='192.168.0.53', destination_port=None)],
     'tcp', comments(PORT_P + PORT_Q)),
    # An entry without protocol takes the module's.
    ([forward(port=53, destination='192.168.0.53', destination_port=53)], 'udp', comments(PORT_Q)),
])
def test_port_forward_list_rules(forwards, protocol, expected):
    request = nat_rules.port_forward_request(port_params(forwards, protocol=protocol))
    assert request['errors'] == []
    assert comments(request['rules']) == expected
    assert request['keys'].kind == 'port_forward'
    assert [option for option, _address, _iif in request['destinations']] == [
        'forwards[%d].destination' % index for index in range(len(forwards))]


@pytest.mark.parametrize('forwards, state, message', [
    ([forward(port=0)], 'present', 'forwards[0].port: port 0 is outside 1-65535'),
    ([forward(), forward(destination='vm1')], 'present', "forwards[1].destination: 'vm1' is not a valid IP address"),
    ([forward(source=['fd00::/64'])], 'present', 'forwards[0].source[0]: fd00::/64 is not of the address family'),
    ([forward(host_address='2001:db8::1')], 'present',
     'forwards[0].host_address: 2001:db8::1 and destination 192.168.0.11 are of different'),
    ([forward(), forward(destination='192.168.0.12')], 'present',
     'forwards[1]: port_forward tcp *:2201 is in forwards[0] already'),
    ([forward(in_interface='eth+')], 'present', "forwards[0].in_interface: interface name 'eth+' is not supported"),
    ([], 'absent', 'state: forwards lists every rule of its kind on the host'),
])
def test_port_forward_list_errors(forwards, state, message):
    request = nat_rules.port_forward_request(port_params(forwards, state=state))
    assert any(error.startswith(message) for error in request['errors']), request['errors']


def test_port_forward_single_form_without_destination_keeps_the_argument_spec_message():
    params = port_params(None, port=8081)
    assert nat_module.port_forward_request(params)['errors'] == [
        'state is present but all of the following are missing: destination']
    assert nat_module.port_forward_request(port_params([]))['errors'] == []


# ---------------------------------------------------------------- the plan of a list

@pytest.mark.parametrize('name, kind, current, desired, deleted, added', [
    ('ours not listed go, the rest stays', 'masquerade',
     MASQ_A + MASQ_B + PORT_P, MASQ_A, MASQ_B, []),
    ('an empty list removes all of ours of the kind', 'masquerade',
     MASQ_A + MASQ_B + PORT_P, [], MASQ_A + MASQ_B, []),
    ('a new entry is added, a listed one kept', 'masquerade',
     MASQ_A, MASQ_A + MASQ_B, [], MASQ_B),
    ('port forwards: masquerade rules are not theirs', 'port_forward',
     MASQ_A + PORT_P + PORT_Q, PORT_Q, PORT_P, []),
    ('port forwards: empty list', 'port_forward', MASQ_A + PORT_P, [], PORT_P, []),
    ('converged', 'port_forward', MASQ_A + PORT_P, PORT_P, [], []),
])
def test_plan_of_a_list(name, kind, current, desired, deleted, added):
    current_entries = entries(current) + [ADMIN, NOT_OURS]
    plan = nat_rules.plan_rules(current_entries, nat_rules.KindKeys(kind), desired)
    assert comments(plan['delete']) == comments(deleted), name
    assert [rule['comment'] for rule, _before in plan['add']] == comments(added), name
    after = [entry['comment'] for entry in plan['after']]
    # Rules without our comment are never touched.
    assert 'the admin' in after and '' in after
    assert plan['changed'] is bool(deleted or added)


def test_a_list_costs_one_nft_batch():
    state = {'exists': True, 'chains': dict((name, {}) for name in nft.CHAIN_ORDER),
             'entries': entries(MASQ_A + MASQ_B)}
    desired = nat_rules.masquerade_rules('172.16.0.0/12', 'eth0') + MASQ_A
    warnings = []
    runtime = nat_module.plan_nft_runtime(state, nat_rules.KindKeys('masquerade'), desired, warnings)
    verbs = [list(command)[0] for command in runtime.batch]
    assert verbs == ['delete'] * 4 + ['add'] * 4
    assert runtime.changed and warnings == []
    assert comments(runtime.after_rules) == comments(
        MASQ_A[:1] + desired[:1] + MASQ_A[1:] + desired[1:4])
    assert runtime.diff['before'].count('10.1.0.0/16 oif eth0 |') == 4
    assert '10.1.0.0/16' not in runtime.diff['after']


# ---------------------------------------------------------------- the backend not chosen

def ipt_entries(rules, chain_of=None):
    chain_of = chain_of or {'forward': 'FORWARD', 'postrouting': 'POSTROUTING',
                            'prerouting': 'PREROUTING'}
    return [{'chain': rule['chain'], 'comment': rule['comment'], 'family': rule['family'],
             'table': 'filter' if rule['chain'] == 'forward' else 'nat',
             'ipt_chain': chain_of[rule['chain']]} for rule in rules]


STALE = nat_rules.masquerade_rules('10.1.0.0/16', 'eth0')


FOREIGN_AFTER = [('ip', 'DOCKER-USER', rule) for rule in nat_rules.forward_rules(MASQ_A)]


@pytest.mark.parametrize('name, iptables_is_nft, chain, after, present, kept', [
    ('legacy iptables: every entry is the iptables backend\'s', False, 'FORWARD',
     FOREIGN_AFTER, {('ip', 'FORWARD', STALE[1]['comment'])}, MASQ_A + STALE),
    ('iptables-nft without foreign rules: all of it goes', True, 'FORWARD', [], set(),
     MASQ_A + STALE),
    ('iptables-nft: the accept rules foreign_forward keeps stay its own', True, 'DOCKER-USER',
     FOREIGN_AFTER, set(), MASQ_A[:1] + STALE),
    ('iptables-nft: kept in another chain than the entry\'s', True, 'FORWARD',
     FOREIGN_AFTER, set(), MASQ_A + STALE),
    ('iptables-nft: what the ForeignPlan found (and removes) is its own', True, 'FORWARD',
     [], {('ip', 'FORWARD', STALE[1]['comment'])}, MASQ_A + STALE[:1] + STALE[2:]),
])
def test_other_iptables_entries(name, iptables_is_nft, chain, after, present, kept):
    foreign = nat_module.ForeignPlan(after=after, present=frozenset(present))
    chains = {'forward': chain, 'postrouting': 'POSTROUTING', 'prerouting': 'PREROUTING'}
    found = nat_module.other_iptables_entries(ipt_entries(MASQ_A + STALE, chains),
                                              iptables_is_nft, foreign)
    assert [entry['comment'] for entry in found] == comments(kept), name


def test_other_backend_plan_reports_what_goes():
    state = {'exists': True, 'chains': dict((name, {}) for name in nft.CHAIN_ORDER),
             'entries': entries(MASQ_A + PORT_P)}
    runtime = nat_module.plan_nft_runtime(state, nat_rules.KindKeys('masquerade'), [], [])
    other = nat_module.OtherBackendPlan(runtime=runtime, persistence=nat_module.PersistencePlan())
    report = other.report()
    assert report['backend'] == 'nftables' and report['changed'] is True
    assert sorted(report['removed']) == sorted(nft.rule_statement(rule) for rule in MASQ_A)
    assert comments(runtime.after_rules) == comments(PORT_P)
    # The last rule of the table going deletes the table, in one batch.
    empty = nat_module.plan_nft_runtime(dict(state, entries=entries(MASQ_A)),
                                        nat_rules.KindKeys('masquerade'), [], [])
    assert empty.batch == [{'delete': {'table': {'family': 'inet', 'name': 'tuntap_qemu'}}}]


# ---------------------------------------------------------------- destinations of a list

def test_managed_destinations_of_a_list(monkeypatch):
    looked_up = []

    def guest_side_networks(exclude):
        looked_up.append(exclude)
        return [('10.77.0.0/24', 'vo1')] if exclude == ['eth1'] else [('10.0.0.0/8', 'br9')]

    monkeypatch.setattr(nat_module, 'guest_side_networks', guest_side_networks)
    monkeypatch.setattr(nat_module.netlink, 'available', lambda: True)
    params = port_params([forward(),
                          forward(port=2202, destination='10.77.0.5', in_interface='eth1'),
                          forward(port=2203, destination='172.16.0.5'),
                          forward(port=2204, destination='10.77.0.6')],
                         allow_unmanaged_destination=False)
    request = nat_rules.port_forward_request(params)
    assert request['errors'] == []
    rules, errors = nat_module.complete_port_forwards(params, request, MASQ_A)
    assert len(errors) == 1
    assert errors[0].startswith('forwards[2].destination: 172.16.0.5 is outside every managed subnet')
    # The masqueraded network holds the first destination (no lookup); the guest-side
    # networks of the host are read once per in_interface.
    assert looked_up == [['eth1'], [None]]
    # A hairpin rule per forward without in_interface, for the subnet of its destination.
    assert comments(rules) == [
        'tuntap.qemu port_forward tcp *:2201 | hairpin 192.168.0.11:22 from 192.168.0.0/24',
        'tuntap.qemu port_forward tcp *:2204 | hairpin 10.77.0.6:22 from 10.0.0.0/8']
    params['allow_unmanaged_destination'] = True
    rules, errors = nat_module.complete_port_forwards(params, request, MASQ_A)
    assert errors == [] and len(rules) == 2
    params['state'] = 'absent'
    assert nat_module.complete_port_forwards(params, request, MASQ_A) == ([], [])


@pytest.mark.parametrize('destination, masqueraded, guest_networks, network', [
    ('192.168.5.11', ['192.168.0.0/16', '192.168.5.0/24'], [], '192.168.5.0/24'),
    ('192.168.5.11', ['10.0.0.0/24'], [('192.168.5.0/24', 'br0'), ('192.168.0.0/16', 'x')],
     '192.168.5.0/24'),
    ('192.168.5.11', ['192.168.0.0/16'], [('192.168.5.0/24', 'br0')], '192.168.0.0/16'),
    ('fd00:5::11', [], [('fd00:5::/64', 'br0')], 'fd00:5::/64'),
    ('172.16.0.1', ['10.0.0.0/24'], [('192.168.5.0/24', 'br0')], None),
])
def test_managed_network(destination, masqueraded, guest_networks, network):
    assert nat_module.managed_network(destination, masqueraded, guest_networks) == network


def test_a_host_converged_before_hairpin_and_output_rules_gets_them_once():
    """A host of the previous version has only the dnat and forward rules of a forward: the
    next converge adds the output and hairpin rules, then has nothing to do."""
    params = port_params([forward()], allow_unmanaged_destination=False)
    request = nat_rules.port_forward_request(params)
    hairpin, errors = nat_module.complete_port_forwards(params, request, MASQ_A)
    assert errors == []
    desired = request['rules'] + hairpin
    old = [rule for rule in desired if rule['chain'] in ('prerouting', 'forward')]
    old_chains = ('postrouting', 'prerouting', 'forward')
    state = {'exists': True, 'chains': dict((name, {}) for name in old_chains),
             'entries': entries(MASQ_A[:1] + old[:1] + MASQ_A[1:] + old[1:])}
    state['entries'].sort(key=lambda entry: nft.CHAIN_ORDER.index(entry['chain']))
    runtime = nat_module.plan_nft_runtime(state, request['keys'], desired, [])
    assert runtime.changed
    added = [command for command in runtime.batch if 'add' in command]
    assert added[0] == {'add': {'chain': nft._chain_json('output')}}
    assert sorted(command['add']['rule']['comment'] for command in added[1:]) == sorted(
        rule['comment'] for rule in desired if rule['chain'] in ('postrouting', 'output'))
    assert not any('delete' in command for command in runtime.batch)
    converged = {'exists': True, 'chains': dict((name, {}) for name in nft.CHAIN_ORDER),
                 'entries': entries(list(runtime.after_rules))}
    again = nat_module.plan_nft_runtime(converged, request['keys'], desired, [])
    assert not again.changed and again.batch == []
