# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The steps shared by the masquerade and port_forward modules, run by module_runner.

parse: validate (pure, nat_rules) -> read: the interfaces, the backend and our rules, once
-> plan: the rules (nat_rules), the foreign chains and the persistent files from the same
rules, as typed records (RuntimePlan, ForeignPlan, FilePlan, BootUnitPlan in a NatPlan);
every error refuses, nothing touched -> apply (unless check mode), a function of the plan:
one nft batch (or the iptables commands), the foreign accept rules, then the files (with
the nftables backend on a systemd host also our boot unit, nft_boot_unit, and its enable
link) -> result.

The request owns a set of keys (nat_rules): those of its rules in the single-rule form, every
key of its kind in the list form (nat_rules.KindKeys).  The backend not chosen is read too,
when its program is there, and the rules of those keys that it still holds (a switch of
backend) are planned away with its persistent files (OtherBackendPlan).

    module_runner.run(module, NatSteps(nat_rules.masquerade_request))
"""

from __future__ import annotations

import dataclasses
import os
import socket
import typing

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.tuntap.qemu.plugins.module_utils import files, module_runner, names
from ansible_collections.tuntap.qemu.plugins.module_utils._links import netlink, reading, rtnl_snapshot
from ansible_collections.tuntap.qemu.plugins.module_utils._nat import iptables, nat_rules, nft, nft_boot_unit
from ansible_collections.tuntap.qemu.plugins.module_utils._nat.netfilter_commands import (
    Commands, DEFAULT_COMMANDS, NetfilterError)

BACKENDS = ['auto', 'nftables', 'iptables']


def common_argument_spec():
    """Options both modules share (documented in the tuntap.qemu.nat doc fragment)."""
    return dict(
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        backend=dict(type='str', choices=BACKENDS, default='auto'),
        foreign_forward=dict(type='str', choices=['accept', 'ignore'], default='ignore'),
        allow_missing_interface=dict(type='bool', default=False),
        persistent=dict(type='bool', default=True),
        nft_file=dict(type='path', default=nft.DEFAULT_NFT_FILE),
        nftables_conf=dict(type='path', default=nft.DEFAULT_NFTABLES_CONF),
        hook_file=dict(type='path', default=iptables.DEFAULT_HOOK_FILE),
        boot_unit=dict(type='str', choices=list(nft_boot_unit.MODES), default='auto'),
        systemd_unit_dir=dict(type='path', default=nft_boot_unit.DEFAULT_UNIT_DIR),
        backup=dict(type='bool', default=False),
        commands=dict(type='dict', options=dict(
            (name, dict(type='str', default=value)) for name, value in DEFAULT_COMMANDS.items())),
    )


# ---------------------------------------------------------------- host state

def missing_interface_errors(params, request):
    """Interfaces the rules name must exist, unless allow_missing_interface."""
    if params['state'] != 'present' or params['allow_missing_interface']:
        return []
    errors = []
    for option, name in request['interfaces']:
        try:
            socket.if_nametoindex(name)
        except OSError:
            errors.append('%s: interface %r does not exist on this host; set '
                          'allow_missing_interface=true if it appears later (the rules '
                          'match it by name)' % (option, name))
    return errors


def guest_side_networks(exclude):
    """[(network, ifname)] of the addresses on interfaces that are not uplinks.

    Uplinks are `exclude` (the in_interface), loopback and every interface that carries a
    default route (IPv4 or IPv6, main table).  One netlink dump of links and addresses,
    one of routes per family."""
    if not netlink.available():
        raise NetfilterError(missing_required_lib(module_runner.PYROUTE2.description))
    ipr = netlink.open_netlink()
    try:
        snapshot = reading.read_snapshot()
        by_index = dict((record['ifindex'], name) for name, record in snapshot.items())
        uplinks = set(name for name in exclude if name)
        for family in (socket.AF_INET, socket.AF_INET6):
            routes = rtnl_snapshot.retry_interrupted(
                lambda family=family: tuple(ipr.get_default_routes(family=family)),
                'RTM_GETROUTE dump', netlink.dump_interrupted())
            for route in routes:
                oif = route.get_attr('RTA_OIF')
                if oif in by_index:
                    uplinks.add(by_index[oif])
                for hop in route.get_attr('RTA_MULTIPATH') or []:
                    if hop.get('oif') in by_index:
                        uplinks.add(by_index[hop['oif']])
    finally:
        ipr.close()
    networks = []
    for name, record in sorted(snapshot.items()):
        if name in uplinks or name == 'lo':
            continue
        for address in record['addresses']:
            network = str(names.netaddr.IPNetwork(address).cidr)
            if (network, name) not in networks:
                networks.append((network, name))
    return networks


def destination_errors(destination, masqueraded, guest_networks, option='destination'):
    """Pure: the port_forward destination (the option `option`) must lie in a managed subnet.

    masqueraded     source networks of the masquerade rules in our table
    guest_networks  [(network, ifname)] on the host's non-uplink interfaces
    """
    address = names.netaddr.IPAddress(destination)
    for network in masqueraded:
        if address in names.netaddr.IPNetwork(network):
            return []
    for network, _ifname in guest_networks:
        if address in names.netaddr.IPNetwork(network):
            return []
    known = ['%s (masqueraded)' % network for network in masqueraded]
    known += ['%s (on %s)' % (network, ifname) for network, ifname in guest_networks]
    return ['%s: %s is outside every managed subnet (%s); forwarding a host port '
            'there would send LAN traffic on to another network. Set '
            'allow_unmanaged_destination=true to forward there anyway'
            % (option, destination, ', '.join(known) or 'none found')]


def port_forward_request(params):
    """nat_rules.port_forward_request, after the check that the argument spec's required_if
    made before the list form (a list has no top-level destination): the same message."""
    if (params.get('forwards') is None and params['state'] == 'present'
            and params.get('destination') is None):
        message = 'state is present but all of the following are missing: destination'
        return {'keys': set(), 'rules': [], 'interfaces': [], 'destination': None,
                'destinations': [], 'forwards': [], 'errors': [message]}
    return nat_rules.port_forward_request(params)


def managed_network(destination, masqueraded, guest_networks):
    """Pure: the managed subnet `destination` lies in - the smallest masqueraded network that
    holds it, else the smallest of the guest-side networks [(network, ifname)]; None."""
    address = names.netaddr.IPAddress(destination)
    for networks in (list(masqueraded), [network for network, _ifname in guest_networks]):
        holding = [names.netaddr.IPNetwork(network) for network in networks
                   if address in names.netaddr.IPNetwork(network)]
        if holding:
            return str(max(holding, key=lambda network: network.prefixlen).cidr)
    return None


def complete_port_forwards(params, request, current_rules):
    """port_forward's step on the host, before the plan: (hairpin rules, errors).

    Each destination must lie in a managed subnet: a network masqueraded in our rules
    (`current_rules`, which port_forward does not change), else (only when none holds it)
    a guest-side network of the host (read once per in_interface).  Each forward without
    in_interface gets its hairpin rule for that subnet; with allow_unmanaged_destination a
    destination outside every managed subnet gets none (there is no subnet to name)."""
    if params['state'] != 'present':
        return [], []
    allow_unmanaged = params['allow_unmanaged_destination']
    masqueraded = nat_rules.masqueraded_networks(current_rules)
    rules, errors, guest_networks = [], [], {}
    for spec in request['forwards']:
        network = managed_network(spec.destination, masqueraded, [])
        if network is None and not (allow_unmanaged and spec.in_interface):
            if allow_unmanaged and not netlink.available():
                continue
            if spec.in_interface not in guest_networks:
                guest_networks[spec.in_interface] = guest_side_networks([spec.in_interface])
            network = managed_network(spec.destination, [], guest_networks[spec.in_interface])
            if network is None and not allow_unmanaged:
                errors.extend(destination_errors(spec.destination, masqueraded,
                                                 guest_networks[spec.in_interface], spec.option))
        rule = spec.hairpin_rule(network) if network else None
        if rule is not None:
            rules.append(rule)
    errors.extend(nat_rules.comment_length_errors(rules))
    return rules, errors


# ---------------------------------------------------------------- the backend

def choose_backend(requested, commands, state_of_nft):
    """(backend name, reason).  state_of_nft() reads our nft table (called at most once)."""
    if requested != 'auto':
        return requested, 'backend=%s' % requested
    has_nft = commands.find('nft') is not None
    has_iptables = commands.find('iptables') is not None
    if not has_nft and not has_iptables:
        raise NetfilterError(
            'backend auto: neither nft nor iptables was found; install the Debian package '
            'nftables (or iptables for the iptables backend)')
    if not has_nft:
        return 'iptables', 'nft is not installed'
    if state_of_nft()['exists']:
        return 'nftables', 'table %s exists' % nft.TABLE
    if has_iptables:
        rc, out, err = commands.run([commands.find('iptables'), '--version'])
        if rc == 0 and '(legacy)' in out + err:
            save = commands.sibling('iptables', '-save')
            if save is not None:
                out = commands.run_checked([save], what=save)
                if iptables.legacy_in_use(out):
                    return 'iptables', ('%s is iptables-legacy and its tables hold rules'
                                        % commands.names['iptables'])
    return 'nftables', 'the host has no legacy iptables rules'


# ---------------------------------------------------------------- foreign chains

def foreign_targets(drop_chains, families):
    """Where scoped accept rules go for each family: {'ipv4': ('ip', 'DOCKER-USER'), ...}.

    Only the iptables-nft chain `FORWARD` of table `ip filter` / `ip6 filter` is handled;
    its DOCKER-USER chain is preferred when it exists."""
    targets = {}
    for family in families:
        nft_family = iptables.NFT_FAMILIES[family]
        for chain in drop_chains:
            where = (chain['family'], chain['table'], chain['chain'])
            if where == (nft_family, 'filter', 'FORWARD'):
                targets[family] = (nft_family, iptables.DOCKER_USER if chain['docker_user']
                                   else 'FORWARD')
    return targets


def foreign_warnings(drop_chains, families, handled, option_value):
    """One warning per drop chain that will still drop the guests' forwarded traffic."""
    warnings = []
    wanted = set(iptables.NFT_FAMILIES[family] for family in families)
    for chain in drop_chains:
        if chain['family'] not in wanted and chain['family'] not in ('inet', 'bridge'):
            continue
        if (chain['family'], chain['table'], chain['chain']) in handled:
            continue
        where = 'table %s %s chain %s' % (chain['family'], chain['table'], chain['chain'])
        if option_value == 'ignore' and chain['table'] == 'filter' and chain['chain'] == 'FORWARD':
            warnings.append(
                '%s has policy drop, so forwarded guest traffic is dropped there whatever our '
                'table accepts; set foreign_forward=accept to insert scoped accept rules '
                '(iptables-nft, %s if it exists) or allow the traffic in that table yourself'
                % (where, iptables.DOCKER_USER))
        else:
            warnings.append(
                '%s has policy drop, so forwarded guest traffic is dropped there whatever our '
                'table accepts; foreign_forward only handles the iptables-nft chains '
                'ip/ip6 filter FORWARD, so allow the traffic in that table yourself' % where)
    return warnings


