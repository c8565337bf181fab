# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""guest_dhcp's steps with systemd (a fake systemctl; the process mode runs for real in the
integration target): the unit written, enabled and started; a changed guest list reloads, a
changed range restarts, nothing changed does nothing; conflicts refused with nothing written;
state=absent disables and removes; check mode writes nothing."""

from __future__ import annotations

import copy
import os
import sys

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils import module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils._dhcp import (
    dhcp_module, dhcp_sockets, dnsmasq_service, own_advertisements)
from ansible_collections.tuntap.qemu.plugins.module_utils._guest import guest_unit

UNIT = dnsmasq_service.UNIT_NAME


class Failed(Exception):
    pass


class FakeSystemd(object):
    def __init__(self, unit_dir):
        self.unit_path = os.path.join(unit_dir, UNIT)
        self.loaded = None
        self.enabled = False
        self.active = False
        self.pid = 0
        self.calls = []

    def systemctl(self, args):
        verb = args[0]
        self.calls.append(' '.join(args))
        if verb == 'show':
            loaded = self.loaded is not None
            return 0, ('LoadState=%s\nActiveState=%s\nUnitFileState=%s\nMainPID=%d\nNeedDaemonReload=no\n'
                       % ('loaded' if loaded else 'not-found', 'active' if self.active else 'inactive',
                          'enabled' if self.enabled else 'disabled', self.pid if self.active else 0)), ''
        if verb == 'daemon-reload':
            self.loaded = open(self.unit_path).read() if os.path.exists(self.unit_path) else None
        elif verb == 'enable':
            assert self.loaded is not None
            self.enabled = True
        elif verb in ('start', 'restart'):
            self.active = True
            self.pid = self.pid + 100 if verb == 'restart' or not self.pid else self.pid
        elif verb == 'reload':
            assert self.active
        elif verb == 'disable':
            self.enabled = False
            if '--now' in args:
                self.active = False
        return 0, '', ''


class FakeModule(object):
    def __init__(self, systemd, params, check_mode=False):
        self.systemd = systemd
        self.params = params
        self.check_mode = check_mode
        self._diff = True
        self.warnings = []

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return '/usr/bin/systemctl' if name == 'systemctl' else None

    def run_command(self, argv, environ_update=None, **_kwargs):
        assert argv[0] == '/usr/bin/systemctl'
        return self.systemd.systemctl(argv[1:])

    def warn(self, text):
        self.warnings.append(text)

    def atomic_move(self, src, dest):
        os.rename(src, dest)

    def fail_json(self, **result):
        raise Failed(result['msg'])


def base_params(tmp_path):
    return {
        'state': 'present',
        'networks': [{'interface': 'br0', 'address': '192.168.5.1/24', 'range': ['192.168.5.100', '192.168.5.150'],
                      'hosts': [{'mac': '52:54:00:00:05:0a', 'address': '192.168.5.10', 'name': 'vm1'}]}],
        'domain': 'qemu.internal', 'host_name': 'hv1', 'resolvers': [], 'lease_time': '1h', 'service': 'auto',
        'config_dir': str(tmp_path / 'conf'), 'runtime_dir': str(tmp_path / 'run'),
        'lease_file': str(tmp_path / 'lib' / 'leases'), 'unit_dir': str(tmp_path / 'units'), 'firewall': True,
        'foreign_input': 'ignore', 'allow_missing_interface': False, 'dnsmasq': sys.executable,
    }


@pytest.fixture
def host(tmp_path, monkeypatch):
    os.makedirs(str(tmp_path / 'units'))
    systemd = FakeSystemd(str(tmp_path / 'units'))
    host = {'systemd': systemd, 'sockets': [], 'addresses': {'br0': ['192.168.5.1/24']}}
    monkeypatch.setattr(module_runner, 'require_libraries', lambda module, libraries: None)
    monkeypatch.setattr(dhcp_module, 'read_addresses', lambda: host['addresses'])
    monkeypatch.setattr(dhcp_module, 'read_sockets', lambda module: host['sockets'])
    # The advertised interfaces' accept_ra/autoconf and IPv6 addresses: a fake kernel.
    host['sysctls'], host['v6'], host['applied'] = {}, [], []
    monkeypatch.setattr(own_advertisements, 'read_sysctls',
                        lambda interfaces: dict((key, value) for key, value in host['sysctls'].items()
                                                if key.split('.')[3] in interfaces))
    monkeypatch.setattr(own_advertisements, 'read_addresses',
                        lambda interfaces: [a for a in host['v6'] if a.interface in interfaces])

    def apply_own_ra(plan):
        host['applied'].append(plan)
        host['sysctls'].update((key, new) for key, (_old, new) in plan.sysctls.items())
        host['v6'] = [address for address in host['v6'] if address not in plan.delete]
    monkeypatch.setattr(own_advertisements, 'apply', apply_own_ra)
    monkeypatch.setattr(dnsmasq_service, 'init_comm', lambda: 'systemd')
    monkeypatch.setattr(guest_unit, 'same_netns_as_init', lambda: True)
    conf = str(tmp_path / 'conf' / 'dnsmasq.conf')

    def process_argv(pid):
        if systemd.active and pid == systemd.pid:
            return ['/usr/sbin/dnsmasq', '--keep-in-foreground', '--conf-file=' + conf]
        return {4242: ['/usr/bin/python3', 'server.py']}.get(pid)
    monkeypatch.setattr(dnsmasq_service.qemu, 'process_argv', process_argv)
    monkeypatch.setattr(dhcp_module.qemu, 'process_argv', process_argv)
    return host


def converge(host, params, check_mode=False):
    host['systemd'].calls = []
    module = FakeModule(host['systemd'], copy.deepcopy(params), check_mode)
    return module_runner.converge(module, dhcp_module.GuestDhcpSteps()), module


def failing(host, params):
    module = FakeModule(host['systemd'], copy.deepcopy(params))
    failures = []

    def fail_json(**result):
        failures.append(result)
        raise Failed(result['msg'])
    module.fail_json = fail_json
    with pytest.raises(Failed):
        module_runner.converge(module, dhcp_module.GuestDhcpSteps())
    return failures[0]


def test_systemd_lifecycle(host, tmp_path):
    params = base_params(tmp_path)
    systemd = host['systemd']
    result, module = converge(host, params, check_mode=True)
    assert result['changed'] and result['action'] == 'started' and result['service'] == 'systemd'
    assert not os.path.exists(systemd.unit_path) and not os.path.exists(params['config_dir'])
    assert any('nft' in warning for warning in module.warnings)

    result, _module = converge(host, params)
    assert result['action'] == 'started'
    assert systemd.calls[-4:] == ['daemon-reload', 'enable ' + UNIT, 'start ' + UNIT,
                                  'show --property=%s %s' % (','.join(guest_unit.SHOW_PROPERTIES), UNIT)]
    assert result['pid'] == systemd.pid == 100
    unit = open(systemd.unit_path).read()
    assert unit.startswith('# Managed by tuntap.qemu') and '--keep-in-foreground' in unit
    for name in ('dnsmasq.conf', 'hosts', 'names'):
        assert os.path.exists(os.path.join(params['config_dir'], name))

    result, _module = converge(host, params)
    assert not result['changed'] and result['action'] == 'none' and result['pid'] == 100

    params['networks'][0]['hosts'].append({'mac': '52:54:00:00:05:0b', 'address': '192.168.5.11', 'name': 'vm2'})
    result, _module = converge(host, params)
    assert result['action'] == 'reloaded' and 'reload ' + UNIT in systemd.calls and result['pid'] == 100
    changed_files = [entry['after_header'] for entry in result['diff']]
    assert changed_files == [os.path.join(params['config_dir'], name) for name in ('hosts', 'names')]

    params['networks'][0]['range'] = ['192.168.5.200', '192.168.5.210']
    result, _module = converge(host, params)
    assert result['action'] == 'restarted' and 'restart ' + UNIT in systemd.calls and result['pid'] == 200

    result, _module = converge(host, {'state': 'absent', **{k: v for k, v in params.items() if k != 'state'}})
    assert result['action'] == 'stopped' and result['pid'] is None
    assert 'disable --now ' + UNIT in systemd.calls
    assert not os.path.exists(systemd.unit_path) and not os.path.exists(params['config_dir'])

    result, _module = converge(host, dict(params, state='absent'))
    assert not result['changed'] and result['action'] == 'none'


def test_conflict_refused_with_nothing_written(host, tmp_path):
    params = base_params(tmp_path)
    host['sockets'] = dhcp_sockets.parse_ss(
        'udp UNCONN 0 0 0.0.0.0%br0:67 0.0.0.0:* users:(("python3",pid=4242,fd=3))\n'
        'udp UNCONN 0 0 192.168.5.1:53 0.0.0.0:* users:(("python3",pid=4242,fd=4))\n')
    failure = failing(host, params)
    assert failure['errors'] == [
        'process 4242 (python3: /usr/bin/python3 server.py) holds a DHCP server socket on br0; our dnsmasq '
        'would clash with it: stop it or bind it elsewhere (bind-interfaces / interface= of another dnsmasq, '
        'a listen address of another DNS server), then run again',
        'process 4242 (python3: /usr/bin/python3 server.py) holds the DNS port udp/53 on 192.168.5.1; our '
        'dnsmasq would clash with it: stop it or bind it elsewhere (bind-interfaces / interface= of another '
        'dnsmasq, a listen address of another DNS server), then run again']
    assert not os.path.exists(params['config_dir'])
    assert not os.path.exists(host['systemd'].unit_path)


def test_missing_interface_refused(host, tmp_path):
    host['addresses'] = {'br0': ['192.168.6.1/24']}
    failure = failing(host, base_params(tmp_path))
    assert failure['errors'] == ['networks[0].address: br0 does not hold 192.168.5.1/24 (it has 192.168.6.1/24)']
    host['addresses'] = {}
    result, _module = converge(host, dict(base_params(tmp_path), allow_missing_interface=True), check_mode=True)
    assert result['changed']


def test_systemd_in_another_namespace_refused(host, tmp_path, monkeypatch):
    monkeypatch.setattr(guest_unit, 'same_netns_as_init', lambda: False)
    failure = failing(host, dict(base_params(tmp_path), service='systemd'))
    assert failure['errors'][0].startswith("service=systemd: this runs in a network namespace other than PID 1's")
    result, _module = converge(host, base_params(tmp_path), check_mode=True)
    assert result['service'] == 'process'


def test_process_mode_leaves_a_unit_alone(host, tmp_path, monkeypatch):
    monkeypatch.setattr(dnsmasq_service, 'init_comm', lambda: 'bash')
    unit_text = dnsmasq_service.render_unit('/usr/sbin/dnsmasq', '/etc/x/dnsmasq.conf', '/run/x')
    with open(host['systemd'].unit_path, 'w') as handle:
        handle.write(unit_text)
    result, module = converge(host, base_params(tmp_path), check_mode=True)
    assert result['service'] == 'process' and result['action'] == 'started'
    assert all('units' not in entry['after_header'] for entry in result['diff'])
    assert any('service=process leaves it alone' in warning for warning in module.warnings)
    result, _module = converge(host, dict(base_params(tmp_path), state='absent'))
    assert not result['changed'] and host['systemd'].calls == []
    assert open(host['systemd'].unit_path).read() == unit_text


def test_a_unit_that_is_not_ours_refused(host, tmp_path):
    with open(host['systemd'].unit_path, 'w') as handle:
        handle.write('[Unit]\nDescription=the admin\'s\n')
    failure = failing(host, base_params(tmp_path))
    assert failure['errors'][0].endswith('is not ours (no "# Managed by tuntap.qemu" header); move it away')


# ---------------------------------------------------------------- IPv6: RA and AAAA

def v6_params(tmp_path):
    params = base_params(tmp_path)
    params['networks'][0]['address6'] = 'fd00:5::1/64'
    params['networks'][0]['hosts'][0]['address6'] = 'fd00:5::10'
    return params


def test_address6_advertised_then_not(host, tmp_path):
    host['addresses'] = {'br0': ['192.168.5.1/24', 'fd00:5::1/64', 'fe80::1/64']}
    params = v6_params(tmp_path)
    result, _module = converge(host, params)
    assert result['action'] == 'started'
    assert 'enable-ra' in result['config'].splitlines()
    assert 'dhcp-range=set:ttq0,fd00:5::,ra-only,64' in result['config'].splitlines()
    names = open(os.path.join(params['config_dir'], 'names')).read()
    assert 'fd00:5::10 vm1.qemu.internal vm1' in names and 'fd00:5::1 hv1.qemu.internal hv1' in names
    result, _module = converge(host, params)
    assert not result['changed']

    # Without address6: dnsmasq.conf changes, so a restart (SIGHUP does not reread it).
    del params['networks'][0]['address6']
    result, _module = converge(host, params, check_mode=True)
    assert result['changed'] and result['action'] == 'restarted' and 'enable-ra' not in result['config']
    assert 'enable-ra' in open(os.path.join(params['config_dir'], 'dnsmasq.conf')).read()
    result, _module = converge(host, params)
    assert result['action'] == 'restarted' and 'ra-only' not in result['config']


def test_address6_not_held_and_a_foreign_dns_socket_on_it_refused(host, tmp_path):
    host['addresses'] = {'br0': ['192.168.5.1/24', 'fe80::1/64']}
    host['sockets'] = dhcp_sockets.parse_ss(
        'udp UNCONN 0 0 [fd00:5::1]:53 [::]:* users:(("python3",pid=4242,fd=4))\n')
    failure = failing(host, v6_params(tmp_path))
    assert failure['errors'][0] == 'networks[0].address6: br0 does not hold fd00:5::1/64 (it has fe80::1/64)'
    assert failure['errors'][1].startswith(
        'process 4242 (python3: /usr/bin/python3 server.py) holds the DNS port udp/53 on fd00:5::1;')
    assert len(failure['errors']) == 2
    assert not os.path.exists(v6_params(tmp_path)['config_dir'])


class FakeWall(object):
    pass


@pytest.mark.parametrize('foreign_input', ['accept', 'ignore'])
def test_foreign_input_chains_with_router_solicitations(tmp_path, foreign_input):
    request, errors = dhcp_module.dhcp_config.parse_request(dict(v6_params(tmp_path), foreign_input=foreign_input))
    assert errors == []
    state = dhcp_module.State(
        mode='process', mode_error=None, texts={}, unit_text=None, unit_status=guest_unit.NO_UNIT,
        pid=None, daemon_pid=None, addresses={}, sockets=[], binary=None, user=None, warnings=[],
        firewall={'wall': FakeWall(), 'table': {'exists': False, 'chain_ok': False, 'comments': []},
                  'drops': [('ip', 'filter', 'INPUT'), ('ip6', 'filter', 'INPUT')], 'foreign': {}})
    warnings = []
    batch, _before, after, foreign_add, _delete = dhcp_module.GuestDhcpSteps._plan_firewall(request, state, warnings)
    assert after.splitlines()[-1] == 'tuntap.qemu dhcp iif br0 icmpv6/nd-router-solicit'
    assert len(batch) == 4 + 4
    # iptables-nft's ip filter INPUT is IPv4: the DHCP and DNS accepts only, never the ICMPv6 one.
    assert [rule['comment'] for rule in foreign_add] == (
        ['tuntap.qemu dhcp iif br0 udp/67', 'tuntap.qemu dhcp iif br0 udp/53', 'tuntap.qemu dhcp iif br0 tcp/53']
        if foreign_input == 'accept' else [])
    ip6 = [warning for warning in warnings if 'table ip6 filter' in warning]
    assert len(ip6) == 1 and 'and ICMPv6 router solicitations from the guests\' interfaces there' in ip6[0]
    assert len(warnings) == (1 if foreign_input == 'accept' else 2)


def test_own_advertisements_not_taken(host, tmp_path):
    """accept_ra/autoconf 0 and the stray SLAAC address from our own RA deleted, in the same
    converge that starts dnsmasq (check mode shows it and changes nothing); then no change."""
    host['addresses'] = {'br0': ['192.168.5.1/24', 'fd00:5::1/64', 'fe80::1/64']}
    host['sysctls'] = {'net.ipv6.conf.br0.accept_ra': '1', 'net.ipv6.conf.br0.autoconf': '1'}
    stray = own_advertisements.Address('br0', 'fd00:5::5054:ff:fe00:1', 64, False)
    host['v6'] = [own_advertisements.Address('br0', 'fd00:5::1', 64, True), stray,
                  own_advertisements.Address('br0', 'fe80::1', 64, True, 253)]
    params = v6_params(tmp_path)
    result, _module = converge(host, params, check_mode=True)
    assert result['changed'] and host['applied'] == []
    diff = [d for d in result['diff'] if 'own RA' in d['before_header']]
    assert len(diff) == 1
    assert diff[0]['before'] == ('net.ipv6.conf.br0.accept_ra = 1\nnet.ipv6.conf.br0.autoconf = 1\n'
                                 'br0 fd00:5::5054:ff:fe00:1/64 dynamic\n')
    assert diff[0]['after'] == 'net.ipv6.conf.br0.accept_ra = 0\nnet.ipv6.conf.br0.autoconf = 0\n'
    result, _module = converge(host, params)
    assert result['changed'] and len(host['applied']) == 1
    assert host['applied'][0].delete == [stray]
    assert [address.address for address in host['v6']] == ['fd00:5::1', 'fe80::1']
    result, _module = converge(host, params)
    assert not result['changed'] and len(host['applied']) == 1


def _addr(interface, address, permanent, scope=0, prefixlen=64):
    return own_advertisements.Address(interface, address, prefixlen, permanent, scope)


@pytest.mark.parametrize('sysctls, addresses, changes, deleted', [
    # Fresh link: both keys 1, a dynamic SLAAC address from our prefix.
    ({'net.ipv6.conf.br0.accept_ra': '1', 'net.ipv6.conf.br0.autoconf': '1'},
     [_addr('br0', 'fd00:5::1', True), _addr('br0', 'fd00:5::aa', False)],
     {'net.ipv6.conf.br0.accept_ra': ('1', '0'), 'net.ipv6.conf.br0.autoconf': ('1', '0')},
     ['fd00:5::aa/64']),
    # Already right: nothing.
    ({'net.ipv6.conf.br0.accept_ra': '0', 'net.ipv6.conf.br0.autoconf': '0'},
     [_addr('br0', 'fd00:5::1', True)], {}, []),
    # accept_ra=2 is changed too; permanent ones in the prefix, other prefixes (dynamic or
    # not), link-local and other interfaces are never touched.
    ({'net.ipv6.conf.br0.accept_ra': '2', 'net.ipv6.conf.br0.autoconf': '0'},
     [_addr('br0', 'fd00:5::2', True), _addr('br0', 'fd00:6::aa', False), _addr('br0', 'fd00:7::1', True),
      _addr('br0', 'fe80::aa', False, 253), _addr('tap0', 'fd00:5::bb', False)],
     {'net.ipv6.conf.br0.accept_ra': ('2', '0')}, []),
    # The interface does not exist (allow_missing_interface): skipped.
    ({}, [], {}, []),
])
def test_own_advertisements_plan(sysctls, addresses, changes, deleted):
    plan = own_advertisements.plan([('br0', 'fd00:5::/64')], sysctls, addresses)
    assert plan.sysctls == changes
    assert [address.cidr for address in plan.delete] == deleted
    assert plan.changed == bool(changes or deleted)


def test_own_advertisements_key_path(tmp_path):
    assert own_advertisements.key_path('net.ipv6.conf.eth0.10.accept_ra', '/p') == '/p/net/ipv6/conf/eth0.10/accept_ra'
    conf = tmp_path / 'net' / 'ipv6' / 'conf' / 'br0'
    conf.mkdir(parents=True)
    (conf / 'accept_ra').write_text('1\n')
    (conf / 'autoconf').write_text('1\n')
    assert own_advertisements.read_sysctls(['br0', 'nope'], str(tmp_path)) == {
        'net.ipv6.conf.br0.accept_ra': '1', 'net.ipv6.conf.br0.autoconf': '1'}
    own_advertisements.apply(own_advertisements.plan([('br0', 'fd00:5::/64')], {
        'net.ipv6.conf.br0.accept_ra': '1', 'net.ipv6.conf.br0.autoconf': '1'}, []), str(tmp_path))
    assert (conf / 'accept_ra').read_text() == '0\n' and (conf / 'autoconf').read_text() == '0\n'
