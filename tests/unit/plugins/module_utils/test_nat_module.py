# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The NAT converge's pure decisions: backend choice, managed destinations, foreign chains."""

from __future__ import annotations

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._nat import nat_module, nat_rules
from ansible_collections.tuntap.qemu.plugins.module_utils._nat.netfilter_commands import NetfilterError


class FakeCommands:
    """Programs that exist, and what they print."""

    def __init__(self, programs, outputs=None):
        self.names = {'iptables': 'iptables'}
        self.programs = programs
        self.outputs = outputs or {}
        self.ran = []

    def find(self, name):
        return '/usr/sbin/' + name if name in self.programs else None

    def sibling(self, name, suffix):
        return self.find(name) + suffix if name + suffix in self.programs else None

    def run(self, argv, data=None):
        self.ran.append(argv)
        return 0, self.outputs.get(argv[0], ''), ''

    def run_checked(self, argv, data=None, what=None):
        return self.run(argv)[1]


LEGACY_RULES = '*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n'


@pytest.mark.parametrize('programs, outputs, table_exists, expected', [
    (['nft', 'iptables'], {'/usr/sbin/iptables': 'iptables v1.8.9 (nf_tables)'}, False, 'nftables'),
    (['nft', 'iptables', 'iptables-save'], {'/usr/sbin/iptables': 'iptables v1.8.9 (legacy)',
                                            '/usr/sbin/iptables-save': LEGACY_RULES}, False, 'iptables'),
    (['nft', 'iptables', 'iptables-save'], {'/usr/sbin/iptables': 'iptables v1.8.9 (legacy)',
                                            '/usr/sbin/iptables-save': ''}, False, 'nftables'),
    (['nft', 'iptables', 'iptables-save'], {'/usr/sbin/iptables': 'iptables v1.8.9 (legacy)',
                                            '/usr/sbin/iptables-save': LEGACY_RULES}, True, 'nftables'),
    (['iptables'], {}, False, 'iptables'),
    (['nft'], {}, False, 'nftables'),
])
def test_choose_backend_auto(programs, outputs, table_exists, expected):
    commands = FakeCommands(programs, outputs)
    name, reason = nat_module.choose_backend('auto', commands, lambda: {'exists': table_exists})
    assert name == expected and reason


def test_choose_backend_explicit_reads_nothing():
    commands = FakeCommands([])
    assert nat_module.choose_backend('iptables', commands, None) == ('iptables', 'backend=iptables')
    assert commands.ran == []


def test_choose_backend_without_programs_names_the_package():
    with pytest.raises(NetfilterError, match='Debian package nftables'):
        nat_module.choose_backend('auto', FakeCommands([]), lambda: {'exists': False})


GUEST_NETWORKS = [('192.168.0.0/24', 'br0'), ('10.77.0.0/24', 'tap3')]


@pytest.mark.parametrize('destination, masqueraded, guests, ok', [
    ('192.168.0.10', ['192.168.0.0/24'], [], True),
    ('192.168.0.10', [], GUEST_NETWORKS, True),
    ('10.77.0.5', ['192.168.0.0/24'], GUEST_NETWORKS, True),
    ('fd00::10', ['fd00::/64'], [], True),
    ('198.51.100.20', ['192.168.0.0/24'], GUEST_NETWORKS, False),
    ('192.168.1.10', [], [], False),
])
def test_destination_errors(destination, masqueraded, guests, ok):
    errors = nat_module.destination_errors(destination, masqueraded, guests)
    assert (errors == []) is ok
    if not ok:
        assert errors[0].startswith('destination: %s is outside every managed subnet' % destination)
        assert 'allow_unmanaged_destination=true' in errors[0]


DOCKER_DROP = [{'family': 'ip', 'table': 'filter', 'chain': 'FORWARD', 'docker_user': True}]
PLAIN_DROP = [{'family': 'ip', 'table': 'filter', 'chain': 'FORWARD', 'docker_user': False}]
NATIVE_DROP = [{'family': 'inet', 'table': 'fw', 'chain': 'fwd', 'docker_user': False}]


@pytest.mark.parametrize('drop, families, targets', [
    (DOCKER_DROP, ['ipv4'], {'ipv4': ('ip', 'DOCKER-USER')}),
    (PLAIN_DROP, ['ipv4', 'ipv6'], {'ipv4': ('ip', 'FORWARD')}),
    (PLAIN_DROP, ['ipv6'], {}),
    (NATIVE_DROP, ['ipv4'], {}),
    ([], ['ipv4'], {}),
])
def test_foreign_targets(drop, families, targets):
    assert nat_module.foreign_targets(drop, families) == targets


def test_foreign_warnings():
    [ignored] = nat_module.foreign_warnings(PLAIN_DROP, ['ipv4'], set(), 'ignore')
    assert ignored.startswith('table ip filter chain FORWARD has policy drop')
    assert 'foreign_forward=accept' in ignored
    assert nat_module.foreign_warnings(PLAIN_DROP, ['ipv4'], {('ip', 'filter', 'FORWARD')},
                                       'accept') == []
    assert nat_module.foreign_warnings(PLAIN_DROP, ['ipv6'], set(), 'ignore') == []
    [native] = nat_module.foreign_warnings(NATIVE_DROP, ['ipv4'], set(), 'accept')
    assert native.startswith('table inet fw chain fwd has policy drop')
    assert 'allow the traffic in that table yourself' in native


def test_plan_foreign():
    forward = nat_rules.forward_rules(nat_rules.masquerade_rules('192.168.0.0/24', 'eth0'))
    old = nat_rules.forward_rules(nat_rules.masquerade_rules('192.168.0.0/24', 'eth1'))
    targets = {'ipv4': ('ip', 'DOCKER-USER')}
    candidates = {('ip', 'DOCKER-USER'): forward + old, ('ip', 'FORWARD'): forward}
    present = {('ip', 'DOCKER-USER', forward[0]['comment']),
               ('ip', 'DOCKER-USER', old[0]['comment']),
               ('ip', 'FORWARD', forward[1]['comment'])}
    plan = nat_module.plan_foreign(targets, forward, candidates, present)
    assert plan['insert'] == [('ip', 'DOCKER-USER', forward[1]), ('ip', 'DOCKER-USER', forward[2])]
    assert plan['delete'] == [('ip', 'DOCKER-USER', old[0]), ('ip', 'FORWARD', forward[1])]
    assert plan['after'] == [('ip', 'DOCKER-USER', rule) for rule in forward]


def test_plan_foreign_ignore_only_removes():
    forward = nat_rules.forward_rules(nat_rules.masquerade_rules('192.168.0.0/24', 'eth0'))
    present = {('ip', 'FORWARD', forward[0]['comment'])}
    plan = nat_module.plan_foreign({}, [], {('ip', 'FORWARD'): forward}, present)
    assert plan == {'insert': [], 'delete': [('ip', 'FORWARD', forward[0])], 'after': []}