def plan_foreign(targets, desired_forward, candidates, present):
    """Pure: what to insert and delete in the foreign chains.

    targets          {family: (nft_family, chain)} for families to accept in
    desired_forward  the task's desired forward rules
    candidates       {(nft_family, chain): [rules of the task that may be there]}
    present          set of (nft_family, chain, comment) found by -C
    Returns {'insert': [(nft_family, chain, rule)], 'delete': [...], 'after': [...]}.
    """
    want = set()
    insert, delete, after = [], [], []
    for rule in desired_forward:
        target = targets.get(rule['family'])
        if target is None:
            continue
        want.add((target[0], target[1], rule['comment']))
        after.append((target[0], target[1], rule))
        if (target[0], target[1], rule['comment']) not in present:
            insert.append((target[0], target[1], rule))
    for (nft_family, chain), rules in sorted(candidates.items()):
        for rule in rules:
            ident = (nft_family, chain, rule['comment'])
            if ident in present and ident not in want:
                delete.append((nft_family, chain, rule))
    return {'insert': insert, 'delete': delete, 'after': after}


# ---------------------------------------------------------------- the plan records

@dataclasses.dataclass(frozen=True)
class HostState:
    """What read() found: the programs, the chosen backend and its state of our rules."""
    commands: typing.Any
    backend: str
    reason: str
    state: dict
    nft_reader: typing.Any
    other_state: typing.Optional[dict] = None
    iptables_is_nft: bool = False


