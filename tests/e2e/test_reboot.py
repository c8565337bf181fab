# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Debian persistence, proven by a reboot simulation in the lab; and check mode.

Reboot: site.yml converges the four-hypervisor lab (one per topology, two real guests each).
Then, for every hypervisor, its state (links, addresses, routes, nftables ruleset,
forwarding sysctls; read with `ip -j` / `nft -j` inside its namespace and normalized) is
recorded, the machine is "rebooted" - guests ended by their pidfiles, namespace deleted and
created again with only lo and its uplink eth0 with the address it had before any converge
(Lab.recreate_hypervisor) - and the boot path runs on the files the converge wrote, loading
only what a Debian 12 boot loads (Lab.boot_hypervisor): systemd-sysctl's sysctl.d files, the
units enabled in the hypervisor's unit folder that load nftables rules (our
tuntap-qemu-nft.service, which the converge writes and enables as on a systemd host; never
nftables.service, which Debian installs disabled and the roles leave alone) and
networking.service's `ifup -a`. The state must be what the converge made, and the boot path
must have run exactly those steps. Then site.yml starts the
guests again and changes nothing else, the guests' pings pass again, and one more site.yml
run changes nothing.

Check mode: on a fresh lab, `site.yml --check --diff` reports changes for every host, shows
the interfaces files it would write, and changes nothing (state and files as before).

Nothing here touches the root network namespace: a module fixture compares its addresses,
routes, nftables ruleset and forwarding sysctls before and after.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

LAB = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'lab')
sys.path.insert(0, LAB)

import tuntap_lab  # noqa: E402  pylint: disable=wrong-import-position

GUESTS_TASK = 'tuntap.qemu.hypervisor : The guests of this host'
DHCP_TASK = 'tuntap.qemu.hypervisor : DHCP and DNS for the guests of the internal networks'
# The topologies whose hosts run the guests' DHCP server (issue 12).
DHCP_TOPOLOGIES = ('routed', 'routed_nat', 'bridged_nat')
INTERFACES_TASK = 'tuntap.qemu.hypervisor : Interfaces of the guests (taps, bridge, addresses) for ifupdown at boot'
SOURCE_TASK = 'tuntap.qemu.hypervisor : /etc/network/interfaces reads interfaces.d (added only when no source line covers it)'
# Link flags that follow the carrier (a tap has one only while its QEMU runs), not the
# configuration.
CARRIER_FLAGS = {'LOWER_UP', 'NO-CARRIER', 'DORMANT', 'M-DOWN'}
SYSCTLS = ('net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding')


# ---------------------------------------------------------------- state of a namespace

def _json(argv, netns=None):
    if netns:
        argv = ['ip', 'netns', 'exec', netns] + argv
    result = subprocess.run(argv, check=True, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=tuntap_lab.ENV)
    return json.loads(result.stdout) if result.stdout.strip() else []


def _links(netns):
    """{ifname: kind, flags, mtu, master, tun settings, bridge settings, MAC relation}."""
    links = _json(['ip', '-d', '-j', 'link', 'show'], netns)
    macs = dict((link['ifname'], link.get('address')) for link in links)
    state = {}
    for link in links:
        info = link.get('linkinfo') or {}
        data = info.get('info_data') or {}
        entry = {
            'kind': info.get('info_kind', link.get('link_type')),
            'flags': sorted(set(link['flags']) - CARRIER_FLAGS),
            'mtu': link['mtu'],
            'master': link.get('master'),
            # MACs of taps and bridges are random; what counts is that a bridged_lan bridge
            # carries its uplink's MAC (the host's MAC on the LAN).
            'uplink_mac': link.get('address') == macs.get('eth0') and link['ifname'] != 'lo',
            # Our mark (tuntap.qemu:tap, tuntap.qemu:bridge ...): what a later prune goes by.
            'alias': link.get('ifalias'),
        }
        if entry['kind'] == 'tun':
            # type, pi, multi_queue, persist and the owner (user, group) when set. Not
            # vnet_hdr: QEMU sets it when it opens the tap, so it tells who opened it last.
            entry['tun'] = dict((key, value) for key, value in data.items() if key != 'vnet_hdr')
        if entry['kind'] == 'bridge':
            entry['bridge'] = dict((key, data.get(key)) for key in ('stp_state', 'forward_delay', 'vlan_filtering'))
        state[link['ifname']] = entry
    return state


