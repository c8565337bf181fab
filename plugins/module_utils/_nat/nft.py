# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nftables backend: our own table `inet tuntap_qemu`, read and changed through the
JSON interface of nft, and its persistent file for /etc/nftables.conf.

    state = NftBackend(commands).read()        # nft -j list table inet tuntap_qemu
    batch = table_batch(state, plan)           # one JSON batch, applied atomically
    NftBackend(commands).apply(batch)          # nft -j -f -

Nothing outside our table is ever written through nft; other tables are only read
(`nft -j list chains`, to find forward chains with a drop policy).  Rule expressions are
never parsed: a rule read back is identified by its comment (see nat_rules).
"""

from __future__ import annotations

import json

from ansible_collections.tuntap.qemu.plugins.module_utils._nat import nat_rules
from ansible_collections.tuntap.qemu.plugins.module_utils._nat.netfilter_commands import NetfilterError

TABLE_FAMILY = 'inet'
TABLE_NAME = 'tuntap_qemu'
TABLE = '%s %s' % (TABLE_FAMILY, TABLE_NAME)

# name -> (type, hook, numeric priority, priority as `nft list` prints it: nft has no
# keyword for the nat output hook's -100)
CHAIN_SPECS = {
    'postrouting': ('nat', 'postrouting', 100, 'srcnat'),
    'prerouting': ('nat', 'prerouting', -100, 'dstnat'),
    'output': ('nat', 'output', -100, '-100'),
    'forward': ('filter', 'forward', 0, 'filter'),
}
CHAIN_ORDER = ('postrouting', 'prerouting', 'output', 'forward')

DEFAULT_NFT_FILE = '/etc/nftables.d/tuntap-qemu.nft'
DEFAULT_NFTABLES_CONF = '/etc/nftables.conf'
INCLUDE_BEGIN = '# BEGIN tuntap.qemu NAT table (masquerade and port_forward modules)'
INCLUDE_END = '# END tuntap.qemu NAT table'

FILE_HEADER = (
    '#!/usr/sbin/nft -f\n'
    '# Managed by tuntap.qemu (masquerade and port_forward modules): NAT for the QEMU\n'
    '# guest subnets. Rendered from the same rules as the running table; local changes\n'
    '# are overwritten. Loading it replaces the table as a whole, so it can be loaded\n'
    '# (or included) any number of times.\n'
)

_IP_PROTOCOL = {'ipv4': 'ip', 'ipv6': 'ip6'}


# ---------------------------------------------------------------- rendering a rule

def _address_json(text):
    if '/' in text:
        address, length = text.split('/')
        return {'prefix': {'addr': address, 'len': int(length)}}
    return text


def _match(left, right, op='=='):
    return {'match': {'op': op, 'left': left, 'right': right}}


def rule_expr(rule):
    """The nft JSON expression list of a rule."""
    protocol = _IP_PROTOCOL[rule['family']]
    expr = []
    for field, value in rule['match']:
        if field in ('iifname', 'oifname'):
            expr.append(_match({'meta': {'key': field}}, value))
        elif field in ('saddr', 'daddr'):
            expr.append(_match({'payload': {'protocol': protocol, 'field': field}},
                               _address_json(value)))
        elif field == 'daddr_not':
            expr.append(_match({'payload': {'protocol': protocol, 'field': 'daddr'}},
                               _address_json(value), op='!='))
        elif field == 'nfproto':
            expr.append(_match({'meta': {'key': 'nfproto'}}, value))
        elif field == 'daddr_local':
            expr.append(_match({'fib': {'result': 'type', 'flags': ['daddr']}}, 'local'))
        elif field in ('dport', 'sport'):
            expr.append(_match({'payload': {'protocol': value[0], 'field': field}}, value[1]))
        elif field == 'ct_state':
            expr.append(_match({'ct': {'key': 'state'}}, list(value), op='in'))
        elif field == 'ct_status':
            expr.append(_match({'ct': {'key': 'status'}}, value, op='in'))
        else:  # pragma: no cover - the builders only make the fields above
            raise ValueError('unknown match %r' % field)
    expr.append({'counter': None})
    action = rule['action']
    if action[0] == 'dnat':
        expr.append({'dnat': {'family': protocol, 'addr': action[1], 'port': action[2]}})
    else:
        expr.append({action[0]: None})
    return expr


def rule_statement(rule):
    """The rule in nft syntax, as `nft list` prints it (without counter values)."""
    protocol = _IP_PROTOCOL[rule['family']]
    words = []
    for field, value in rule['match']:
        if field in ('iifname', 'oifname'):
            words.append('%s "%s"' % (field, value))
        elif field in ('saddr', 'daddr'):
            words.append('%s %s %s' % (protocol, field, value))
        elif field == 'daddr_not':
            words.append('%s daddr != %s' % (protocol, value))
        elif field == 'nfproto':
            words.append('meta nfproto %s' % value)
        elif field == 'daddr_local':
            words.append('fib daddr type local')
        elif field in ('dport', 'sport'):
            words.append('%s %s %d' % (value[0], field, value[1]))
        elif field == 'ct_state':
            words.append('ct state %s' % ','.join(value))
        elif field == 'ct_status':
            words.append('ct status %s' % value)
    words.append('counter')
    action = rule['action']
    if action[0] == 'dnat':
        words.append('dnat %s to %s:%d' % (protocol, nat_rules.bracketed(action[1]), action[2]))
    else:
        words.append(action[0])
    words.append('comment "%s"' % rule['comment'])
    return ' '.join(words)


def render_table(rules):
    """Our table in nft syntax with `rules` (in order) in their chains; '' without rules."""
    if not rules:
        return ''
    lines = ['table %s {' % TABLE]
    for index, chain in enumerate(CHAIN_ORDER):
        kind, hook, _prio, keyword = CHAIN_SPECS[chain]
        if index:
            lines.append('')
        lines.append('\tchain %s {' % chain)
        lines.append('\t\ttype %s hook %s priority %s; policy accept;' % (kind, hook, keyword))
        for rule in rules:
            if rule['chain'] == chain:
                lines.append('\t\t' + rule_statement(rule))
        lines.append('\t}')
    lines.append('}')
    return '\n'.join(lines) + '\n'


def render_file(rules):
    """The persistent file: the whole table, replaced atomically when loaded; None without rules."""
    if not rules:
        return None
    return (FILE_HEADER + '\n'
            + 'table %s\n' % TABLE
            + 'delete table %s\n' % TABLE
            + '\n'
            + render_table(rules))


# ---------------------------------------------------------------- /etc/nftables.conf

def include_block(nft_file):
    return '%s\ninclude "%s"\n%s\n' % (INCLUDE_BEGIN, nft_file, INCLUDE_END)


def _split_block(text):
    """(lines before our block, our block's lines or None, lines after it)."""
    lines = text.splitlines(True)
    start = end = None
    for index, line in enumerate(lines):
        if line.rstrip('\n') == INCLUDE_BEGIN and start is None:
            start = index
        elif line.rstrip('\n') == INCLUDE_END and start is not None:
            end = index
            break
    if start is None or end is None:
        return lines, None, []
    return lines[:start], lines[start:end + 1], lines[end + 1:]


# What conf_with_include() starts a missing nftables.conf with.
NEW_CONF_HEAD = '#!/usr/sbin/nft -f\n'


def conf_with_include(text, nft_file):
    """nftables.conf text that includes `nft_file`: our marker block replaced in place, or
    appended; every other line stays as it is.  A missing file (None) becomes a minimal one."""
    if text is None:
        text = NEW_CONF_HEAD
    before, block, after = _split_block(text)
    if block is not None:
        return ''.join(before) + include_block(nft_file) + ''.join(after)
    if text and not text.endswith('\n'):
        text += '\n'
    return text + include_block(nft_file)


def conf_without_include(text):
    """nftables.conf text without our marker block (None stays None). A file that then holds
    only what conf_with_include() made of a missing one goes (None): it was ours."""
    if text is None:
        return None
    before, block, after = _split_block(text)
    if block is None:
        return text
    rest = ''.join(before) + ''.join(after)
    return None if rest == NEW_CONF_HEAD else rest


# ---------------------------------------------------------------- the kernel

def _chain_json(name):
    kind, hook, prio, _keyword = CHAIN_SPECS[name]
    return {'family': TABLE_FAMILY, 'table': TABLE_NAME, 'name': name, 'type': kind,
            'hook': hook, 'prio': prio, 'policy': 'accept'}


def _rule_json(rule, handle=None):
    body = {'family': TABLE_FAMILY, 'table': TABLE_NAME, 'chain': rule['chain'],
            'comment': rule['comment'], 'expr': rule_expr(rule)}
    if handle is not None:
        body['handle'] = handle
    return {'rule': body}


def parse_table(document):
    """Our table from `nft -j list table` output: {'exists', 'chains', 'entries'}.

    entries are [{'chain', 'comment', 'handle'}] in chain order (the comment is '' for a
    rule without one); chains maps a chain name to its base chain settings.
    """
    state = {'exists': True, 'chains': {}, 'entries': []}
    for item in document.get('nftables', []):
        if 'chain' in item:
            chain = item['chain']
            state['chains'][chain['name']] = dict(
                (key, chain.get(key)) for key in ('type', 'hook', 'prio', 'policy'))
        elif 'rule' in item:
            rule = item['rule']
            state['entries'].append({'chain': rule['chain'], 'handle': rule['handle'],
                                     'comment': rule.get('comment', '')})
    order = dict((name, index) for index, name in enumerate(CHAIN_ORDER))
    state['entries'].sort(key=lambda entry: order.get(entry['chain'], len(order)))
    return state


def chain_errors(state):
    """Our chains must have the settings we create them with (someone may have changed them)."""
    errors = []
    for name, settings in sorted(state['chains'].items()):
        if name not in CHAIN_SPECS:
            continue
        expected = _chain_json(name)
        if any(settings.get(key) != expected[key] for key in ('type', 'hook', 'prio')):
            errors.append('table %s: chain %s is %r, expected type %s hook %s priority %d; '
                          'delete the table (nft delete table %s) and run again'
                          % (TABLE, name, settings, expected['type'], expected['hook'],
                             expected['prio'], TABLE))
    return errors


def table_batch(state, plan):
    """The JSON commands that turn the table `state` into plan['after'].

    Returns [] when nothing changes.  Without any rule left the table is deleted; a chain
    missing from an existing table is added again.
    """
    table = {'family': TABLE_FAMILY, 'name': TABLE_NAME}
    if not plan['after']:
        return [{'delete': {'table': table}}] if state['exists'] else []
    missing_chains = [name for name in CHAIN_ORDER if name not in state['chains']]
    if not plan['changed'] and state['exists'] and not missing_chains:
        return []
    commands = []
    if not state['exists']:
        commands.append({'add': {'table': table}})
    for name in missing_chains:
        commands.append({'add': {'chain': _chain_json(name)}})
    for entry in plan['delete']:
        commands.append({'delete': {'rule': {'family': TABLE_FAMILY, 'table': TABLE_NAME,
                                             'chain': entry['chain'],
                                             'handle': entry['handle']}}})
    for rule, before in plan['add']:
        if before is not None and 'handle' in before:
            commands.append({'insert': _rule_json(rule, before['handle'])})
        else:
            commands.append({'add': _rule_json(rule)})
    return commands


def foreign_chains(document):
    """Chains of other tables that matter for forwarded guest traffic, from
    `nft -j list chains`.

    Returns {'drop': [{'family', 'table', 'chain', 'docker_user'}] (base chains on the
    forward hook with policy drop), 'iptables_nft': {'ip': [...], 'ip6': [...]}} (which of
    FORWARD and DOCKER-USER exist in the iptables-nft tables `ip filter` / `ip6 filter`).
    docker_user says whether the drop chain's table has a DOCKER-USER chain (Docker's
    place for user rules, jumped to from FORWARD)."""
    drop = []
    iptables_nft = {'ip': [], 'ip6': []}
    for item in document.get('nftables', []):
        chain = item.get('chain')
        if not chain:
            continue
        if chain['family'] == TABLE_FAMILY and chain['table'] == TABLE_NAME:
            continue
        if (chain['family'] in iptables_nft and chain['table'] == 'filter'
                and chain['name'] in ('FORWARD', 'DOCKER-USER')):
            iptables_nft[chain['family']].append(chain['name'])
        if chain.get('hook') == 'forward' and chain.get('policy') == 'drop':
            drop.append({'family': chain['family'], 'table': chain['table'],
                         'chain': chain['name']})
    for chain in drop:
        chain['docker_user'] = (chain['table'] == 'filter'
                                and 'DOCKER-USER' in iptables_nft.get(chain['family'], []))
    for names_found in iptables_nft.values():
        names_found.sort()
    return {'drop': drop, 'iptables_nft': iptables_nft}


class NftBackend:
    """Reads and changes our table with the nft program (JSON in, JSON out)."""

    name = 'nftables'

    def __init__(self, commands):
        self.commands = commands

    def _nft(self):
        return self.commands.require('nft', 'backend nftables')

    def read(self):
        rc, out, err = self.commands.run([self._nft(), '-j', 'list', 'table', TABLE_FAMILY,
                                          TABLE_NAME])
        if rc != 0:
            if 'No such file or directory' in err:
                return {'exists': False, 'chains': {}, 'entries': []}
            raise NetfilterError('nft -j list table %s failed (exit %d): %s'
                                 % (TABLE, rc, err.strip()))
        return parse_table(_loads(out, 'nft -j list table %s' % TABLE))

    def read_foreign_chains(self):
        """Read-only look at the chains of all tables (see foreign_chains)."""
        out = self.commands.run_checked([self._nft(), '-j', 'list', 'chains'],
                                        what='nft -j list chains')
        return foreign_chains(_loads(out, 'nft -j list chains'))

    def apply(self, batch):
        if not batch:
            return
        self.commands.run_checked([self._nft(), '-j', '-f', '-'],
                                  data=json.dumps({'nftables': batch}),
                                  what='nft -j -f - (one batch on table %s)' % TABLE)


def _loads(text, what):
    try:
        return json.loads(text or '{}')
    except ValueError as exc:
        raise NetfilterError('%s printed no JSON: %s' % (what, exc))