OTHER_BACKEND = {'nftables': 'iptables', 'iptables': 'nftables'}


@dataclasses.dataclass(frozen=True)
class RuntimePlan:
    """The running rules of one backend: before and after, and how to get there.

    batch     nftables: the JSON commands of one `nft -j -f -` ([] when nothing changes)
    commands  iptables: one argv list per rule deleted or added
    lines     {comment: the rule in the backend's syntax} of the rules after
    before_lines   the same of the rules before
    """
    backend: str
    before_rules: list
    after_rules: list
    diff: dict
    lines: dict
    changed: bool
    before_lines: dict = dataclasses.field(default_factory=dict)
    batch: list = dataclasses.field(default_factory=list)
    commands: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class ForeignPlan:
    """Accept rules in iptables-nft's forward chains: [(nft_family, chain, rule)]; present
    is the set of (nft_family, chain, comment) found there before."""
    insert: list = dataclasses.field(default_factory=list)
    delete: list = dataclasses.field(default_factory=list)
    after: list = dataclasses.field(default_factory=list)
    present: frozenset = frozenset()

    @property
    def changed(self):
        return bool(self.insert or self.delete)

    def before(self):
        """The foreign rules of the task before the change."""
        known = dict(((f, c, rule['comment']), (f, c, rule))
                     for f, c, rule in self.after + self.delete)
        return [known[ident] for ident in self.present if ident in known]


@dataclasses.dataclass(frozen=True)
class FilePlan:
    """One persistent file (kind 'file' or 'unit') or the unit's enable link ('link': before
    and after are symlink targets); after None removes it; mode None keeps the file's."""
    path: str
    before: typing.Optional[str]
    after: typing.Optional[str]
    changed: bool
    mode: typing.Optional[int]
    kind: str = 'file'

    def diff(self):
        if self.kind == 'link':
            return nft_boot_unit.link_diff(dataclasses.asdict(self))
        return files.text_diff(self.path, self.before, self.after)

    def report(self):
        return {'path': self.path, 'changed': self.changed, 'exists': self.after is not None}