def _directed_broadcast(address, prefixlen):
    value = int(ipaddress.IPv4Network('%s/%d' % (address, prefixlen), strict=False).broadcast_address)
    return str(ipaddress.IPv4Address(value))


def _address(item):
    item = dict((key, value) for key, value in item.items() if key not in ('valid_life_time', 'preferred_life_time'))
    # ifupdown adds an IPv4 address with its subnet's broadcast (`broadcast +`, its
    # default), tap_device and bridge_port without one; the kernel makes the same local
    # broadcast route either way (compared in the routes). Any other broadcast stays.
    if item.get('family') == 'inet' and item.get('broadcast') == _directed_broadcast(item['local'], item['prefixlen']):
        del item['broadcast']
    return item


def _addresses(netns):
    """{ifname: [address]} without IPv6 link-local addresses and lifetimes."""
    state = {}
    for link in _json(['ip', '-j', 'address', 'show'], netns):
        items = [_address(item) for item in link.get('addr_info', [])
                 if not (item.get('family') == 'inet6' and item.get('scope') == 'link')]
        if items:
            state[link['ifname']] = sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    return state


def _routes(netns):
    """IPv4 and IPv6 routes of all tables, without the link-local and multicast IPv6 routes
    that every link with IPv6 has, timers and the linkdown flag (a tap without its QEMU)."""
    routes = []
    for family in ('-4', '-6'):
        for route in _json(['ip', family, '-j', 'route', 'show', 'table', 'all'], netns):
            if family == '-6' and route.get('dst', '').lower().startswith(('fe80:', 'ff00:')):
                continue
            route = dict((key, value) for key, value in route.items() if key not in ('expires', 'cache'))
            route['flags'] = sorted(set(route.get('flags', [])) - {'linkdown'})
            routes.append(route)
    return sorted(routes, key=lambda route: json.dumps(route, sort_keys=True))


def _without_counters(value):
    if isinstance(value, dict):
        return dict((key, None if key == 'counter' and isinstance(item, dict) else _without_counters(item))
                    for key, item in value.items() if key != 'handle')
    if isinstance(value, list):
        return [_without_counters(item) for item in value]
    return value


def _ruleset(netns):
    """The whole nftables ruleset (in a hypervisor: our table inet tuntap_qemu, if any), in
    order, without handles and counter values."""
    document = _json(['nft', '-j', 'list', 'ruleset'], netns)
    items = document.get('nftables', []) if isinstance(document, dict) else []
    return [_without_counters(item) for item in items if 'metainfo' not in item]


def _sysctls(netns):
    result = subprocess.run((['ip', 'netns', 'exec', netns] if netns else []) + ['sysctl', '-n'] + list(SYSCTLS),
                            check=True, text=True, stdout=subprocess.PIPE, env=tuntap_lab.ENV)
    return dict(zip(SYSCTLS, result.stdout.split()))


def network_state(netns):
    return {'links': _links(netns), 'addresses': _addresses(netns), 'routes': _routes(netns),
            'nftables': _ruleset(netns), 'sysctl': _sysctls(netns)}


def state_diff(before, after, names=('before', 'after')):
    return ''.join(difflib.unified_diff(
        json.dumps(before, indent=1, sort_keys=True).splitlines(True),
        json.dumps(after, indent=1, sort_keys=True).splitlines(True), *names))


def root_state():
    """The root namespace's addresses, routes, ruleset and forwarding: must never change."""
    addresses = dict((ifname, [dict((key, value) for key, value in item.items()
                                    if key not in ('valid_life_time', 'preferred_life_time')) for item in items])
                     for ifname, items in ((link['ifname'], link.get('addr_info', []))
                                           for link in _json(['ip', '-j', 'address', 'show'])))
    routes = [dict((key, value) for key, value in route.items() if key != 'expires')
              for family in ('-4', '-6') for route in _json(['ip', family, '-j', 'route', 'show', 'table', 'all'])]
    return {'addresses': addresses, 'routes': routes, 'nftables': _ruleset(None), 'sysctl': _sysctls(None)}


def files_state(lab, name):
    """{path: sha256 or link target} of a hypervisor's /etc/netns folder and lab state."""
    roots = ['/etc/netns/%s' % lab.hypervisors[name]['namespace'], os.path.join(lab.state_dir, name)]
    roots += [lab.guest_dir(guest['name']) for guest in lab.hypervisors[name]['guests']]
    state = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for entry in dirs + files:
                path = os.path.join(folder, entry)
                if os.path.islink(path):
                    state[path] = '-> ' + os.readlink(path)
                elif os.path.isfile(path):
                    with open(path, 'rb') as handle:
                        state[path] = hashlib.sha256(handle.read()).hexdigest()
                else:
                    state[path] = 'dir'
    return state


