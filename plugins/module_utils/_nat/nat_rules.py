# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NAT rules of the masquerade and port_forward modules, independent of the backend.

Pure functions: module parameters -> desired rules, rule comments <-> rules, and the plan
(the diff between the rules a task owns and the rules the host has).

A rule is a plain dict::

    {'key': 'masquerade 192.168.0.0/24 oif eth0',      # the task that owns it
     'comment': 'tuntap.qemu masquerade 192.168.0.0/24 oif eth0 | nat',
     'chain': 'postrouting',                            # prerouting, output, forward
     'family': 'ipv4',                                  # or 'ipv6'
     'match': [('oifname', 'eth0'), ('saddr', '192.168.0.0/24')],
     'action': ('masquerade',),                         # ('accept',), ('dnat', addr, port)
     'rank': 1}                                         # order inside the chain

The comment is the rule's identity and spells out every parameter of the rule, so a rule
read back from the kernel (nft or iptables) is rebuilt from its comment alone
(rule_from_comment) and rendered again by the backend, with no parsing of rule
expressions.  The part before ' | ' is the key: the task parameters that own the rule
(source network + out interface for masquerade, protocol + host address + port for
port_forward).  A converge adds and deletes only rules whose key the task owns, so any
number of tasks share one table.
"""

from __future__ import annotations

import dataclasses
import re
import typing

from ansible_collections.tuntap.qemu.plugins.module_utils import names

COMMENT_PREFIX = 'tuntap.qemu '
KEY_SEPARATOR = ' | '
# nftables keeps at most 128 bytes of comment (NFTNL_UDATA_COMMENT_MAXLEN); iptables 256.
COMMENT_MAX_BYTES = 128
CHAINS = ('postrouting', 'prerouting', 'output', 'forward')
PROTOCOLS = ('tcp', 'udp')
# The options of port_forward's single form, each mutually exclusive with `forwards`.
PORT_FORWARD_OPTIONS = ('port', 'host_address', 'destination', 'destination_port', 'in_interface',
                        'source')

# Interface names that are safe inside nft strings, iptables arguments and comments.
# nft reads '*' as a wildcard and iptables '+', so neither is accepted.
IFNAME_RULE_CHARS = re.compile(r'^[A-Za-z0-9_.-]+$')

_MASQUERADE_KEY = re.compile(r'^masquerade (\S+) oif (\S+)$')
_MASQUERADE_ROLE = re.compile(r'^(nat|forward out|forward back|forward bridged)$')
_PORT_KEY = re.compile(r'^port_forward (tcp|udp) (\*|\[[0-9A-Fa-f:.]+\]|[0-9.]+):([0-9]+)$')
_DNAT_ROLE = re.compile(r'^dnat (\S+):([0-9]+)(?: iif (\S+))?(?: from (\S+))?$')
_FORWARD_ROLE = re.compile(r'^forward (reply )?(\S+):([0-9]+)$')
_OUTPUT_ROLE = re.compile(r'^output (\S+):([0-9]+)(?: from (\S+))?$')
_HAIRPIN_ROLE = re.compile(r'^hairpin (\S+):([0-9]+) from (\S+)$')
# The host's loopback addresses: the output rules leave connections to them alone (a
# DNATed connection from a loopback source would be a martian on the guest's interface).
LOOPBACK = {'ipv4': '127.0.0.0/8', 'ipv6': '::1'}


# ---------------------------------------------------------------- small helpers

def family_of(address_text):
    return 'ipv6' if ':' in address_text else 'ipv4'


def bracketed(address_text):
    """An address as it stands before ':port' (IPv6 in brackets)."""
    return '[%s]' % address_text if ':' in address_text else address_text


def unbracketed(text):
    return text[1:-1] if text.startswith('[') and text.endswith(']') else text


def key_of(comment):
    """The key of one of our comments ('masquerade 10.0.0.0/24 oif eth0'), else None."""
    if not isinstance(comment, str) or not comment.startswith(COMMENT_PREFIX):
        return None
    return comment[len(COMMENT_PREFIX):].split(KEY_SEPARATOR, 1)[0]


def _rule(key, role, chain, family, match, action, rank=1):
    return {'key': key, 'comment': COMMENT_PREFIX + key + KEY_SEPARATOR + role,
            'chain': chain, 'family': family, 'match': match, 'action': action, 'rank': rank}


# ---------------------------------------------------------------- rule builders

def masquerade_key(network, out_interface):
    return 'masquerade %s oif %s' % (network, out_interface)


def masquerade_rules(network, out_interface, allow_forward=True):
    """The rules of one source network NATed out of one interface.

    nat             postrouting: oifname UPLINK SADDR NET masquerade
    forward out     new and old connections from the subnet out of the uplink
    forward back    replies (established, related) from the uplink into the subnet
    forward bridged guest to guest inside the subnet: with br_netfilter, bridged frames
                    pass the IP forward hook too (the nat rule never matches them, its
                    oifname is the uplink, not the bridge)
    """
    family = family_of(network)
    key = masquerade_key(network, out_interface)
    rules = [_rule(key, 'nat', 'postrouting', family,
                   [('oifname', out_interface), ('saddr', network)], ('masquerade',))]
    if allow_forward:
        rules.extend([
            _rule(key, 'forward out', 'forward', family,
                  [('oifname', out_interface), ('saddr', network)], ('accept',)),
            _rule(key, 'forward back', 'forward', family,
                  [('iifname', out_interface), ('daddr', network),
                   ('ct_state', ('established', 'related'))], ('accept',)),
            _rule(key, 'forward bridged', 'forward', family,
                  [('saddr', network), ('daddr', network)], ('accept',)),
        ])
    return rules


def port_forward_key(protocol, host_address, port):
    host = bracketed(host_address) if host_address else '*'
    return 'port_forward %s %s:%d' % (protocol, host, port)


def port_forward_rules(protocol, host_address, port, destination, destination_port,
                       in_interface=None, sources=None, hairpin_network=None):
    """The rules of one forwarded host port.

    dnat            prerouting: [iifname IF] [SADDR FROM] DADDR HOST|any local address
                    PROTO dport PORT dnat to DEST:DPORT; one rule per source network.  Rules with a host
                    address rank before those without, so the specific one wins.
    output          the same for connections the host itself opens (nat output hook):
                    [SADDR FROM] DADDR HOST|any local address but loopback PROTO dport PORT
                    dnat to DEST:DPORT; one rule per source network.  Not with in_interface
                    (the forward is then scoped to that interface).
    forward         the DNATed connection into the guest (ct status dnat)
    forward reply   the guest's replies (established, related)
    hairpin         postrouting: SADDR NET DADDR DEST PROTO dport DPORT ct status dnat
                    masquerade, with NET the managed subnet DEST lies in (hairpin_network,
                    known only on the host: port_forward_hairpin_rule); a guest of that subnet
                    that connects to the host's port then gets its replies through the host,
                    not straight from its neighbour.  Not with in_interface.
    """
    family = family_of(destination)
    key = port_forward_key(protocol, host_address, port)
    target = '%s:%d' % (bracketed(destination), destination_port)
    action = ('dnat', destination, destination_port)
    rank = 0 if host_address else 1
    rules = []
    outputs = []
    for source in (sources or [None]):
        role = 'dnat ' + target
        match = []
        if in_interface:
            role += ' iif ' + in_interface
            match.append(('iifname', in_interface))
        if source:
            role += ' from ' + source
            match.append(('saddr', source))
        output_match = list(match)
        if host_address:
            match.append(('daddr', host_address))
            output_match.append(('daddr', host_address))
        else:
            # Any address of the host, never traffic that only passes through it.
            match.extend([('nfproto', family), ('daddr_local', True)])
            output_match.extend([('daddr_not', LOOPBACK[family]), ('daddr_local', True)])
        match.append(('dport', (protocol, port)))
        output_match.append(('dport', (protocol, port)))
        rules.append(_rule(key, role, 'prerouting', family, match, action, rank=rank))
        if not in_interface:
            outputs.append(_rule(key, 'output ' + target + (' from ' + source if source else ''),
                                 'output', family, output_match, action, rank=rank))
    rules.extend(outputs)
    rules.extend([
        _rule(key, 'forward ' + target, 'forward', family,
              [('daddr', destination), ('dport', (protocol, destination_port)),
               ('ct_status', 'dnat')], ('accept',)),
        _rule(key, 'forward reply ' + target, 'forward', family,
              [('saddr', destination), ('sport', (protocol, destination_port)),
               ('ct_state', ('established', 'related'))], ('accept',)),
    ])
    if hairpin_network and not in_interface:
        rules.append(port_forward_hairpin_rule(protocol, host_address, port, destination,
                                               destination_port, hairpin_network))
    return rules


def port_forward_hairpin_rule(protocol, host_address, port, destination, destination_port,
                              network):
    """The hairpin rule of a forward (see port_forward_rules) for the subnet `network`."""
    key = port_forward_key(protocol, host_address, port)
    return _rule(key, 'hairpin %s:%d from %s' % (bracketed(destination), destination_port, network),
                 'postrouting', family_of(destination),
                 [('saddr', network), ('daddr', destination),
                  ('dport', (protocol, destination_port)), ('ct_status', 'dnat')],
                 ('masquerade',))


def rule_from_comment(comment):
    """Rebuild the rule that carries `comment`; None for a comment we did not write."""
    key = key_of(comment)
    if key is None or KEY_SEPARATOR not in comment:
        return None
    role = comment.split(KEY_SEPARATOR, 1)[1]
    candidates = []
    try:
        candidates = _candidates(key, role)
    except (names.netaddr.AddrFormatError, ValueError, TypeError):
        candidates = []
    for rule in candidates:
        if rule['comment'] == comment:
            return rule
    return None


def _candidates(key, role):
    found = _MASQUERADE_KEY.match(key)
    if found and _MASQUERADE_ROLE.match(role):
        network, out_interface = found.groups()
        if _network_text(network) != network or not IFNAME_RULE_CHARS.match(out_interface):
            return []
        return masquerade_rules(network, out_interface, allow_forward=True)
    found = _PORT_KEY.match(key)
    if not found:
        return []
    protocol, host, port = found.groups()
    host_address = None if host == '*' else unbracketed(host)
    if host_address is not None and _address_text(host_address) != host_address:
        return []
    dnat = _DNAT_ROLE.match(role)
    output = _OUTPUT_ROLE.match(role)
    forward = _FORWARD_ROLE.match(role)
    hairpin = _HAIRPIN_ROLE.match(role)
    in_interface, source, network = None, None, None
    if dnat:
        destination, destination_port, in_interface, source = dnat.groups()
        if in_interface and not IFNAME_RULE_CHARS.match(in_interface):
            return []
    elif output:
        destination, destination_port, source = output.groups()
    elif forward:
        destination, destination_port = forward.group(2), forward.group(3)
    elif hairpin:
        destination, destination_port, network = hairpin.groups()
        if _network_text(network) != network:
            return []
    else:
        return []
    if source and _network_text(source) != source:
        return []
    destination = unbracketed(destination)
    if _address_text(destination) != destination:
        return []
    return port_forward_rules(protocol, host_address, int(port), destination,
                              int(destination_port), in_interface,
                              [source] if source else None, network)


def _network_text(text):
    net = names.netaddr.IPNetwork(text)
    return str(net.cidr) if '/' in text else None


def _address_text(text):
    return str(names.netaddr.IPAddress(text))


# ---------------------------------------------------------------- requests

def _interface(path, value, errors, required=True):
    if value in (None, ''):
        if required:
            errors.append('%s: an interface name is required' % path)
        return None
    error = names.ifname_error(path, value)
    if error:
        errors.append(error)
        return None
    if not IFNAME_RULE_CHARS.match(value):
        errors.append('%s: interface name %r is not supported in NAT rules; use letters, '
                      'digits and . _ - only (no wildcards)' % (path, value))
        return None
    return value


def _networks(path, values, errors):
    """Canonical CIDR texts of a list of networks (host bits set is an error)."""
    found = []
    for index, value in enumerate(values or []):
        item = '%s[%d]' % (path, index)
        if isinstance(value, str) and '/' not in value:
            try:
                names.netaddr.IPAddress(value)
                errors.append('%s: %r is a host address, not a network; write it with a '
                              'prefix length such as %s/%d' % (
                                  item, value, value, 128 if ':' in value else 32))
                continue
            except (names.netaddr.AddrFormatError, ValueError, TypeError):
                pass
        net, error = names.parse_network(item, value)
        if error:
            errors.append(error)
            continue
        found.append(str(net.cidr))
    errors.extend(names.duplicate_errors(path, found))
    return found


def _address(path, value, errors):
    """Canonical text of a single host address (no prefix)."""
    if not isinstance(value, str) or '/' in value:
        errors.append('%s: %r is not a single IP address (no prefix length)' % (path, value))
        return None
    try:
        address = names.netaddr.IPAddress(value)
    except (names.netaddr.AddrFormatError, ValueError, TypeError):
        errors.append('%s: %r is not a valid IP address' % (path, value))
        return None
    if address.is_multicast() or address.is_loopback() or int(address) == 0:
        errors.append('%s: %r is not a unicast host address' % (path, value))
        return None
    return str(address)


def _port(path, value, errors):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        errors.append('%s: port %r is outside 1-65535' % (path, value))
        return None
    return value


def _check_comment_lengths(rules, errors):
    errors.extend(comment_length_errors(rules))


def comment_length_errors(rules):
    """One error per rule whose comment nftables would not keep whole."""
    errors = []
    for rule in rules:
        size = len(rule['comment'].encode('utf-8'))
        if size > COMMENT_MAX_BYTES:
            errors.append('the rule comment %r is %d bytes long; nftables keeps at most %d. '
                          'Use shorter interface names or fewer optional matches'
                          % (rule['comment'], size, COMMENT_MAX_BYTES))
    return errors


def _option(prefix, name):
    """The path of an option in the error messages: 'source', 'rules[2].source'."""
    return '%s.%s' % (prefix, name) if prefix else name


class KindKeys:
    """Every key of one kind ('masquerade', 'port_forward'): what a call of the list form
    owns, so that its plan removes our rules of that kind that the list does not hold.
    Used like the set of keys of a single-rule call (`key in keys`)."""

    def __init__(self, kind):
        self.kind = kind

    def __contains__(self, key):
        return isinstance(key, str) and key.split(' ', 1)[0] == self.kind

    def __repr__(self):
        return 'KindKeys(%r)' % self.kind


def _masquerade_entry(prefix, entry, allow_forward, present, errors):
    """(keys, rules, interfaces) of one source list on one out interface."""
    networks = _networks(_option(prefix, 'source'), entry['source'], errors)
    if not entry['source']:
        errors.append('%s: give at least one network, for example 192.168.0.0/24'
                      % _option(prefix, 'source'))
    out_interface = _interface(_option(prefix, 'out_interface'), entry['out_interface'], errors)
    if errors:
        return [], [], []
    keys, rules = [], []
    for network in networks:
        keys.append(masquerade_key(network, out_interface))
        if present:
            rules.extend(masquerade_rules(network, out_interface, allow_forward))
    return keys, rules, [(_option(prefix, 'out_interface'), out_interface)]


def masquerade_request(params):
    """Validate masquerade parameters (the single-rule form, or the list form `rules`).

    Returns {'keys': set (KindKeys for the list form), 'rules': [desired rules],
    'interfaces': [(option, name) of interfaces that must exist],
    'networks': [...], 'errors': [...]}.  'rules' is empty for state=absent.
    """
    if params.get('rules') is not None:
        return masquerade_list_request(params)
    errors = []
    request = {'keys': set(), 'rules': [], 'interfaces': [], 'networks': [],
               'errors': errors}
    keys, rules, interfaces = _masquerade_entry('', params, params['allow_forward'],
                                                params['state'] == 'present', errors)
    if errors:
        return request
    request.update(keys=set(keys), rules=rules, interfaces=interfaces,
                   networks=[key.split(' ')[1] for key in keys])
    _check_comment_lengths(request['rules'], errors)
    return request


def _list_state_errors(params, option):
    if params['state'] == 'present':
        return []
    return ['state: %s lists every rule of its kind on the host, so state=absent does not go '
            'with it; %s: [] removes them all' % (option, option)]


def masquerade_list_request(params):
    """The list form: `rules` are ALL our masquerade rules on the host (KindKeys)."""
    errors = _list_state_errors(params, 'rules')
    request = {'keys': KindKeys('masquerade'), 'rules': [], 'interfaces': [], 'networks': [],
               'errors': errors}
    owner = {}
    for index, entry in enumerate(params['rules']):
        prefix = 'rules[%d]' % index
        entry_errors = []
        allow_forward = entry.get('allow_forward')
        if allow_forward is None:
            allow_forward = params['allow_forward']
        keys, rules, interfaces = _masquerade_entry(prefix, entry, allow_forward, True,
                                                    entry_errors)
        for key in keys:
            if key in owner:
                entry_errors.append('%s: %s is in %s already' % (prefix, key, owner[key]))
            owner.setdefault(key, prefix)
        errors.extend(entry_errors)
        request['rules'].extend(rules)
        for interface in interfaces:
            if interface[1] not in [name for _option_path, name in request['interfaces']]:
                request['interfaces'].append(interface)
        request['networks'].extend(key.split(' ')[1] for key in keys)
    if not errors:
        _check_comment_lengths(request['rules'], errors)
    return request


@dataclasses.dataclass(frozen=True)
class ForwardSpec:
    """One validated forward of a request: what its hairpin rule needs once the host tells
    which managed subnet the destination lies in (option: the destination's option path)."""
    option: str
    protocol: str
    host_address: typing.Optional[str]
    port: int
    destination: str
    destination_port: int
    in_interface: typing.Optional[str]

    def hairpin_rule(self, network):
        """The hairpin rule for `network`; None when the forward is scoped to in_interface."""
        if self.in_interface:
            return None
        return port_forward_hairpin_rule(self.protocol, self.host_address, self.port,
                                         self.destination, self.destination_port, network)


def _port_forward_entry(prefix, entry, present, errors):
    """(key, rules, interfaces, destination, ForwardSpec or None) of one forwarded port, or
    None on errors."""
    protocol = entry['protocol']
    port = _port(_option(prefix, 'port'), entry['port'], errors)
    host_address = None
    if entry.get('host_address'):
        host_address = _address(_option(prefix, 'host_address'), entry['host_address'], errors)
    destination = None
    if present and not entry.get('destination'):
        errors.append('%s: the guest address is required with state=present'
                      % _option(prefix, 'destination'))
    elif entry.get('destination'):
        destination = _address(_option(prefix, 'destination'), entry['destination'], errors)
    destination_port = _port(_option(prefix, 'destination_port'), entry.get('destination_port'),
                             errors)
    in_interface = _interface(_option(prefix, 'in_interface'), entry.get('in_interface'), errors,
                              required=False)
    sources = _networks(_option(prefix, 'source'), entry.get('source'), errors)
    if errors:
        return None
    if destination_port is None:
        destination_port = port
    family = family_of(destination) if destination else None
    if family and host_address and family_of(host_address) != family:
        errors.append('%s: %s and destination %s are of different address families'
                      % (_option(prefix, 'host_address'), host_address, destination))
    for index, source in enumerate(sources):
        if family and family_of(source) != family:
            errors.append('%s[%d]: %s is not of the address family of destination %s'
                          % (_option(prefix, 'source'), index, source, destination))
    if errors:
        return None
    rules, spec = [], None
    if present:
        rules = port_forward_rules(protocol, host_address, port, destination,
                                   destination_port, in_interface, sources)
        spec = ForwardSpec(option=_option(prefix, 'destination'), protocol=protocol,
                           host_address=host_address, port=port, destination=destination,
                           destination_port=destination_port, in_interface=in_interface)
    interfaces = [(_option(prefix, 'in_interface'), in_interface)] if in_interface else []
    return port_forward_key(protocol, host_address, port), rules, interfaces, destination, spec


def port_forward_request(params):
    """Validate port_forward parameters (single-rule form, or the list form `forwards`);
    same result shape as masquerade_request, and 'destinations':
    [(option, guest address, in_interface)] of the forwards to check ('destination' is the
    single form's guest address, None for state=absent without one), and 'forwards':
    [ForwardSpec] of the present forwards, whose hairpin rules the host completes
    (nat_module.complete_port_forwards).
    """
    if params.get('forwards') is not None:
        return port_forward_list_request(params)
    errors = []
    request = {'keys': set(), 'rules': [], 'interfaces': [], 'destination': None,
               'destinations': [], 'forwards': [], 'errors': errors}
    found = _port_forward_entry('', params, params['state'] == 'present', errors)
    if found is None:
        return request
    key, rules, interfaces, destination, spec = found
    request.update(keys={key}, rules=rules, interfaces=interfaces, destination=destination,
                   forwards=[spec] if spec else [])
    if destination is not None:
        request['destinations'] = [('destination', destination, params.get('in_interface'))]
    _check_comment_lengths(request['rules'], errors)
    return request


def port_forward_list_request(params):
    """The list form: `forwards` are ALL our port forwards on the host (KindKeys).  An
    entry without protocol takes the module's."""
    errors = _list_state_errors(params, 'forwards')
    request = {'keys': KindKeys('port_forward'), 'rules': [], 'interfaces': [],
               'destination': None, 'destinations': [], 'forwards': [], 'errors': errors}
    owner = {}
    for index, entry in enumerate(params['forwards']):
        prefix = 'forwards[%d]' % index
        entry = dict(entry, protocol=entry.get('protocol') or params['protocol'])
        entry_errors = []
        found = _port_forward_entry(prefix, entry, True, entry_errors)
        if found is not None:
            key, rules, interfaces, destination, spec = found
            request['forwards'].append(spec)
            if key in owner:
                entry_errors.append('%s: %s is in %s already' % (prefix, key, owner[key]))
            owner.setdefault(key, prefix)
            request['rules'].extend(rules)
            request['interfaces'].extend(interfaces)
            request['destinations'].append((_option(prefix, 'destination'), destination,
                                            entry.get('in_interface')))
        errors.extend(entry_errors)
    if not errors:
        _check_comment_lengths(request['rules'], errors)
    return request


# ---------------------------------------------------------------- the plan

def plan_rules(current, keys, desired):
    """Diff of the rules of the task's keys.

    current   the host's rules of our comment prefix, in chain order:
              [{'chain', 'comment', 'handle'...}] (backend entries; any extra fields kept)
    keys      the keys this task owns
    desired   the task's desired rules (rules of other keys are never in it)

    Returns {'delete': [current entries], 'add': [(rule, before_entry_or_None)],
    'after': [entries and rules in the resulting chain order], 'changed': bool}.
    An added rule goes before the first kept entry of its chain with a higher rank
    (before_entry), else at the end of its chain (chains in CHAINS order).
    """
    wanted = dict((rule['comment'], rule) for rule in desired)
    kept, delete, seen = [], [], set()
    for entry in current:
        key = key_of(entry['comment'])
        if key in keys and (entry['comment'] not in wanted or entry['comment'] in seen
                            or wanted[entry['comment']]['chain'] != entry['chain']):
            delete.append(entry)
            continue
        seen.add(entry['comment'])
        kept.append(entry)
    after = list(kept)
    add = []
    # Lower ranks first: then the first entry of a higher rank is always one that exists
    # on the host already, which is what a backend can position against.
    for rule in sorted(desired, key=lambda item: item['rank']):
        if rule['comment'] in seen:
            continue
        seen.add(rule['comment'])
        before = None
        position = _end_of_chain(after, rule['chain'])
        for index, entry in enumerate(after):
            if entry['chain'] == rule['chain'] and entry_rank(entry) > rule['rank']:
                before = entry
                position = index
                break
        after.insert(position, rule)
        add.append((rule, before))
    return {'delete': delete, 'add': add, 'after': after,
            'changed': bool(delete or add)}


def _end_of_chain(entries, chain):
    """Where a rule appended to `chain` goes in `entries` (which keep chains together)."""
    order = dict((name, index) for index, name in enumerate(CHAINS))
    last = None
    for index, entry in enumerate(entries):
        if entry['chain'] == chain:
            last = index
    if last is not None:
        return last + 1
    for index, entry in enumerate(entries):
        if order.get(entry['chain'], len(order)) > order[chain]:
            return index
    return len(entries)


def entry_rank(entry):
    if 'rank' in entry:
        return entry['rank']
    rule = rule_from_comment(entry['comment'])
    return rule['rank'] if rule else 1


def rules_of_entries(entries):
    """(rules rebuilt from the entries' comments, comments that could not be rebuilt)."""
    rules, unknown = [], []
    for entry in entries:
        if 'match' in entry:
            rules.append(entry)
            continue
        rule = rule_from_comment(entry['comment'])
        if rule is None or rule['chain'] != entry['chain']:
            unknown.append(entry['comment'])
        else:
            rules.append(rule)
    return rules, unknown


def masqueraded_networks(rules):
    """Source networks of the masquerade (nat) rules among `rules` (not port_forward's
    hairpin rules, which masquerade in postrouting too)."""
    found = []
    for rule in rules:
        if (rule['chain'] == 'postrouting' and rule['action'] == ('masquerade',)
                and rule['key'].startswith('masquerade ')):
            network = dict(rule['match'])['saddr']
            if network not in found:
                found.append(network)
    return found


def forward_rules(rules):
    return [rule for rule in rules if rule['chain'] == 'forward']