@dataclasses.dataclass(frozen=True)
class BootUnitPlan:
    """Our boot unit (nft_boot_unit): the mode chosen and, where a live systemd runs the
    unit (systemctl set), whether it is active before and after."""
    mode: str
    reason: str
    path: typing.Optional[str] = None
    enabled: typing.Optional[bool] = None
    systemctl: typing.Optional[str] = None
    active_before: bool = False
    active_after: bool = False

    @property
    def activity_changed(self):
        return self.systemctl is not None and self.active_before != self.active_after

    def report(self):
        report = {'mode': self.mode, 'reason': self.reason}
        if self.path is not None:
            report.update(path=self.path, enabled=self.enabled)
        if self.systemctl is not None:
            report['active'] = self.active_after
        return report

    def diff(self):
        header = '%s (systemd)' % nft_boot_unit.UNIT_NAME
        return {'before_header': header, 'after_header': header,
                'before': 'active\n' if self.active_before else 'inactive\n',
                'after': 'active\n' if self.active_after else 'inactive\n'}


@dataclasses.dataclass(frozen=True)
class PersistencePlan:
    """The persistent files of one backend, in the order they are written, and the boot
    unit (nftables backend, persistent=true)."""
    files: list = dataclasses.field(default_factory=list)
    boot_unit: typing.Optional[BootUnitPlan] = None

    @property
    def changed(self):
        return (any(item.changed for item in self.files)
                or bool(self.boot_unit and self.boot_unit.activity_changed))


@dataclasses.dataclass(frozen=True)
class OtherBackendPlan:
    """The rules of this call that the backend not chosen holds (written by it before a
    switch of backend), removed at runtime and from its persistent files."""
    runtime: RuntimePlan
    persistence: PersistencePlan

    @property
    def changed(self):
        return self.runtime.changed or self.persistence.changed

    def removed(self):
        """The removed rules in that backend's syntax."""
        after = set(rule['comment'] for rule in self.runtime.after_rules)
        return [line for comment, line in sorted(self.runtime.before_lines.items())
                if comment not in after]

    def report(self):
        return {'backend': self.runtime.backend, 'changed': self.changed,
                'removed': self.removed(),
                'persistent': [item.report() for item in self.persistence.files]}


@dataclasses.dataclass(frozen=True)
class NatPlan:
    backend: str
    reason: str
    runtime: RuntimePlan
    foreign: ForeignPlan
    persistence: PersistencePlan
    warnings: list
    other: typing.Optional[OtherBackendPlan] = None

    @property
    def changed(self):
        return (self.runtime.changed or self.foreign.changed or self.persistence.changed
                or bool(self.other and self.other.changed))


# ---------------------------------------------------------------- systemd

class LiveSystemd:
    """systemctl when the unit folder is that of a running systemd whose network namespace
    this is (the unit can then be reloaded, read and started); else None.  Looked up once."""

    def __init__(self, module, commands, unit_dir, warnings):
        self.module = module
        self.commands = commands
        self.unit_dir = unit_dir
        self.warnings = warnings
        self._found = False
        self._systemctl = None

    def systemctl(self):
        if not self._found:
            self._systemctl = self._find()
            self._found = True
        return self._systemctl

    def _find(self):
        if (os.path.realpath(self.unit_dir) != nft_boot_unit.DEFAULT_UNIT_DIR
                or not nft_boot_unit.systemd_booted()
                or nft_boot_unit.same_network_namespace_as_init() is not True):
            return None
        systemctl = self.module.get_bin_path('systemctl', required=False)
        if systemctl is None:
            self.warnings.append('systemctl was not found, although systemd is PID 1: the unit '
                                 '%s is in place for the next boot' % nft_boot_unit.UNIT_NAME)
        return systemctl

    def run(self, systemctl, verb):
        argv = [systemctl, verb] + ([] if verb == 'daemon-reload' else [nft_boot_unit.UNIT_NAME])
        rc, _out, err = self.commands.run(argv)
        if rc != 0:
            raise NetfilterError('%s failed (exit %d): %s' % (' '.join(argv), rc, err.strip()))


# ---------------------------------------------------------------- planning

class NftReader:
    """Our nft table, read at most once (backend=auto may read it to choose)."""

    def __init__(self, commands):
        self.commands = commands
        self._state = None

    def read(self):
        if self._state is None:
            self._state = nft.NftBackend(self.commands).read()
        return self._state


def families_of(rules):
    return sorted(set(rule['family'] for rule in rules))