# ---------------------------------------------------------------- ansible output

def results_by_task(output):
    """[(task, status, host, item label or None, text printed before it)] of a playbook
    run's default-callback output, for the diffs and changes of each host."""
    results = []
    task = None
    text = []
    for line in output.splitlines():
        match = re.match(r'^TASK \[(.*)\] \**$', line)
        if match:
            task, text = match.group(1), []
            continue
        match = re.match(r'^(ok|changed|skipping|failed|fatal): \[([^\]]+)\]( => \(item=(.*)\)\s*$)?', line)
        if match and task:
            results.append((task, match.group(1), match.group(2), match.group(4), '\n'.join(text)))
            text = []
            continue
        text.append(line)
    return results


def recap(output):
    """{host: changed} from the PLAY RECAP."""
    return dict((host, int(changed)) for host, changed in re.findall(r'^(\S+)\s+: ok=\d+\s+changed=(\d+)', output, re.M))


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope='module', autouse=True)
def root_namespace_untouched():
    if os.geteuid() != 0:
        pytest.fail('the lab creates network namespaces: run the e2e tests as root')
    before = root_state()
    yield
    after = root_state()
    assert after == before, 'the root network namespace changed:\n' + state_diff(before, after)


def _new_lab(letter):
    return tuntap_lab.Lab('ttq%s%d-' % (letter, os.getpid() % 100000))


@pytest.fixture(scope='module')
def rebooted_lab():
    """A converged lab whose four hypervisors were rebooted: (lab, {hv: state after the
    converge}, {hv: state after the boot path}, {hv: the steps the boot path ran})."""
    assert shutil.which('brctl') and os.path.exists(tuntap_lab.BRIDGE_UTILS_HOOK), \
        "bridge_ports needs Debian's bridge-utils (tests/run.sh installs it)"
    lab = _new_lab('r')
    try:
        build = tuntap_lab.build_guest.build_guest()
        lab.up('/usr/bin/python3', build)
        started = time.monotonic()
        rc, changed = lab.converge('site.yml')
        assert rc == 0 and changed > 0
        print('site.yml %.1f s' % (time.monotonic() - started))
        converged, booted, steps = {}, {}, {}
        for name, hv in sorted(lab.hypervisors.items()):
            converged[name] = network_state(hv['namespace'])
        for name, hv in sorted(lab.hypervisors.items()):
            started = time.monotonic()
            lab.recreate_hypervisor(name)
            recreated = time.monotonic() - started
            timings = lab.boot_hypervisor(name)
            steps[name] = list(timings)
            booted[name] = network_state(hv['namespace'])
            print('%s (%s): power cycle %.2f s, boot path %s' % (
                name, hv['topology'], recreated,
                ', '.join('%s %.2f s' % (step, seconds) for step, seconds in timings.items())))
        yield lab, converged, booted, steps
    finally:
        lab.down()


@pytest.fixture(scope='module')
def restarted_lab(rebooted_lab):
    """The rebooted lab after one site.yml run: (lab, exit code, output, guest reports)."""
    lab = rebooted_lab[0]
    # Fresh counters in the LAN peer, so that the NAT rows count only pings after the reboot.
    tuntap_lab.run(['nft', 'delete', 'table', 'inet', 'ttqlab'], netns=lab.peer)
    lab.count_sources()
    started = time.monotonic()
    rc, _changed = lab.converge('site.yml')
    output = lab.last_output
    converged = time.monotonic() - started
    reports = lab.guest_reports()
    print('site.yml after the reboot %.1f s, to all guest results %.1f s' % (converged, time.monotonic() - started))
    return lab, rc, output, reports


@pytest.fixture(scope='module')
def checked_lab():
    """A fresh lab before and after `site.yml --check --diff`: (lab, rc, output, before, after)."""
    lab = _new_lab('c')
    try:
        lab.up('/usr/bin/python3', tuntap_lab.build_guest.build_guest())

        def snapshot():
            return dict((name, {'network': network_state(hv['namespace']), 'files': files_state(lab, name)})
                        for name, hv in sorted(lab.hypervisors.items()))

        before = snapshot()
        started = time.monotonic()
        rc, _changed = lab.converge('site.yml', extra_args=['--check', '--diff'])
        print('site.yml --check --diff %.1f s' % (time.monotonic() - started))
        yield lab, rc, lab.last_output, before, snapshot()
    finally:
        lab.down()


