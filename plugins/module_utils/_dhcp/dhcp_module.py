# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The steps of the guest_dhcp module (module_runner.ModuleSteps): read our files, our dnsmasq,
the interfaces' addresses, the sockets of ports 67 and 53 and the firewall; plan the files, the
action (start, SIGHUP, restart, stop) and the table; refuse conflicts before anything changes.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import signal
import socket
import typing

from ansible_collections.tuntap.qemu.plugins.module_utils import files, module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils._dhcp import (
    dhcp_config, dhcp_firewall, dhcp_sockets, dnsmasq_service, own_advertisements)
from ansible_collections.tuntap.qemu.plugins.module_utils._guest import guest_unit, qemu
from ansible_collections.tuntap.qemu.plugins.module_utils._nat.netfilter_commands import (
    Commands, NetfilterError)

DNSMASQ_USER = 'dnsmasq'
FILE_NAMES = (dhcp_config.CONF_NAME, dhcp_config.HOSTS_NAME, dhcp_config.NAMES_NAME)


@dataclasses.dataclass
class State:
    mode: typing.Optional[str]
    mode_error: typing.Optional[str]
    texts: typing.Dict[str, typing.Optional[str]]
    unit_text: typing.Optional[str]
    unit_status: typing.Any
    pid: typing.Optional[int]
    daemon_pid: typing.Optional[int]
    addresses: typing.Dict[str, typing.List[str]]
    sockets: typing.List[dhcp_sockets.Socket]
    binary: typing.Optional[str]
    user: typing.Optional[str]
    firewall: typing.Optional[dict]
    warnings: typing.List[str]
    firewall_text: typing.Optional[str] = None     # our firewall.nft as read
    own_ra_sysctls: typing.Dict[str, str] = dataclasses.field(default_factory=dict)
    own_ra_addresses: typing.List[own_advertisements.Address] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Plan:
    request: dhcp_config.Request
    state: State
    after: typing.Dict[str, typing.Optional[str]]
    unit_after: typing.Optional[str]
    action: str
    table_batch: list
    table_before: str
    table_after: str
    foreign_add: list
    foreign_delete: list
    warnings: typing.List[str]
    pid: typing.Optional[int] = None
    enable: bool = False
    firewall_after: typing.Optional[str] = None    # firewall.nft, loaded by the unit at its start
    own_ra: own_advertisements.Plan = dataclasses.field(
        default_factory=lambda: own_advertisements.Plan({}, []))  # no RA of our own taken

    @property
    def changed_files(self):
        return [name for name in FILE_NAMES if self.state.texts.get(name) != self.after.get(name)]

    @property
    def firewall_file_changed(self):
        return self.state.firewall_text != self.firewall_after

    @property
    def unit_changed(self):
        return self.state.unit_text != self.unit_after

    @property
    def changed(self):
        return bool(self.changed_files or self.unit_changed or self.action != 'none' or self.enable
                    or self.table_batch or self.foreign_add or self.foreign_delete
                    or self.firewall_file_changed or self.own_ra.changed)


def read_addresses():
    """{interface: ['ADDRESS/PREFIX', ...]} of every link (IPv4, then IPv6 as netaddr writes
    them), through netlink."""
    from pyroute2 import IPRoute  # pylint: disable=import-outside-toplevel
    import netaddr  # pylint: disable=import-outside-toplevel
    with IPRoute() as ipr:
        links = dict((link['index'], link.get_attr('IFLA_IFNAME')) for link in ipr.get_links())
        found = dict((name, []) for name in links.values())
        for family in (socket.AF_INET, socket.AF_INET6):
            for message in ipr.get_addr(family=family):
                name = links.get(message['index'])
                address = message.get_attr('IFA_ADDRESS')
                if name is not None and address:
                    found[name].append('%s/%d' % (netaddr.IPAddress(address), message['prefixlen']))
    return found


def read_sockets(module):
    binary = module.get_bin_path('ss')
    if binary is None:
        return None
    rc, out, err = module.run_command([binary, '-H', '-l', '-n', '-u', '-t', '-p'],
                                      environ_update={'LC_ALL': 'C'})
    if rc != 0:
        raise module_runner.Refused(['ss -H -l -n -u -t -p failed (exit %d): %s' % (rc, err.strip())])
    return dhcp_sockets.parse_ss(out)


def _user():
    try:
        pwd.getpwnam(DNSMASQ_USER)
        return DNSMASQ_USER
    except KeyError:
        return None