def plan_nft_runtime(state, keys, desired, warnings):
    """RuntimePlan of the nftables backend (pure: `state` is what NftBackend.read() found)."""
    plan = nat_rules.plan_rules(state['entries'], keys, desired)
    batch = nft.table_batch(state, plan)
    before_rules, _unknown = nat_rules.rules_of_entries(state['entries'])
    after_rules, unknown = nat_rules.rules_of_entries(plan['after'])
    for comment in unknown:
        warnings.append('table %s holds a rule that tuntap.qemu did not write '
                        '(comment %r); it stays, but is not in the persistent file'
                        % (nft.TABLE, comment))
    return RuntimePlan(
        backend='nftables', before_rules=before_rules, after_rules=after_rules,
        changed=bool(batch), batch=batch,
        diff={'before_header': 'nft table %s (runtime)' % nft.TABLE,
              'after_header': 'nft table %s (runtime)' % nft.TABLE,
              'before': nft.render_table(before_rules),
              'after': nft.render_table(after_rules)},
        lines=dict((rule['comment'], nft.rule_statement(rule)) for rule in after_rules),
        before_lines=dict((rule['comment'], nft.rule_statement(rule)) for rule in before_rules))


def plan_iptables_runtime(backend, state, keys, desired, warnings):
    """RuntimePlan of the iptables backend; `backend` renders the command lines."""
    plan = nat_rules.plan_rules(state['entries'], keys, desired)
    # iptables lists inserted rules in reverse: report them in an order of their own.
    before_rules, _unknown = nat_rules.rules_of_entries(state['entries'])
    before_rules = iptables.sorted_rules(before_rules)
    after_rules, unknown = nat_rules.rules_of_entries(plan['after'])
    after_rules = iptables.sorted_rules(after_rules)
    for comment in unknown:
        warnings.append('iptables holds a rule with comment %r that this version of '
                        'tuntap.qemu did not write; it stays, but is not in the '
                        'persistent hook' % comment)
    return RuntimePlan(
        backend='iptables', before_rules=before_rules, after_rules=after_rules,
        changed=plan['changed'], commands=backend.commands_of(state, plan),
        diff={'before_header': 'iptables rules (runtime)',
              'after_header': 'iptables rules (runtime)',
              'before': _lines_text(backend.lines(state, before_rules)),
              'after': _lines_text(backend.lines(state, after_rules))},
        lines=dict((rule['comment'], backend.lines(state, [rule])[0]) for rule in after_rules),
        before_lines=dict((rule['comment'], backend.lines(state, [rule])[0])
                          for rule in before_rules))


def plan_foreign_chains(commands, params, request, state, warnings):
    """ForeignPlan: accept rules in iptables-nft's forward chains (see foreign_targets).

    With foreign_forward=accept the task's forward rules are inserted where a drop policy
    would drop them, and removed where no longer needed; with ignore only the rules this
    converge removes from our table are removed there too."""
    accept = params['foreign_forward'] == 'accept'
    desired_forward = nat_rules.forward_rules(request['rules'])
    desired_comments = set(rule['comment'] for rule in desired_forward)
    owned_before, _unknown = nat_rules.rules_of_entries(
        [entry for entry in state['entries']
         if nat_rules.key_of(entry['comment']) in request['keys']])
    stale_forward = [rule for rule in nat_rules.forward_rules(owned_before)
                     if rule['comment'] not in desired_comments]
    if not desired_forward and not stale_forward:
        return ForeignPlan()
    chains = nft.NftBackend(commands).read_foreign_chains()
    targets = {}
    if accept:
        targets = foreign_targets(chains['drop'], families_of(desired_forward))
    if desired_forward:
        handled = set((nft_family, 'filter', 'FORWARD') for nft_family, _chain in targets.values())
        warnings.extend(foreign_warnings(chains['drop'], families_of(desired_forward), handled,
                                         params['foreign_forward']))
    candidate_rules = (desired_forward if accept else []) + stale_forward
    foreign_forward = iptables.ForeignForward(commands)
    candidates, present = {}, set()
    for family in families_of(candidate_rules):
        nft_family = iptables.NFT_FAMILIES[family]
        rules = [rule for rule in candidate_rules if rule['family'] == family]
        for chain in chains['iptables_nft'][nft_family]:
            candidates[(nft_family, chain)] = rules
            for rule in rules:
                if foreign_forward.present(nft_family, chain, rule):
                    present.add((nft_family, chain, rule['comment']))
    foreign = plan_foreign(targets, desired_forward if accept else [], candidates, present)
    return ForeignPlan(present=frozenset(present), **foreign)


def other_iptables_entries(entries, iptables_is_nft, foreign):
    """Pure: the entries of our comments in iptables that the iptables backend wrote, when
    the nftables backend is chosen (they go).  When `iptables` is iptables-nft, its filter
    FORWARD and DOCKER-USER chains are also where foreign_forward=accept puts its accept
    rules: forward entries that the ForeignPlan keeps there or found there (and removes
    itself) are left to it."""
    if not iptables_is_nft:
        return list(entries)
    foreign_owned = set(foreign.present)
    foreign_owned.update((nft_family, chain, rule['comment'])
                         for nft_family, chain, rule in foreign.after)
    return [entry for entry in entries
            if entry['chain'] != 'forward' or (iptables.NFT_FAMILIES[entry['family']],
                                               entry['ipt_chain'], entry['comment'])
            not in foreign_owned]


