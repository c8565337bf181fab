# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DHCP and DNS ports of our internal interfaces (and ICMPv6 router solicitations from
the advertised ones), opened in our own nftables table
`inet tuntap_qemu_dhcp` (through nft's JSON, rules rendered by _nat.nft), and where another
table's input chain drops: a warning, or with foreign_input=accept the same scoped accepts at
the top of iptables-nft's `ip filter INPUT` (_nat.iptables.ForeignForward, chain INPUT).

Rules are identified by their comment, which names the interface, protocol and port: the
table is rebuilt in one atomic batch when the set of comments differs.

The same table is written to FILE_NAME in the configuration folder (render_file), which the
systemd unit of the DHCP server loads before dnsmasq starts: the table comes back at boot
with the service (the runtime batch and the file render the same rules).
"""

from __future__ import annotations

import json
import shlex

from ansible_collections.tuntap.qemu.plugins.module_utils._nat import iptables, nft
from ansible_collections.tuntap.qemu.plugins.module_utils._nat.netfilter_commands import NetfilterError

TABLE_FAMILY = 'inet'
TABLE_NAME = 'tuntap_qemu_dhcp'
TABLE = '%s %s' % (TABLE_FAMILY, TABLE_NAME)
CHAIN = 'input'
COMMENT_PREFIX = 'tuntap.qemu dhcp '
PORTS = (('udp', 67), ('udp', 53), ('tcp', 53))
FOREIGN_CHAIN = ('ip', 'filter', 'INPUT')
FILE_NAME = 'firewall.nft'
ICMPV6_TYPE = 'icmpv6_type'
ROUTER_SOLICIT = 'nd-router-solicit'


def rules(interfaces, ra_interfaces=()):
    """Our accept rules, in order: DHCP and DNS (IPv4 and IPv6: the inet table matches both)
    from each internal interface, then the router solicitations (ICMPv6) from each advertised
    one: a guest that asks gets the router advertisement at once."""
    found = []
    for interface in interfaces:
        for protocol, port in PORTS:
            found.append({'family': 'ipv4', 'chain': CHAIN,
                          'match': [('iifname', interface), ('dport', (protocol, port))],
                          'action': ('accept',),
                          'comment': '%siif %s %s/%d' % (COMMENT_PREFIX, interface, protocol, port)})
        if interface in ra_interfaces:
            found.append({'family': 'ipv6', 'chain': CHAIN,
                          'match': [('iifname', interface), (ICMPV6_TYPE, ROUTER_SOLICIT)],
                          'action': ('accept',),
                          'comment': '%siif %s icmpv6/%s' % (COMMENT_PREFIX, interface, ROUTER_SOLICIT)})
    return found


def request_rules(request):
    """rules() of a dhcp_config.Request: its interfaces, the advertised ones for RS."""
    return rules([network.interface for network in request.networks],
                 [network.interface for network in request.networks if network.network6])


def ipv4_rules(wanted):
    """The rules an IPv4 chain (iptables-nft's ip filter INPUT) can hold: not the ICMPv6 ones."""
    return [rule for rule in wanted if rule['family'] == 'ipv4']


def _split_icmpv6(rule):
    """(the rule without its ICMPv6 type match, the type or None): _nat.nft renders the rest."""
    types = [value for field, value in rule['match'] if field == ICMPV6_TYPE]
    rest = dict(rule, match=[(field, value) for field, value in rule['match'] if field != ICMPV6_TYPE])
    return rest, (types[0] if types else None)


def rule_expr(rule):
    """The nft JSON expressions of one of our rules (the ICMPv6 type after the matches)."""
    rest, icmpv6_type = _split_icmpv6(rule)
    expr = nft.rule_expr(rest)
    if icmpv6_type:
        expr.insert(len(rest['match']), {'match': {
            'op': '==', 'left': {'payload': {'protocol': 'icmpv6', 'field': 'type'}},
            'right': icmpv6_type}})
    return expr


def rule_statement(rule):
    """One of our rules in nft syntax, as `nft list` prints it."""
    rest, icmpv6_type = _split_icmpv6(rule)
    statement = nft.rule_statement(rest)
    if icmpv6_type:
        head, sep, tail = statement.partition(' counter ')
        statement = '%s icmpv6 type %s%s%s' % (head, icmpv6_type, sep, tail)
    return statement


def render_table(wanted):
    """Our table in nft syntax (for the diff); '' without rules."""
    if not wanted:
        return ''
    lines = ['table %s {' % TABLE, '\tchain %s {' % CHAIN,
             '\t\ttype filter hook input priority filter; policy accept;']
    lines += ['\t\t' + rule_statement(rule) for rule in wanted]
    lines += ['\t}', '}']
    return '\n'.join(lines) + '\n'


def render_file(wanted):
    """The table as a file for `nft -f`, or None without rules. Loading it replaces our table
    as a whole (declared, deleted, declared again), so it may be loaded any number of times."""
    if not wanted:
        return None
    header = ['#!/usr/sbin/nft -f',
              '# Managed by tuntap.qemu (module guest_dhcp): the DHCP and DNS ports (and router',
              '# solicitations) of the guests\' interfaces, loaded by tuntap-qemu-dnsmasq.service',
              '# before dnsmasq starts. Local changes are overwritten.',
              'table %s' % TABLE, 'delete table %s' % TABLE]
    return '\n'.join(header) + '\n' + render_table(wanted)


def parse_table(document):
    """{'exists', 'chain_ok', 'comments'} of `nft -j list table inet tuntap_qemu_dhcp`."""
    state = {'exists': True, 'chain_ok': False, 'comments': []}
    for item in document.get('nftables', []):
        if 'chain' in item and item['chain'].get('name') == CHAIN:
            chain = item['chain']
            state['chain_ok'] = (chain.get('type') == 'filter' and chain.get('hook') == 'input'
                                 and chain.get('prio') == 0 and chain.get('policy') == 'accept')
        elif 'rule' in item:
            state['comments'].append(item['rule'].get('comment', ''))
    return state


def table_batch(state, wanted):
    """The JSON commands that make the table hold `wanted`; [] when it does."""
    table = {'family': TABLE_FAMILY, 'name': TABLE_NAME}
    if not wanted:
        return [{'delete': {'table': table}}] if state['exists'] else []
    if (state['exists'] and state['chain_ok']
            and state['comments'] == [rule['comment'] for rule in wanted]):
        return []
    # Declared, deleted, declared again: the batch replaces whatever table there is by then
    # (the unit may have loaded firewall.nft since the table was read), never adding rules
    # to it twice.
    commands = [{'add': {'table': table}}, {'delete': {'table': table}}]
    commands += [{'add': {'table': table}},
                 {'add': {'chain': {'family': TABLE_FAMILY, 'table': TABLE_NAME, 'name': CHAIN,
                                    'type': 'filter', 'hook': 'input', 'prio': 0,
                                    'policy': 'accept'}}}]
    for rule in wanted:
        commands.append({'add': {'rule': {'family': TABLE_FAMILY, 'table': TABLE_NAME,
                                          'chain': CHAIN, 'comment': rule['comment'],
                                          'expr': rule_expr(rule)}}})
    return commands


def drop_input_chains(document):
    """Base chains of other tables on the input hook with policy drop, from
    `nft -j list chains`: [(family, table, chain)]."""
    found = []
    for item in document.get('nftables', []):
        chain = item.get('chain')
        if not chain or (chain['family'] == TABLE_FAMILY and chain['table'] == TABLE_NAME):
            continue
        if chain.get('hook') == 'input' and chain.get('policy') == 'drop':
            found.append((chain['family'], chain['table'], chain['name']))
    return found


def parse_foreign_rules(text):
    """Our rules in `iptables-nft -S INPUT` output: {comment: argv after -A INPUT}."""
    found = {}
    for line in text.splitlines():
        if not line.startswith('-A %s ' % FOREIGN_CHAIN[2]):
            continue
        words = shlex.split(line)[2:]
        if '--comment' in words:
            comment = words[words.index('--comment') + 1]
            if comment.startswith(COMMENT_PREFIX):
                found[comment] = words
    return found


class Firewall:
    """Reads and changes our table and our rules in iptables-nft's INPUT chain."""

    def __init__(self, commands):
        self.commands = commands
        self.foreign = iptables.ForeignForward(commands)

    def available(self):
        return self.commands.find('nft') is not None

    def nft_path(self):
        return self.commands.find('nft')

    def read_table(self):
        rc, out, err = self.commands.run([self.commands.find('nft'), '-j', 'list', 'table',
                                          TABLE_FAMILY, TABLE_NAME])
        if rc != 0:
            if 'No such file or directory' in err:
                return {'exists': False, 'chain_ok': False, 'comments': []}
            raise NetfilterError('nft -j list table %s failed (exit %d): %s' % (TABLE, rc, err.strip()))
        return parse_table(_loads(out))

    def read_drop_chains(self):
        out = self.commands.run_checked([self.commands.find('nft'), '-j', 'list', 'chains'],
                                        what='nft -j list chains')
        return drop_input_chains(_loads(out))

    def read_foreign_rules(self):
        """Our rules in ip filter INPUT ({} when iptables-nft or the chain is missing)."""
        binary = self.commands.find('iptables_nft')
        if binary is None:
            return {}
        rc, out, _err = self.commands.run([binary, '-w', '-t', 'filter', '-S', FOREIGN_CHAIN[2]])
        return parse_foreign_rules(out) if rc == 0 else {}

    def apply_table(self, batch):
        if batch:
            self.commands.run_checked([self.commands.find('nft'), '-j', '-f', '-'],
                                      data=json.dumps({'nftables': batch}),
                                      what='nft -j -f - (table %s)' % TABLE)

    def insert_foreign(self, rule):
        self.foreign.insert('ip', FOREIGN_CHAIN[2], rule)

    def delete_foreign(self, words):
        self.commands.run_checked([self.foreign.command('ip'), '-w', '-t', 'filter', '-D',
                                   FOREIGN_CHAIN[2]] + list(words))

    def foreign_line(self, rule):
        return self.foreign.line('ip', FOREIGN_CHAIN[2], rule)


def _loads(text):
    try:
        return json.loads(text or '{}')
    except ValueError as exc:
        raise NetfilterError('nft printed no JSON: %s' % exc)