# ---------------------------------------------------------------- reboot

DHCP_TABLE = 'tuntap_qemu_dhcp'


def _dhcp_table_items(state):
    """The items of the guests' DHCP server's table inet tuntap_qemu_dhcp in a ruleset."""
    return [item for item in state['nftables']
            if any(isinstance(body, dict) and (body.get('table') == DHCP_TABLE
                                               or (kind == 'table' and body.get('name') == DHCP_TABLE))
                   for kind, body in item.items())]


def _without_dhcp_table(state):
    items = _dhcp_table_items(state)
    return dict(state, nftables=[item for item in state['nftables'] if item not in items])


@pytest.mark.parametrize('hypervisor', sorted(tuntap_lab.HYPERVISORS))
def test_boot_path_restores_the_converged_state(rebooted_lab, hypervisor):
    """Everything but the DHCP server's table: the lab has no systemd, so its DHCP server is a
    process that the next converge starts again, and the table comes with it (on a real host
    the unit loads it before dnsmasq; the real-host stage compares it across a reboot)."""
    lab, converged, booted, _steps = rebooted_lab
    assert converged[hypervisor]['links'], 'no state recorded'
    with_dhcp = lab.hypervisors[hypervisor]['topology'] in DHCP_TOPOLOGIES
    assert bool(_dhcp_table_items(converged[hypervisor])) == with_dhcp
    assert _dhcp_table_items(booted[hypervisor]) == []
    expected = _without_dhcp_table(converged[hypervisor])
    diff = state_diff(expected, booted[hypervisor], ('after the converge', 'after the boot path'))
    assert booted[hypervisor] == expected, '%s after its reboot:\n%s' % (hypervisor, diff)


# What a Debian 12 boot runs: systemd-sysctl, our nft unit where the topology has NAT (the
# converge enabled it), networking.service. nftables.service stays disabled, as installed.
BOOT_STEPS = {
    'routed': ['sysctl', 'ifup'],
    'routed_nat': ['sysctl', 'tuntap-qemu-nft.service', 'ifup'],
    'bridged_nat': ['sysctl', 'tuntap-qemu-nft.service', 'ifup'],
    'bridged_lan': ['sysctl', 'ifup'],
}


@pytest.mark.parametrize('hypervisor', sorted(tuntap_lab.HYPERVISORS))
def test_boot_path_loads_only_what_a_debian_boot_loads(rebooted_lab, hypervisor):
    lab, _converged, _booted, steps = rebooted_lab
    topology = lab.hypervisors[hypervisor]['topology']
    assert steps[hypervisor] == BOOT_STEPS[topology], steps[hypervisor]
    units = tuntap_lab.enabled_units(lab.unit_dir(hypervisor))
    assert 'nftables.service' not in units
    assert (tuntap_lab.NFT_BOOT_UNIT in units) == (topology in ('routed_nat', 'bridged_nat'))


def test_site_yml_after_the_reboot_only_starts_the_guests(restarted_lab):
    """Links, forwarding, NAT and files came back from the boot path: the only changes are
    the processes started again - the guests, one per guest, and the guests' DHCP server
    (the lab has no systemd to start its unit at boot; the real-host stage shows the unit
    back after a real reboot) - and nothing fails."""
    lab, rc, output, _reports = restarted_lab
    assert rc == 0
    # An item's label is "vm1 on tap0 (192.168.1.10/24)".
    changes = sorted(((host, task, item) for task, status, host, item, _text in results_by_task(output)
                      if status == 'changed'), key=str)
    expected = [(name, GUESTS_TASK, '%s on tap%d (%s)' % (guest['name'], index, guest['address']))
                for name, hv in lab.hypervisors.items() for index, guest in enumerate(hv['guests'])]
    dhcp_hosts = [name for name, hv in lab.hypervisors.items() if hv['topology'] in DHCP_TOPOLOGIES]
    expected += [(name, DHCP_TASK, None) for name in dhcp_hosts]
    assert changes == sorted(expected, key=str), output
    # The recap counts the guests' loop once per host, and the DHCP server's start.
    assert recap(output) == dict((name, 2 if name in dhcp_hosts else 1) for name in lab.hypervisors)