class PersistencePlanner:
    """Plans the persistent files of a backend from its rules after the call; errors
    (bad paths, a unit that is not ours) are collected in `errors`."""

    def __init__(self, params, commands, systemd, errors):
        self.params = params
        self.commands = commands
        self.systemd = systemd
        self.errors = errors

    def plan(self, backend, after_rules, ipt_backend=None):
        if not self.params['persistent']:
            return PersistencePlan()
        if backend == 'nftables':
            return self._nft(after_rules)
        return self._iptables(after_rules, ipt_backend)

    def _nft(self, after_rules):
        nft_file = self._path('nft_file')
        conf = self._path('nftables_conf')
        if nft_file is None or conf is None:
            return PersistencePlan()
        planned = [self._file(nft_file, nft.render_file(after_rules), 0o644)]
        conf_before = files.read_text(conf)
        if after_rules:
            conf_after = nft.conf_with_include(conf_before, nft_file)
        else:
            conf_after = nft.conf_without_include(conf_before)
        planned.append(self._file(conf, conf_after, 0o755 if conf_before is None else None,
                                  before=conf_before))
        boot_unit, unit_files = self.boot_unit(nft_file, bool(after_rules))
        return PersistencePlan(files=planned + unit_files, boot_unit=boot_unit)

    def _iptables(self, after_rules, ipt_backend):
        hook = self._path('hook_file')
        if hook is None:
            return PersistencePlan()
        paths = {}
        for family in ('ipv4', 'ipv6'):
            if any(rule['family'] == family for rule in after_rules):
                paths[family] = ipt_backend.command(family)
        return PersistencePlan(files=[self._file(hook, iptables.render_hook(after_rules, paths),
                                                 0o755)])

    def boot_unit(self, nft_file, present):
        """(BootUnitPlan, [FilePlan of the unit and its enable link]): our systemd unit that
        loads nft_file at boot."""
        requested = self.params['boot_unit']
        booted = same_netns = None
        if requested == 'auto':
            booted = nft_boot_unit.systemd_booted()
            same_netns = nft_boot_unit.same_network_namespace_as_init() if booted else None
        mode, reason = nft_boot_unit.choose_mode(requested, booted, same_netns)
        if mode == 'none':
            return BootUnitPlan(mode=mode, reason=reason), []
        unit_dir = self.params['systemd_unit_dir']
        if not os.path.isabs(unit_dir):
            self.errors.append('systemd_unit_dir: %r is not an absolute path' % unit_dir)
            return BootUnitPlan(mode=mode, reason=reason), []
        nft_program = self.commands.require('nft', 'boot_unit')
        plan = nft_boot_unit.plan_unit(mode, unit_dir, nft_program, nft_file, present,
                                       nft_boot_unit.read_current(unit_dir))
        self.errors.extend(plan['errors'])
        unit = FilePlan(mode=0o644, kind='unit', **plan['unit'])
        link = FilePlan(mode=None, kind='link', **plan['link'])
        systemctl = self.systemd.systemctl()
        active = False
        if systemctl:
            # Active like after a boot (RemainAfterExit): started once, stopped before it goes.
            _rc, out, _err = self.commands.run([systemctl, 'is-active', nft_boot_unit.UNIT_NAME])
            active = out.strip() == 'active'
        boot_unit = BootUnitPlan(mode=mode, reason=reason, path=plan['unit']['path'],
                                 enabled=present, systemctl=systemctl or None,
                                 active_before=active, active_after=present)
        # Enable after writing the unit; disable before removing it.
        return boot_unit, [unit, link] if present else [link, unit]

    def _path(self, option):
        path = self.params[option]
        if not os.path.isabs(path):
            self.errors.append('%s: %r is not an absolute path' % (option, path))
            return None
        if os.path.isdir(path):
            self.errors.append('%s: %r is a directory' % (option, path))
            return None
        return path

    @staticmethod
    def _file(path, after, mode, before=False):
        """Plan one file; mode None keeps the mode of an existing file."""
        if before is False:
            before = files.read_text(path)
        changed = before != after
        if mode is None:
            mode = os.stat(path).st_mode & 0o7777
        elif before is not None and after is not None:
            changed = changed or os.stat(path).st_mode & 0o7777 != mode
        return FilePlan(path=path, before=before, after=after, changed=changed, mode=mode)


# ---------------------------------------------------------------- applying

def apply_runtime(commands, runtime):
    """One nft batch, or the iptables commands, of a RuntimePlan."""
    if runtime.batch:
        nft.NftBackend(commands).apply(runtime.batch)
    for argv in runtime.commands:
        commands.run_checked(argv)