class GuestDhcpSteps(module_runner.ModuleSteps):
    """guest_dhcp for module_runner."""

    libraries = (module_runner.NETADDR, module_runner.PYROUTE2)

    def parse(self, module):
        request, errors = dhcp_config.parse_request(module.params)
        module_runner.refuse(errors)
        return request

    def read(self, module, request):
        warnings = []
        mode, mode_error = dnsmasq_service.service_mode(
            request.service, dnsmasq_service.init_comm(), guest_unit.same_netns_as_init())
        texts = dict((name, files.read_text(request.path(name))) for name in FILE_NAMES)
        unit_path = os.path.join(request.unit_dir, dnsmasq_service.UNIT_NAME)
        unit_text = files.read_text(unit_path)
        if unit_text is not None and not guest_unit.is_ours(unit_text):
            raise module_runner.Refused(['%s exists and is not ours (no "%s" header); move it away'
                                         % (unit_path, guest_unit.MARK)])
        status = guest_unit.NO_UNIT
        if unit_text is not None and mode == 'systemd':
            status = guest_unit.Systemctl(module).status(dnsmasq_service.UNIT_NAME)
        daemon_pid = dnsmasq_service.running_pid(request.pidfile, request.conf_file)
        pid = dnsmasq_service.running_pid(request.pidfile, request.conf_file, status.main_pid)
        binary = request.dnsmasq or module.get_bin_path('dnsmasq', opt_dirs=['/usr/sbin'])
        addresses, sockets = {}, []
        own_ra_sysctls, own_ra_addresses = {}, []
        if request.wanted:
            addresses = read_addresses()
            advertised = [interface for interface, _network6 in own_advertisements.advertised(request)]
            if advertised:
                own_ra_sysctls = own_advertisements.read_sysctls(advertised)
                own_ra_addresses = own_advertisements.read_addresses(advertised)
            sockets = read_sockets(module)
            if sockets is None:
                warnings.append('ss (iproute2) not found: the DHCP and DNS ports were not checked '
                                'for other servers')
                sockets = []
        return State(mode, mode_error, texts, unit_text, status, pid, daemon_pid, addresses,
                     sockets, binary, _user(), self._read_firewall(module, request, warnings),
                     warnings, files.read_text(request.path(dhcp_firewall.FILE_NAME)),
                     own_ra_sysctls, own_ra_addresses)

    @staticmethod
    def _read_firewall(module, request, warnings):
        wall = dhcp_firewall.Firewall(Commands(module))
        if not wall.available():
            if request.wanted and request.firewall:
                warnings.append('nft (Debian package nftables) not found: table %s not made; '
                                'the guests reach DHCP and DNS only without a drop policy on input'
                                % dhcp_firewall.TABLE)
            return None
        try:
            return {'wall': wall, 'table': wall.read_table(), 'drops': wall.read_drop_chains(),
                    'foreign': wall.read_foreign_rules()}
        except NetfilterError as exc:
            raise module_runner.Refused([str(exc)])

    def plan(self, module, request, state):
        errors = []
        warnings = list(state.warnings)
        wanted = request.wanted
        if wanted and state.mode_error:
            errors.append(state.mode_error)
        mode = state.mode or 'process'
        if wanted and (not state.binary or not os.access(state.binary, os.X_OK)):
            errors.append('dnsmasq: %r not found; install the Debian package dnsmasq-base'
                          % (state.binary or 'dnsmasq'))
        after = dict((name, None) for name in FILE_NAMES)
        unit_after = None
        firewall_after = None
        if wanted and request.firewall and state.firewall is not None:
            firewall_after = dhcp_firewall.render_file(dhcp_firewall.request_rules(request))
        if wanted:
            errors += dhcp_config.interface_errors(request, state.addresses.get)
            ours = set(pid for pid in (state.pid, state.daemon_pid) if pid)
            addresses = set(network.address for network in request.networks)
            addresses |= set(network.address6 for network in request.networks if network.address6)
            interfaces = set(network.interface for network in request.networks)
            for conflict in dhcp_sockets.conflicts(state.sockets, interfaces, addresses, ours):
                errors.append(dhcp_sockets.conflict_error(conflict, _command_of))
            if state.user is None:
                warnings.append('no user %r on this host: dnsmasq runs as root' % DNSMASQ_USER)
            after = {
                dhcp_config.CONF_NAME: dhcp_config.render_config(
                    request, request.path(dhcp_config.HOSTS_NAME),
                    request.path(dhcp_config.NAMES_NAME), state.user),
                dhcp_config.HOSTS_NAME: dhcp_config.render_hosts(request),
                dhcp_config.NAMES_NAME: dhcp_config.render_names(request),
            }
            if mode == 'systemd':
                # The unit loads our table before dnsmasq: it comes back at boot with it.
                nft_load = None
                if firewall_after is not None:
                    nft_load = [state.firewall['wall'].nft_path(), request.path(dhcp_firewall.FILE_NAME)]
                unit_after = dnsmasq_service.render_unit(state.binary, request.conf_file,
                                                         request.runtime_dir, nft_load)
        module_runner.refuse(errors)
        if mode == 'process' and state.unit_text is not None:
            # The unit runs (if at all) under PID 1's systemd, perhaps in another namespace:
            # the process mode leaves it alone.
            unit_after = state.unit_text
            warnings.append('%s of ours exists in %s; service=process leaves it alone (run with '
                            'service=systemd where PID 1 runs, state=absent, to remove it)'
                            % (dnsmasq_service.UNIT_NAME, request.unit_dir))
        changed_files = [name for name in FILE_NAMES if state.texts.get(name) != after[name]]
        running = state.pid is not None
        if mode == 'systemd' and wanted and state.daemon_pid and state.daemon_pid != state.unit_status.main_pid:
            running = False  # a daemonized one goes, the unit starts
        action = dnsmasq_service.decide_action(wanted, running, changed_files,
                                               unit_changed=state.unit_text != unit_after)
        table_batch, table_before, table_after, foreign_add, foreign_delete = self._plan_firewall(
            request, state, warnings)
        plan = Plan(request, state, after, unit_after, action, table_batch, table_before,
                    table_after, foreign_add, foreign_delete, warnings, pid=state.pid,
                    enable=mode == 'systemd' and wanted and not state.unit_status.enabled,
                    firewall_after=firewall_after)
        if wanted:
            plan.own_ra = own_advertisements.plan(own_advertisements.advertised(request),
                                                  state.own_ra_sysctls, state.own_ra_addresses)
        return plan

    @staticmethod
    def _plan_firewall(request, state, warnings):
        firewall = state.firewall
        wanted = dhcp_firewall.request_rules(request) if request.firewall and request.wanted else []
        if firewall is None:
            return [], '', '', [], []
        batch = dhcp_firewall.table_batch(firewall['table'], wanted)
        before = '\n'.join(firewall['table']['comments'])
        after = '\n'.join(rule['comment'] for rule in wanted)
        foreign_wanted = []
        drops = firewall['drops']
        ra = any(rule['family'] == 'ipv6' for rule in wanted)
        if wanted and drops:
            iptables_input = dhcp_firewall.FOREIGN_CHAIN in drops
            if request.foreign_input == 'accept' and iptables_input:
                foreign_wanted = dhcp_firewall.ipv4_rules(wanted)
            others = [chain for chain in drops
                      if not (request.foreign_input == 'accept' and chain == dhcp_firewall.FOREIGN_CHAIN)]
            for family, table, chain in others:
                warnings.append(
                    'the input chain %s of table %s %s has policy drop: it drops the guests\' DHCP '
                    'and DNS whatever table %s accepts%s'
                    % (chain, family, table, dhcp_firewall.TABLE,
                       '; foreign_input=accept inserts scoped accepts there'
                       if (family, table, chain) == dhcp_firewall.FOREIGN_CHAIN
                       else '; add accepts for udp 67 and udp/tcp 53%s from the guests\' interfaces there'
                       % (' and ICMPv6 router solicitations' if ra else '')))
        present = firewall['foreign']
        foreign_add = [rule for rule in foreign_wanted if rule['comment'] not in present]
        keep = set(rule['comment'] for rule in foreign_wanted)
        foreign_delete = [words for comment, words in sorted(present.items()) if comment not in keep]
        return batch, before, after, foreign_add, foreign_delete

    def apply(self, module, plan):
        request, state = plan.request, plan.state
        mode = state.mode or 'process'
        try:
            if not request.wanted:
                self._stop(module, plan, mode)
            if request.wanted:
                # Before dnsmasq starts or rereads its files: no RA of ours is ever taken.
                own_advertisements.apply(plan.own_ra)
                for directory in (request.config_dir, request.runtime_dir,
                                  os.path.dirname(request.lease_file)):
                    os.makedirs(directory, mode=0o755, exist_ok=True)
            for name in FILE_NAMES:
                if state.texts.get(name) != plan.after[name]:
                    files.write_atomic(module, request.path(name), plan.after[name])
            if plan.firewall_file_changed:
                files.write_atomic(module, request.path(dhcp_firewall.FILE_NAME), plan.firewall_after)
            if request.wanted:
                if mode == 'systemd':
                    self._apply_unit(module, plan)
                else:
                    self._apply_process(plan)
            else:
                self._remove_leftovers(request)
            self._apply_firewall(plan)
        except (dnsmasq_service.DnsmasqError, guest_unit.SystemctlError, NetfilterError, OSError) as exc:
            raise module_runner.ApplyFailed(str(exc), action=plan.action, service=mode)

    @staticmethod
    def _stop(module, plan, mode):
        request, state = plan.request, plan.state
        unit_path = os.path.join(request.unit_dir, dnsmasq_service.UNIT_NAME)
        if plan.unit_changed:
            systemctl = guest_unit.Systemctl(module)
            systemctl.run('disable', '--now', dnsmasq_service.UNIT_NAME)
            files.write_atomic(module, unit_path, None)
            systemctl.run('daemon-reload')
        if state.daemon_pid:
            dnsmasq_service.stop_process(state.daemon_pid, request.conf_file, request.pidfile)

    @staticmethod
    def _apply_process(plan):
        request, state = plan.request, plan.state
        if plan.action == 'started':
            plan.pid = dnsmasq_service.start_process(state.binary, request.conf_file, request.pidfile)
        elif plan.action == 'restarted':
            dnsmasq_service.stop_process(state.pid, request.conf_file, request.pidfile)
            plan.pid = dnsmasq_service.start_process(state.binary, request.conf_file, request.pidfile)
        elif plan.action == 'reloaded':
            if not dnsmasq_service.signal_ours(state.pid, request.conf_file, signal.SIGHUP):
                plan.pid = dnsmasq_service.start_process(state.binary, request.conf_file,
                                                         request.pidfile)
                plan.action = 'started'

    @staticmethod
    def _apply_unit(module, plan):
        request, state = plan.request, plan.state
        systemctl = guest_unit.Systemctl(module)
        unit = dnsmasq_service.UNIT_NAME
        if state.daemon_pid and state.daemon_pid != state.unit_status.main_pid:
            dnsmasq_service.stop_process(state.daemon_pid, request.conf_file, request.pidfile)
        if plan.unit_changed:
            files.write_atomic(module, os.path.join(request.unit_dir, unit), plan.unit_after)
        if plan.unit_changed or state.unit_status.needs_reload or not state.unit_status.loaded:
            systemctl.run('daemon-reload')
        if plan.enable:
            systemctl.run('enable', unit)
        verb = {'started': 'start', 'restarted': 'restart', 'reloaded': 'reload'}.get(plan.action)
        if verb:
            systemctl.run(verb, unit)
        plan.pid = systemctl.status(unit).main_pid

    @staticmethod
    def _remove_leftovers(request):
        for path in (request.pidfile, request.lease_file):
            if os.path.exists(path):
                os.unlink(path)
        for directory in (request.config_dir, request.runtime_dir):
            try:
                os.rmdir(directory)
            except OSError:
                pass

    @staticmethod
    def _apply_firewall(plan):
        firewall = plan.state.firewall
        if firewall is None:
            return
        wall = firewall['wall']
        wall.apply_table(plan.table_batch)
        for words in plan.foreign_delete:
            wall.delete_foreign(words)
        for rule in reversed(plan.foreign_add):
            wall.insert_foreign(rule)

    def result(self, module, request, plan, applied):
        mode = plan.state.mode or 'process'
        for warning in plan.warnings:
            module.warn(warning)
        pid = plan.pid if applied else plan.state.pid
        if applied and plan.action == 'stopped':
            pid = None
        result = {
            'changed': plan.changed,
            'action': plan.action,
            'pid': pid,
            'service': mode,
            'config': plan.after[dhcp_config.CONF_NAME] or '',
        }
        if plan.foreign_add:
            result['foreign_input_rules'] = [plan.state.firewall['wall'].foreign_line(rule)
                                             for rule in plan.foreign_add]
        if module._diff:
            diffs = [files.text_diff(request.path(name), plan.state.texts.get(name), plan.after[name])
                     for name in FILE_NAMES if plan.state.texts.get(name) != plan.after[name]]
            if plan.firewall_file_changed:
                diffs.append(files.text_diff(request.path(dhcp_firewall.FILE_NAME), plan.state.firewall_text,
                                             plan.firewall_after))
            if plan.unit_changed:
                diffs.append(files.text_diff(os.path.join(request.unit_dir, dnsmasq_service.UNIT_NAME),
                                             plan.state.unit_text, plan.unit_after))
            if plan.own_ra.changed:
                diffs.append(plan.own_ra.diff())
            if plan.table_batch:
                diffs.append({'before_header': 'table %s (rule comments)' % dhcp_firewall.TABLE,
                              'after_header': 'table %s (rule comments)' % dhcp_firewall.TABLE,
                              'before': plan.table_before, 'after': plan.table_after})
            result['diff'] = diffs
        return result


def _command_of(pid):
    args = qemu.process_argv(pid)
    return ' '.join(args) if args else None