@pytest.mark.parametrize('hypervisor', sorted(tuntap_lab.HYPERVISORS))
def test_guests_ping_again_after_the_reboot(restarted_lab, hypervisor):
    lab, rc, _output, reports = restarted_lab
    assert rc == 0
    title, rows = lab.matrices(reports)[hypervisor]
    ok = lab.print_matrix(title + ' (after the reboot)', rows)
    if not ok:
        for guest in lab.hypervisors[hypervisor]['guests']:
            with open(lab.serial_log(guest), errors='replace') as handle:
                print('--- serial log of %s ---\n%s' % (guest['name'], handle.read()))
    for guest in lab.hypervisors[hypervisor]['guests']:
        report = reports[guest['name']]
        assert report['done'] is not None, '%s never printed TTQ-DONE' % guest['name']
        assert report['done']['fail'] == '0', report
    assert rows and ok, 'some pings of %s failed after the reboot (matrix above)' % title


@pytest.mark.parametrize('hypervisor', sorted(tuntap_lab.HYPERVISORS))
def test_the_dhcp_table_is_back_with_the_dhcp_server(rebooted_lab, restarted_lab, hypervisor):
    _lab, converged, _booted, _steps = rebooted_lab
    lab = restarted_lab[0]
    now = network_state(lab.hypervisors[hypervisor]['namespace'])
    assert _dhcp_table_items(now) == _dhcp_table_items(converged[hypervisor])


def test_next_site_yml_run_changes_nothing(restarted_lab):
    lab = restarted_lab[0]
    rc, changed = lab.converge('site.yml')
    assert (rc, changed) == (0, 0), 'the run after the guests started again must change nothing'


# ---------------------------------------------------------------- check mode

def test_check_mode_changes_nothing(checked_lab):
    lab, rc, output, before, after = checked_lab
    assert rc == 0, 'site.yml --check failed on a fresh lab'
    changed = recap(output)
    assert sorted(changed) == sorted(lab.hypervisors) and all(changed.values()), \
        'check mode must report changes on every fresh hypervisor: %s' % changed
    for name in sorted(lab.hypervisors):
        assert after[name] == before[name], '%s changed in check mode:\n%s' % (
            name, state_diff(before[name], after[name]))
    for _name, _hv, guest in lab.guests():
        assert tuntap_lab.guest_process(os.path.join(lab.guest_dir(guest['name']), 'qemu.pid'),
                                        guest['name']) is None


def _expected_interfaces_lines(hv):
    lines = ['+auto tap0', '+    pre-up ip tuntap add dev tap0 mode tap',
             '+auto tap1', '+    pre-up ip tuntap add dev tap1 mode tap']
    if hv['topology'] in ('routed', 'routed_nat'):
        lines += ['+    address %s/%s' % (tuntap_lab.guest_gateway(hv, guest), guest['address'].split('/')[1])
                  for guest in hv['guests']]
    elif hv['topology'] == 'bridged_nat':
        lines += ['+auto br0', '+    address %s' % hv['bridge_address'], '+    bridge_ports tap0 tap1']
    else:
        lines += ['+iface eth0 inet manual', '+auto br0', '+    address %s/24' % hv['uplink_address'],
                  '+    bridge_ports tap0 tap1 eth0', '+    bridge_hw eth0']
    return lines


def test_diff_shows_the_interfaces_files(checked_lab):
    lab, rc, output, _before, _after = checked_lab
    assert rc == 0
    results = results_by_task(output)
    for name, hv in sorted(lab.hypervisors.items()):
        diffs = [text for task, status, host, _item, text in results
                 if task == INTERFACES_TASK and host == name and status == 'changed']
        assert len(diffs) == 1, '%s: no diff of its interfaces.d file' % name
        assert '+++ after: /etc/network/interfaces.d/tuntap-qemu' in diffs[0]
        lines = diffs[0].splitlines()
        missing = [line for line in _expected_interfaces_lines(hv) if line not in lines]
        assert not missing, '%s: the diff lacks %s:\n%s' % (name, missing, diffs[0])
        sources = [text for task, status, host, _item, text in results
                   if task == SOURCE_TASK and host == name and status == 'changed']
        assert len(sources) == 1 and '+source /etc/network/interfaces.d/*' in sources[0].splitlines(), sources