def apply_foreign(commands, foreign):
    foreign_forward = iptables.ForeignForward(commands)
    for nft_family, chain, rule in foreign.delete:
        foreign_forward.delete(nft_family, chain, rule)
    for nft_family, chain, rule in foreign.insert:
        foreign_forward.insert(nft_family, chain, rule)


def write_persistence(module, systemd, persistence, backup):
    """Write the files of a PersistencePlan; returns the backup files made."""
    backups = []
    boot_unit = persistence.boot_unit
    active = boot_unit if boot_unit and boot_unit.activity_changed else None
    if active and not active.active_after:
        # No ExecStop: stopping only tells systemd that the unit goes.
        systemd.run(active.systemctl, 'stop')
    for item in persistence.files:
        if not item.changed:
            continue
        if item.kind == 'link':
            nft_boot_unit.write_link(dataclasses.asdict(item))
            continue
        backup_file = files.write_atomic(module, item.path, item.after, backup=backup,
                                         mode=item.mode)
        if item.after is not None:
            # atomic_move gives a new file the umask's mode; the hook must be executable.
            os.chmod(item.path, item.mode)
        if backup_file:
            backups.append(backup_file)
    systemctl = systemd.systemctl()
    if systemctl and any(item.kind in ('unit', 'link') and item.changed
                         for item in persistence.files):
        systemd.run(systemctl, 'daemon-reload')
    if active and active.active_after:
        # Loads the file once more: the table it replaces is the same one.
        systemd.run(active.systemctl, 'start')
    return backups


# ---------------------------------------------------------------- the steps

