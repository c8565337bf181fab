# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The converge loop shared by the masquerade and port_forward modules.

validate (pure) -> choose the backend -> read our rules once -> plan (nat_rules) ->
persistent files and foreign chains planned from the same rules -> fail on any error
(nothing touched) -> apply unless check mode: one nft batch (or the iptables commands),
the foreign accept rules, then the files (with the nftables backend on a systemd host
also our boot unit, nft_boot_unit, and its enable link).
"""

from __future__ import annotations

import os
import socket

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.tuntap.qemu.plugins.module_utils import files, module_runner, names
from ansible_collections.tuntap.qemu.plugins.module_utils._links import netlink, reading
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


def require_libraries(module):
    """netaddr, through module_runner's check (pyroute2 is checked where guest_side_networks
    needs it)."""
    module_runner.require_libraries(module, (module_runner.NETADDR,))


def fail(module, errors, **extra):
    module.fail_json(msg='; '.join(errors), errors=errors, **extra)


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
            for route in ipr.get_default_routes(family=family):
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


def destination_errors(destination, masqueraded, guest_networks):
    """Pure: the port_forward destination must lie in a managed subnet.

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
    return ['destination: %s is outside every managed subnet (%s); forwarding a host port '
            'there would send LAN traffic on to another network. Set '
            'allow_unmanaged_destination=true to forward there anyway'
            % (destination, ', '.join(known) or 'none found')]


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


# ---------------------------------------------------------------- the converge

