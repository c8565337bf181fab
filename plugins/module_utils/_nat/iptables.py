# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The iptables backend, and scoped accept rules in chains that iptables-nft owns.

Same rules as the nftables backend (nat_rules), written with iptables/ip6tables:

    postrouting  -> -t nat    POSTROUTING   appended
    prerouting   -> -t nat    PREROUTING    appended; rules with a host address inserted first
    output       -> -t nat    OUTPUT        the same
    forward      -> -t filter FORWARD       inserted first (DOCKER-USER when that chain exists)

Every rule carries `-m comment --comment "tuntap.qemu ..."`; the comment is its identity
(see nat_rules).  Reading lists the comments of the `iptables-save` output (nothing else
of it is interpreted); `-C` checks and `-D` deletes rebuild the full rule from its comment,
so a rule is never added twice.  Every command is an argv list run with LC_ALL=C.

The same argv rendering serves the nftables backend on hosts where an iptables-nft
chain (Docker's `ip filter FORWARD`, policy drop) would drop the guests' traffic:
ForeignForward inserts the forward rules there, with iptables-nft, idempotent with -C.
"""

from __future__ import annotations

import re
import shlex

from ansible_collections.tuntap.qemu.plugins.module_utils._nat import nat_rules
from ansible_collections.tuntap.qemu.plugins.module_utils._nat.netfilter_commands import NetfilterError

DEFAULT_HOOK_FILE = '/etc/network/if-up.d/tuntap-qemu'
DOCKER_USER = 'DOCKER-USER'
TABLE_CHAINS = {
    'postrouting': ('nat', 'POSTROUTING'),
    'prerouting': ('nat', 'PREROUTING'),
    'output': ('nat', 'OUTPUT'),
    'forward': ('filter', 'FORWARD'),
}
FAMILY_COMMANDS = {'ipv4': 'iptables', 'ipv6': 'ip6tables'}
NFT_FAMILY_COMMANDS = {'ip': 'iptables_nft', 'ip6': 'ip6tables_nft'}
NFT_FAMILIES = {'ipv4': 'ip', 'ipv6': 'ip6'}

_COMMENT = re.compile(r'--comment (?:"((?:[^"\\]|\\.)*)"|(\S+))')
_RULE = re.compile(r'^-A (\S+) ')
_POLICY = re.compile(r'^:(\S+) (\S+) ')


# ---------------------------------------------------------------- rendering a rule

def rule_args(rule):
    """Match and target arguments of a rule (everything after `-t TABLE -A CHAIN`)."""
    args = []
    for field, value in rule['match']:
        if field == 'iifname':
            args += ['-i', value]
        elif field == 'oifname':
            args += ['-o', value]
        elif field == 'saddr':
            args += ['-s', value]
        elif field == 'daddr':
            args += ['-d', value]
        elif field == 'daddr_not':
            args += ['!', '-d', value]
        elif field == 'daddr_local':
            args += ['-m', 'addrtype', '--dst-type', 'LOCAL']
        elif field in ('dport', 'sport'):
            args += ['-p', value[0], '-m', value[0], '--' + field, str(value[1])]
        elif field == 'ct_state':
            args += ['-m', 'conntrack', '--ctstate', ','.join(state.upper() for state in value)]
        elif field == 'ct_status':
            args += ['-m', 'conntrack', '--ctstate', value.upper()]
        # nfproto: implied by iptables (IPv4) or ip6tables (IPv6).
    args += ['-m', 'comment', '--comment', rule['comment']]
    action = rule['action']
    if action[0] == 'masquerade':
        args += ['-j', 'MASQUERADE']
    elif action[0] == 'accept':
        args += ['-j', 'ACCEPT']
    else:
        args += ['-j', 'DNAT', '--to-destination',
                 '%s:%d' % (nat_rules.bracketed(action[1]), action[2])]
    return args


def placement(rule):
    """'insert' (at the top of the chain) or 'append'."""
    if rule['chain'] == 'forward' or (rule['chain'] in ('prerouting', 'output')
                                      and rule['rank'] == 0):
        return 'insert'
    return 'append'


def rule_line(rule, forward_chain='FORWARD'):
    """The rule as an iptables command line (for the diff and the return values)."""
    table, chain = table_chain(rule, forward_chain)
    verb = '-I' if placement(rule) == 'insert' else '-A'
    return ' '.join([FAMILY_COMMANDS[rule['family']], '-t', table, verb, chain]
                    + [shlex.quote(arg) for arg in rule_args(rule)])


def table_chain(rule, forward_chain='FORWARD'):
    table, chain = TABLE_CHAINS[rule['chain']]
    if rule['chain'] == 'forward':
        chain = forward_chain
    return table, chain


def sorted_rules(rules):
    """A stable order that does not depend on the kernel's: inserted rules come out of
    iptables in reverse, so the hook and the diff list rules by family, chain, rank and
    comment instead."""
    chains = dict((name, index) for index, name in enumerate(nat_rules.CHAINS))
    return sorted(rules, key=lambda rule: (rule['family'], chains[rule['chain']], rule['rank'],
                                           rule['comment']))


# ---------------------------------------------------------------- reading iptables-save

def parse_save(text, family):
    """Our rules and the chains of `iptables-save` output.

    Returns {'entries': [{'chain' (ours), 'comment', 'family', 'table', 'ipt_chain'}],
    'chains': {(table, chain)}, 'policies': {(table, chain): policy}, 'rule_count': n}.
    """
    result = {'entries': [], 'chains': set(), 'policies': {}, 'rule_count': 0}
    table = None
    ours = dict((value, key) for key, value in TABLE_CHAINS.items())
    for line in (text or '').splitlines():
        if line.startswith('*'):
            table = line[1:].strip()
            continue
        policy = _POLICY.match(line)
        if policy:
            result['chains'].add((table, policy.group(1)))
            if policy.group(2) != '-':
                result['policies'][(table, policy.group(1))] = policy.group(2)
            continue
        found = _RULE.match(line)
        if not found:
            continue
        result['rule_count'] += 1
        comment = _COMMENT.search(line)
        if not comment:
            continue
        text_comment = comment.group(1)
        if text_comment is not None:
            text_comment = re.sub(r'\\(.)', r'\1', text_comment)
        else:
            text_comment = comment.group(2)
        if not text_comment.startswith(nat_rules.COMMENT_PREFIX):
            continue
        chain = found.group(1)
        if table == 'filter' and chain == DOCKER_USER:
            our_chain = 'forward'
        else:
            our_chain = ours.get((table, chain))
        if our_chain is None:
            continue
        result['entries'].append({'chain': our_chain, 'comment': text_comment,
                                  'family': family, 'table': table, 'ipt_chain': chain})
    return result


def legacy_in_use(save_text):
    """Whether legacy tables hold anything: a rule, or a chain policy other than ACCEPT."""
    parsed = parse_save(save_text, 'ipv4')
    return parsed['rule_count'] > 0 or any(
        policy != 'ACCEPT' for policy in parsed['policies'].values())


# ---------------------------------------------------------------- the backend

class IptablesBackend:
    """Our rules in the nat and filter tables, through iptables and ip6tables."""

    name = 'iptables'

    def __init__(self, commands):
        self.commands = commands

    def command(self, family):
        return self.commands.require(FAMILY_COMMANDS[family], 'backend iptables (%s)' % family)

    def read(self, families):
        """Our rules of the given families (['ipv4', 'ipv6']) as plan entries."""
        state = {'entries': [], 'forward_chains': {}}
        for family in ('ipv4', 'ipv6'):
            name = FAMILY_COMMANDS[family]
            if family not in families and self.commands.find(name) is None:
                continue
            self.command(family)
            save = self.commands.sibling(name, '-save')
            if save is None:
                raise NetfilterError('backend iptables: %s-save was not found next to %s; '
                                     'install the Debian package iptables'
                                     % (self.commands.names[name], self.command(family)))
            out = self.commands.run_checked([save], what=save)
            parsed = parse_save(out, family)
            state['entries'].extend(parsed['entries'])
            has_user = ('filter', DOCKER_USER) in parsed['chains']
            state['forward_chains'][family] = DOCKER_USER if has_user else 'FORWARD'
        return state

    def forward_chain(self, state, family):
        return state['forward_chains'].get(family, 'FORWARD')

    def commands_of(self, state, plan):
        """The argv lists that carry out `plan`: deletes, then adds, each rule with its own
        command (iptables has no batch for single rules that leaves the rest of the table
        alone)."""
        argvs = []
        for entry in plan['delete']:
            rule = nat_rules.rule_from_comment(entry['comment'])
            if rule is None:
                raise NetfilterError(
                    'rule %r in %s %s was not written by this version of tuntap.qemu; '
                    'delete it by hand' % (entry['comment'], entry['table'], entry['ipt_chain']))
            argvs.append(self._argv(rule, '-D', entry['ipt_chain']))
        for rule, _before in plan['add']:
            _table, chain = table_chain(rule, self.forward_chain(state, rule['family']))
            argvs.append(self._argv(rule, '-I' if placement(rule) == 'insert' else '-A', chain))
        return argvs

    def _argv(self, rule, verb, chain):
        table, _chain = table_chain(rule)
        argv = [self.command(rule['family']), '-w', '-t', table, verb, chain] + rule_args(rule)
        if verb == '-I':
            argv[6:6] = ['1']
        return argv

    def lines(self, state, rules):
        """Command lines of `rules`, in sorted_rules order."""
        return [rule_line(rule, self.forward_chain(state, rule['family']))
                for rule in sorted_rules(rules)]


# ---------------------------------------------------------------- the persistent hook

HOOK_HEADER = '''#!/bin/sh
# Managed by tuntap.qemu (masquerade and port_forward modules, iptables backend).
# ifupdown runs this script each time an interface comes up (so also at boot:
# networking.service runs `ifup -a`, for lo, every auto interface and once with
# IFACE=--all; ifup@.service runs `ifup` for each allow-hotplug one). It adds each NAT
# rule below that `iptables -C` does not find, so running it any number of times adds
# nothing twice. It always exits 0: ifupdown runs if-up.d with run-parts --exit-on-error,
# where a failing script fails the interface and skips the scripts after it. Rendered
# from the same rules as the running ones; local changes are overwritten.
status=0
forward_chain() {
    # Docker's DOCKER-USER chain when it exists (as at the last converge), else FORWARD.
    if "$1" -w -t filter -S DOCKER-USER >/dev/null 2>&1; then echo DOCKER-USER; else echo FORWARD; fi
}
'''


def render_hook(rules, command_paths):
    """The if-up.d script that re-adds `rules`; None without rules.

    command_paths maps 'ipv4'/'ipv6' to the iptables/ip6tables program paths."""
    if not rules:
        return None
    rules = sorted_rules(rules)
    lines = [HOOK_HEADER]
    families = sorted(set(rule['family'] for rule in rules))
    for family in families:
        if any(rule['chain'] == 'forward' and rule['family'] == family for rule in rules):
            lines.append('forward_%s=$(forward_chain %s)\n'
                         % (family, shlex.quote(command_paths[family])))
    for rule in rules:
        program = shlex.quote(command_paths[rule['family']])
        table, chain = table_chain(rule)
        if rule['chain'] == 'forward':
            chain_word = '"$forward_%s"' % rule['family']
        else:
            chain_word = chain
        args = ' '.join(shlex.quote(arg) for arg in rule_args(rule))
        verb = '-I %s 1' % chain_word if placement(rule) == 'insert' else '-A %s' % chain_word
        lines.append('%s -w -t %s -C %s %s 2>/dev/null || %s -w -t %s %s %s || status=1\n'
                     % (program, table, chain_word, args, program, table, verb, args))
    lines.append('if [ "$status" -ne 0 ]; then\n'
                 '    echo "tuntap-qemu: some NAT rules could not be added (IFACE=$IFACE)" >&2\n'
                 'fi\n'
                 'exit 0\n')
    return ''.join(lines)


# ---------------------------------------------------------------- chains of iptables-nft

class ForeignForward:
    """Scoped accept rules in a forward chain that iptables-nft owns (Docker's
    `ip filter FORWARD` with policy drop, or its DOCKER-USER chain), for the nftables
    backend: an accept in our own table cannot override another table's drop."""

    def __init__(self, commands):
        self.commands = commands

    def command(self, nft_family):
        name = NFT_FAMILY_COMMANDS[nft_family]
        return self.commands.require(name, 'foreign_forward (table %s filter)' % nft_family)

    def present(self, nft_family, chain, rule):
        argv = [self.command(nft_family), '-w', '-t', 'filter', '-C', chain] + rule_args(rule)
        rc, _out, err = self.commands.run(argv)
        if rc == 0:
            return True
        if rc == 1:
            return False
        raise NetfilterError('%s failed (exit %d): %s' % (' '.join(argv), rc, err.strip()))

    def insert(self, nft_family, chain, rule):
        self.commands.run_checked([self.command(nft_family), '-w', '-t', 'filter', '-I',
                                   chain, '1'] + rule_args(rule))

    def delete(self, nft_family, chain, rule):
        self.commands.run_checked([self.command(nft_family), '-w', '-t', 'filter', '-D',
                                   chain] + rule_args(rule))

    def line(self, nft_family, chain, rule):
        return ' '.join([self.commands.names[NFT_FAMILY_COMMANDS[nft_family]], '-t', 'filter',
                         '-I', chain] + [shlex.quote(arg) for arg in rule_args(rule)])