class NatSteps(module_runner.ModuleSteps):
    """The steps of masquerade and port_forward (module_runner.ModuleSteps).

    build_request     params -> request dict (nat_rules.masquerade_request, ...)
    complete_request  (params, request, current rules of our table) -> (more desired rules,
                      errors): the part of the request that needs the host (port_forward's
                      destination check and hairpin rules), refused with the plan
    """

    libraries = (module_runner.NETADDR,)

    def __init__(self, build_request, complete_request=None):
        self.build_request = build_request
        self.complete_request = complete_request
        self.warnings = []
        self.backup_files = []
        self.systemd = None

    def parse(self, module):
        request = self.build_request(module.params)
        module_runner.refuse(request['errors'])
        return request

    def read(self, module, request):
        params = module.params
        module_runner.refuse(missing_interface_errors(params, request))
        commands = Commands(module, params['commands'])
        self.systemd = LiveSystemd(module, commands, params['systemd_unit_dir'], self.warnings)
        nft_reader = NftReader(commands)
        try:
            backend, reason = choose_backend(params['backend'], commands, nft_reader.read)
            if backend == 'nftables':
                state = nft_reader.read()
            else:
                state = iptables.IptablesBackend(commands).read(
                    families_of(request['rules']) or ['ipv4'])
        except (NetfilterError, OSError) as exc:
            raise module_runner.Refused([str(exc)], changed=False)
        other_state, iptables_is_nft = self._read_other(commands, backend, nft_reader)
        return HostState(commands=commands, backend=backend, reason=reason, state=state,
                         nft_reader=nft_reader, other_state=other_state,
                         iptables_is_nft=iptables_is_nft)

    def _read_other(self, commands, backend, nft_reader):
        """(state, iptables_is_nft) of the backend not chosen, when its program is there
        (state None when it is not, or cannot be read: then a warning says so)."""
        other = OTHER_BACKEND[backend]
        try:
            if other == 'nftables':
                if commands.find('nft') is None:
                    return None, False
                return nft_reader.read(), False
            program = commands.find('iptables') or commands.find('ip6tables')
            if program is None:
                return None, False
            state = iptables.IptablesBackend(commands).read([])
            rc, out, err = commands.run([program, '--version'])
            return state, rc == 0 and '(nf_tables)' in out + err
        except (NetfilterError, OSError) as exc:
            self.warnings.append('the rules of backend %s could not be read, so any that it holds '
                                 'for this call stay there: %s' % (other, exc))
            return None, False

    def plan(self, module, request, state):
        try:
            return self._plan(module.params, request, state)
        except (NetfilterError, OSError) as exc:
            raise module_runner.Refused([str(exc)], changed=False)

    def _plan(self, params, request, host):
        errors, warnings = [], self.warnings
        if self.complete_request:
            current_rules, _unknown = nat_rules.rules_of_entries(host.state['entries'])
            more_rules, more_errors = self.complete_request(params, request, current_rules)
            errors.extend(more_errors)
            request = dict(request, rules=request['rules'] + more_rules)
        if host.backend == 'nftables':
            errors.extend(nft.chain_errors(host.state))
            runtime = plan_nft_runtime(host.state, request['keys'], request['rules'], warnings)
            foreign = plan_foreign_chains(host.commands, params, request, host.state, warnings)
            ipt_backend = None
        else:
            ipt_backend = iptables.IptablesBackend(host.commands)
            runtime = plan_iptables_runtime(ipt_backend, host.state, request['keys'],
                                            request['rules'], warnings)
            if params['foreign_forward'] == 'accept':
                warnings.append('foreign_forward=accept has no effect with the iptables '
                                'backend: its forward rules are in the FORWARD chain already')
            foreign = ForeignPlan()
        module_runner.refuse(errors)
        planner = PersistencePlanner(params, host.commands, self.systemd, errors)
        persistence = planner.plan(host.backend, runtime.after_rules, ipt_backend)
        other = None
        if host.other_state is not None:
            other = self._plan_other(request, host, foreign, planner)
        module_runner.refuse(errors)
        return NatPlan(backend=host.backend, reason=host.reason, runtime=runtime,
                       foreign=foreign, persistence=persistence, warnings=warnings, other=other)

    @staticmethod
    def _plan_other(request, host, foreign, planner):
        """OtherBackendPlan: the rules of this call's keys go from the backend not chosen
        (its warnings about rules it does not know are not this call's business)."""
        ignored = []
        if host.backend == 'nftables':
            ipt_backend = iptables.IptablesBackend(host.commands)
            state = dict(host.other_state, entries=other_iptables_entries(
                host.other_state['entries'], host.iptables_is_nft, foreign))
            runtime = plan_iptables_runtime(ipt_backend, state, request['keys'], [], ignored)
        else:
            ipt_backend = None
            runtime = plan_nft_runtime(host.other_state, request['keys'], [], ignored)
        persistence = planner.plan(runtime.backend, runtime.after_rules, ipt_backend)
        return OtherBackendPlan(runtime=runtime, persistence=persistence)

    def apply(self, module, plan):
        commands = self.systemd.commands
        try:
            apply_runtime(commands, plan.runtime)
            apply_foreign(commands, plan.foreign)
            if plan.other is not None:
                apply_runtime(commands, plan.other.runtime)
            self.backup_files.extend(write_persistence(module, self.systemd, plan.persistence,
                                                       module.params['backup']))
            if plan.other is not None:
                self.backup_files.extend(write_persistence(
                    module, self.systemd, plan.other.persistence, module.params['backup']))
        except (NetfilterError, OSError) as exc:
            message = '%s (while applying the change; run the task again to converge)' % exc
            raise module_runner.ApplyFailed(message, errors=[message])

    def result(self, module, request, plan, applied):
        for warning in plan.warnings:
            module.warn(warning)
        keys = request['keys']
        runtime, foreign, persistence = plan.runtime, plan.foreign, plan.persistence
        foreign_forward = iptables.ForeignForward(self.systemd.commands)
        result = {
            'changed': plan.changed,
            'backend': plan.backend,
            'backend_reason': plan.reason,
            'rules': [{'chain': rule['chain'], 'comment': rule['comment'],
                       'rule': runtime.lines[rule['comment']]}
                      for rule in runtime.after_rules if rule['key'] in keys],
            'foreign_rules': [foreign_forward.line(nft_family, chain, rule)
                              for nft_family, chain, rule in foreign.after],
            'persistent': [item.report() for item in persistence.files],
        }
        if persistence.boot_unit is not None:
            result['boot_unit'] = persistence.boot_unit.report()
        if plan.other is not None:
            result['other_backend'] = plan.other.report()
        if self.backup_files:
            result['backup_files'] = list(self.backup_files)
        if module._diff:
            diff = [runtime.diff]
            if foreign.changed:
                before = sorted(foreign_forward.line(f, c, rule) for f, c, rule in foreign.before())
                after = sorted(foreign_forward.line(f, c, rule) for f, c, rule in foreign.after)
                diff.append({'before_header': 'iptables-nft forward rules of this task',
                             'after_header': 'iptables-nft forward rules of this task',
                             'before': _lines_text(before), 'after': _lines_text(after)})
            if persistence.boot_unit is not None and persistence.boot_unit.systemctl:
                diff.append(persistence.boot_unit.diff())
            diff.extend(item.diff() for item in persistence.files)
            if plan.other is not None and plan.other.changed:
                diff.extend(self._other_diff(plan.other))
            result['diff'] = diff
        return result

    @staticmethod
    def _other_diff(other):
        """The other backend's runtime rules and files, headers saying whose they are."""
        note = ' (backend %s, not in use: the rules of this call go)' % other.runtime.backend
        diff = [other.runtime.diff]
        if other.persistence.boot_unit is not None and other.persistence.boot_unit.systemctl:
            diff.append(other.persistence.boot_unit.diff())
        diff.extend(item.diff() for item in other.persistence.files)
        return [dict(entry, before_header=entry['before_header'] + note,
                     after_header=entry['after_header'] + note) for entry in diff]


def _lines_text(lines):
    return ''.join(line + '\n' for line in lines)