class Converge:
    """One call of a NAT module: everything read and planned before anything changes."""

    def __init__(self, module, request):
        self.module = module
        self.params = module.params
        self.request = request
        self.commands = Commands(module, self.params['commands'])
        self.errors = list(request['errors'])
        self.warnings = []
        self._nft_state = None

    def _read_nft(self):
        if self._nft_state is None:
            self._nft_state = nft.NftBackend(self.commands).read()
        return self._nft_state

    def run(self, extra_checks=None):
        """Plan and apply; returns the module result (exit_json keywords)."""
        module, params = self.module, self.params
        if self.errors:
            fail(module, self.errors)
        self.errors.extend(missing_interface_errors(params, self.request))
        if self.errors:
            fail(module, self.errors)
        applying = False
        try:
            backend_name, reason = choose_backend(params['backend'], self.commands,
                                                  self._read_nft)
            if backend_name == 'nftables':
                outcome = self._plan_nft()
            else:
                outcome = self._plan_iptables()
            if extra_checks:
                self.errors.extend(extra_checks(outcome['after_rules']))
            if self.errors:
                fail(module, self.errors)
            self._plan_files(outcome)
            if self.errors:
                fail(module, self.errors)
            changed = (outcome['runtime_changed'] or outcome['foreign_changed']
                       or any(item['changed'] for item in outcome['files'])
                       or outcome.get('boot_unit_active', {}).get('changed', False))
            if changed and not module.check_mode:
                applying = True
                outcome['apply']()
                self._write_files(outcome)
        except (NetfilterError, OSError) as exc:
            message = str(exc)
            if applying:
                message += ' (while applying the change; run the task again to converge)'
            fail(module, [message], changed=applying)
        for warning in self.warnings:
            module.warn(warning)
        return self._result(backend_name, reason, outcome, changed)

    def _write_files(self, outcome):
        active = outcome.get('boot_unit_active')
        if active and active['changed'] and not active['after']:
            # No ExecStop: stopping only tells systemd that the unit goes.
            self._systemctl_run(active['systemctl'], 'stop')
        for item in outcome['files']:
            if not item['changed']:
                continue
            if item.get('kind') == 'link':
                nft_boot_unit.write_link(item)
                continue
            backup = files.write_atomic(self.module, item['path'], item['after'],
                                        backup=self.params['backup'], mode=item['mode'])
            if item['after'] is not None:
                # atomic_move gives a new file the umask's mode; the hook must be executable.
                os.chmod(item['path'], item['mode'])
            if backup:
                item['backup_file'] = backup
        systemctl = self._live_systemctl()
        if systemctl and any(item.get('kind') in ('unit', 'link') and item['changed']
                             for item in outcome['files']):
            self._systemctl_run(systemctl, 'daemon-reload')
        if active and active['changed'] and active['after']:
            # Loads the file once more: the table it replaces is the same one.
            self._systemctl_run(active['systemctl'], 'start')

    def _live_systemctl(self):
        """systemctl when the unit folder is that of a running systemd whose network
        namespace this is (the unit can then be reloaded, read and started); else None."""
        if not hasattr(self, '_systemctl'):
            self._systemctl = self._find_live_systemctl()
        return self._systemctl

    def _find_live_systemctl(self):
        if (os.path.realpath(self.params['systemd_unit_dir']) != nft_boot_unit.DEFAULT_UNIT_DIR
                or not nft_boot_unit.systemd_booted()
                or nft_boot_unit.same_network_namespace_as_init() is not True):
            return None
        systemctl = self.module.get_bin_path('systemctl', required=False)
        if systemctl is None:
            self.warnings.append('systemctl was not found, although systemd is PID 1: the unit '
                                 '%s is in place for the next boot' % nft_boot_unit.UNIT_NAME)
        return systemctl

    def _systemctl_run(self, systemctl, verb):
        argv = [systemctl, verb] + ([] if verb == 'daemon-reload' else [nft_boot_unit.UNIT_NAME])
        rc, _out, err = self.commands.run(argv)
        if rc != 0:
            raise NetfilterError('%s failed (exit %d): %s' % (' '.join(argv), rc, err.strip()))

    # ------------------------------------------------------------ nftables
    def _plan_nft(self):
        backend = nft.NftBackend(self.commands)
        state = self._read_nft()
        self.errors.extend(nft.chain_errors(state))
        plan = nat_rules.plan_rules(state['entries'], self.request['keys'],
                                    self.request['rules'])
        batch = nft.table_batch(state, plan)
        before_rules, _unknown = nat_rules.rules_of_entries(state['entries'])
        after_rules, unknown = nat_rules.rules_of_entries(plan['after'])
        for comment in unknown:
            self.warnings.append('table %s holds a rule that tuntap.qemu did not write '
                                 '(comment %r); it stays, but is not in the persistent file'
                                 % (nft.TABLE, comment))
        foreign = self._plan_foreign(backend, state, plan)

        def apply():
            backend.apply(batch)
            foreign_forward = iptables.ForeignForward(self.commands)
            for nft_family, chain, rule in foreign['delete']:
                foreign_forward.delete(nft_family, chain, rule)
            for nft_family, chain, rule in foreign['insert']:
                foreign_forward.insert(nft_family, chain, rule)

        return {
            'backend': backend, 'state': state, 'plan': plan, 'apply': apply,
            'runtime_changed': bool(batch), 'before_rules': before_rules,
            'after_rules': after_rules, 'foreign': foreign,
            'foreign_changed': bool(foreign['insert'] or foreign['delete']),
            'runtime_diff': {'before_header': 'nft table %s (runtime)' % nft.TABLE,
                             'after_header': 'nft table %s (runtime)' % nft.TABLE,
                             'before': nft.render_table(before_rules),
                             'after': nft.render_table(after_rules)},
            'lines': dict((rule['comment'], nft.rule_statement(rule)) for rule in after_rules),
        }

    def _plan_foreign(self, backend, state, plan):
        """Accept rules in iptables-nft's forward chains (see foreign_targets).

        With foreign_forward=accept the task's forward rules are inserted where a drop
        policy would drop them, and removed where no longer needed; with ignore only the
        rules this converge removes from our table are removed there too."""
        empty = {'insert': [], 'delete': [], 'after': [], 'present': set()}
        accept = self.params['foreign_forward'] == 'accept'
        desired_forward = nat_rules.forward_rules(self.request['rules'])
        desired_comments = set(rule['comment'] for rule in desired_forward)
        owned_before, _unknown = nat_rules.rules_of_entries(
            [entry for entry in state['entries']
             if nat_rules.key_of(entry['comment']) in self.request['keys']])
        stale_forward = [rule for rule in nat_rules.forward_rules(owned_before)
                         if rule['comment'] not in desired_comments]
        if not desired_forward and not stale_forward:
            return empty
        chains = backend.read_foreign_chains()
        targets = {}
        if accept:
            targets = foreign_targets(chains['drop'], self._families(desired_forward))
        if desired_forward:
            handled = set((nft_family, 'filter', 'FORWARD')
                          for nft_family, _chain in targets.values())
            self.warnings.extend(foreign_warnings(
                chains['drop'], self._families(desired_forward), handled,
                self.params['foreign_forward']))
        candidate_rules = (desired_forward if accept else []) + stale_forward
        foreign_forward = iptables.ForeignForward(self.commands)
        candidates, present = {}, set()
        for family in self._families(candidate_rules):
            nft_family = iptables.NFT_FAMILIES[family]
            rules = [rule for rule in candidate_rules if rule['family'] == family]
            for chain in chains['iptables_nft'][nft_family]:
                candidates[(nft_family, chain)] = rules
                for rule in rules:
                    if foreign_forward.present(nft_family, chain, rule):
                        present.add((nft_family, chain, rule['comment']))
        foreign = plan_foreign(targets, desired_forward if accept else [], candidates, present)
        foreign['present'] = present
        return foreign

    @staticmethod
    def _families(rules):
        return sorted(set(rule['family'] for rule in rules))

    # ------------------------------------------------------------ iptables
    def _plan_iptables(self):
        backend = iptables.IptablesBackend(self.commands)
        families = self._families(self.request['rules']) or ['ipv4']
        state = backend.read(families)
        plan = nat_rules.plan_rules(state['entries'], self.request['keys'],
                                    self.request['rules'])
        # iptables lists inserted rules in reverse: report them in an order of their own.
        before_rules, _unknown = nat_rules.rules_of_entries(state['entries'])
        before_rules = iptables.sorted_rules(before_rules)
        after_rules, unknown = nat_rules.rules_of_entries(plan['after'])
        after_rules = iptables.sorted_rules(after_rules)
        for comment in unknown:
            self.warnings.append('iptables holds a rule with comment %r that this version of '
                                 'tuntap.qemu did not write; it stays, but is not in the '
                                 'persistent hook' % comment)
        if self.params['foreign_forward'] == 'accept':
            self.warnings.append('foreign_forward=accept has no effect with the iptables '
                                 'backend: its forward rules are in the FORWARD chain already')

        def apply():
            backend.apply(state, plan)

        return {
            'backend': backend, 'state': state, 'plan': plan, 'apply': apply,
            'runtime_changed': plan['changed'], 'before_rules': before_rules,
            'after_rules': after_rules,
            'foreign': {'insert': [], 'delete': [], 'after': [], 'present': set()},
            'foreign_changed': False,
            'runtime_diff': {'before_header': 'iptables rules (runtime)',
                             'after_header': 'iptables rules (runtime)',
                             'before': _lines_text(backend.lines(state, before_rules)),
                             'after': _lines_text(backend.lines(state, after_rules))},
            'lines': dict((rule['comment'], backend.lines(state, [rule])[0])
                          for rule in after_rules),
        }

    # ------------------------------------------------------------ files
    def _plan_files(self, outcome):
        outcome['files'] = []
        params = self.params
        if not params['persistent']:
            return
        after_rules = outcome['after_rules']
        if outcome['backend'].name == 'nftables':
            nft_file = self._path('nft_file')
            conf = self._path('nftables_conf')
            if nft_file is None or conf is None:
                return
            self._add_file(outcome, nft_file, nft.render_file(after_rules), 0o644)
            conf_before = files.read_text(conf)
            if after_rules:
                conf_after = nft.conf_with_include(conf_before, nft_file)
            else:
                conf_after = nft.conf_without_include(conf_before)
            self._add_file(outcome, conf, conf_after, 0o755 if conf_before is None else None,
                           before=conf_before)
            self._plan_boot_unit(outcome, nft_file, bool(after_rules))
        else:
            hook = self._path('hook_file')
            if hook is None:
                return
            paths = {}
            for family in ('ipv4', 'ipv6'):
                if any(rule['family'] == family for rule in after_rules):
                    paths[family] = outcome['backend'].command(family)
            self._add_file(outcome, hook, iptables.render_hook(after_rules, paths), 0o755)

    def _plan_boot_unit(self, outcome, nft_file, present):
        """Our systemd unit that loads nft_file at boot, and its enable link."""
        requested = self.params['boot_unit']
        booted = same_netns = None
        if requested == 'auto':
            booted = nft_boot_unit.systemd_booted()
            same_netns = nft_boot_unit.same_network_namespace_as_init() if booted else None
        mode, reason = nft_boot_unit.choose_mode(requested, booted, same_netns)
        outcome['boot_unit'] = {'mode': mode, 'reason': reason}
        if mode == 'none':
            return
        unit_dir = self.params['systemd_unit_dir']
        if not os.path.isabs(unit_dir):
            self.errors.append('systemd_unit_dir: %r is not an absolute path' % unit_dir)
            return
        nft_program = self.commands.require('nft', 'boot_unit')
        plan = nft_boot_unit.plan_unit(mode, unit_dir, nft_program, nft_file, present,
                                       nft_boot_unit.read_current(unit_dir))
        self.errors.extend(plan['errors'])
        outcome['boot_unit'].update(path=plan['unit']['path'], enabled=present)
        unit = dict(plan['unit'], mode=0o644, kind='unit')
        link = dict(plan['link'], mode=None, kind='link')
        # Enable after writing the unit; disable before removing it.
        outcome['files'].extend([unit, link] if present else [link, unit])
        systemctl = self._live_systemctl()
        if systemctl:
            # Active like after a boot (RemainAfterExit): started once, stopped before it goes.
            _rc, out, _err = self.commands.run([systemctl, 'is-active', nft_boot_unit.UNIT_NAME])
            active = out.strip() == 'active'
            outcome['boot_unit_active'] = {'before': active, 'after': present,
                                           'changed': active != present, 'systemctl': systemctl}
            outcome['boot_unit']['active'] = present

    def _path(self, option):
        path = self.params[option]
        if not os.path.isabs(path):
            self.errors.append('%s: %r is not an absolute path' % (option, path))
            return None
        if os.path.isdir(path):
            self.errors.append('%s: %r is a directory' % (option, path))
            return None
        return path

    def _add_file(self, outcome, path, after, mode, before=False):
        """Plan one file; mode None keeps the mode of an existing file."""
        if before is False:
            before = files.read_text(path)
        changed = before != after
        if mode is None:
            mode = os.stat(path).st_mode & 0o7777
        elif before is not None and after is not None:
            changed = changed or os.stat(path).st_mode & 0o7777 != mode
        outcome['files'].append({'path': path, 'before': before, 'after': after,
                                 'changed': changed, 'mode': mode})

    # ------------------------------------------------------------ result
    def _result(self, backend_name, reason, outcome, changed):
        keys = self.request['keys']
        rules = [{'chain': rule['chain'], 'comment': rule['comment'],
                  'rule': outcome['lines'][rule['comment']]}
                 for rule in outcome['after_rules'] if rule['key'] in keys]
        foreign_forward = iptables.ForeignForward(self.commands)
        result = {
            'changed': changed,
            'backend': backend_name,
            'backend_reason': reason,
            'rules': rules,
            'foreign_rules': [foreign_forward.line(nft_family, chain, rule)
                              for nft_family, chain, rule in outcome['foreign']['after']],
            'persistent': [{'path': item['path'], 'changed': item['changed'],
                            'exists': item['after'] is not None}
                           for item in outcome['files']],
        }
        if 'boot_unit' in outcome:
            result['boot_unit'] = outcome['boot_unit']
        for item in outcome['files']:
            if item.get('backup_file'):
                result.setdefault('backup_files', []).append(item['backup_file'])
        if self.module._diff:
            diff = [outcome['runtime_diff']]
            foreign = outcome['foreign']
            if foreign['insert'] or foreign['delete']:
                before = sorted(foreign_forward.line(f, c, rule) for f, c, rule in
                                _present_rules(foreign))
                after = sorted(foreign_forward.line(f, c, rule) for f, c, rule in foreign['after'])
                diff.append({'before_header': 'iptables-nft forward rules of this task',
                             'after_header': 'iptables-nft forward rules of this task',
                             'before': _lines_text(before), 'after': _lines_text(after)})
            active = outcome.get('boot_unit_active')
            if active:
                header = '%s (systemd)' % nft_boot_unit.UNIT_NAME
                diff.append({'before_header': header, 'after_header': header,
                             'before': 'active\n' if active['before'] else 'inactive\n',
                             'after': 'active\n' if active['after'] else 'inactive\n'})
            for item in outcome['files']:
                if item.get('kind') == 'link':
                    diff.append(nft_boot_unit.link_diff(item))
                else:
                    diff.append(files.text_diff(item['path'], item['before'], item['after']))
            result['diff'] = diff
        return result


def _present_rules(foreign):
    """The foreign rules of the task before the change."""
    known = dict(((f, c, rule['comment']), (f, c, rule))
                 for f, c, rule in foreign['after'] + foreign['delete'])
    return [known[ident] for ident in foreign['present'] if ident in known]


def _lines_text(lines):
    return ''.join(line + '\n' for line in lines)
