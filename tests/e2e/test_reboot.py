# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Debian persistence, proven by a reboot simulation in the lab; and check mode.

Reboot: site.yml converges the five-hypervisor lab (one per topology, real guests on each).
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

IPv6 (issue 13): the dual-stack hypervisors' IPv6 - the inet6 stanzas of their taps or
bridge, net.ipv6.conf.all.forwarding in the sysctl file, the NAT66 rule in the nft file - is
in what the converge made and in what the boot path brings back. What the kernel makes by
itself after the boot (SLAAC from the LAN's router advertisements) is waited for, briefly.

Isolation and VDE (issue 13): which bridge ports are isolated (BR_ISOLATED) is part of the
compared state, so the bridge stanza's `bridge_slave isolated on` lines must bring it back;
hv2's VDE switch tap (vde0, with the switch's address) comes back from its stanza, and the
switch itself - a pidfile'd process in the lab, ended by its pidfile at the power cycle - is
started again by the next site.yml, as the guests and the DHCP server are (on a real host
its unit starts it at boot; the real-host stage shows that).

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
VDE_TASK = 'tuntap.qemu.hypervisor : The VDE switch on its tap'
# The topologies whose hosts run the guests' DHCP server (issue 12; isolated: issue 13).
DHCP_TOPOLOGIES = tuntap_lab.DHCP_TOPOLOGIES
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
        if info.get('info_slave_kind') == 'bridge':
            # An isolated port (issue 13, BR_ISOLATED) reaches only the non-isolated ones.
            entry['isolated'] = bool((info.get('info_slave_data') or {}).get('isolated'))
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
    # ifupdown adds an IPv6 address of a tap or bridge with nodad (the stanza's dad-attempts
    # 0: a tap has no carrier before its QEMU, and the address would stay tentative and fail
    # ifup), tap_device and bridge_port with duplicate address detection, which ends once the
    # link has a carrier: the same global address either way. tentative stays compared.
    if item.get('family') == 'inet6':
        item.pop('nodad', None)
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
    that every link with IPv6 has, timers and the linkdown flag (a tap without its QEMU), and
    without the routes the kernel learns from router advertisements (proto ra, and the SLAAC
    prefix routes, which expire: the LAN's router, not a host's configuration; never made,
    moved or persisted by tuntap.qemu; the lab peer's dnsmasq makes its default route come and
    go between advertisements, and a bridge port keeps the prefix route it learned before it
    became one until it expires)."""
    routes = []
    for family in ('-4', '-6'):
        for route in _json(['ip', family, '-j', 'route', 'show', 'table', 'all'], netns):
            if family == '-6' and route.get('dst', '').lower().startswith(('fe80:', 'ff00:')):
                continue
            if route.get('protocol') == 'ra' or (family == '-6' and 'expires' in route):
                # An IPv6 route with an expiry is learned from a router advertisement too
                # (the prefix route of its SLAAC prefix, proto kernel).
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


# What the kernel does by itself after the boot path, and a real boot gives it the time for:
# SLAAC on a LAN with a router (issue 13: hv4's br0 takes its address and default route from
# the LAN peer's router advertisements once it is up: a router solicitation, the answer,
# duplicate address detection, about a second). The state is read again until it is the
# converged one or this many seconds passed; anything else that differs still fails.
SETTLE_TIMEOUT = 10


def _settled_state(netns, expected, timeout=SETTLE_TIMEOUT):
    """(network_state of netns once it equals expected or after timeout, seconds waited)."""
    started = time.monotonic()
    while True:
        state = network_state(netns)
        waited = time.monotonic() - started
        if state == expected or waited > timeout:
            return state, waited
        time.sleep(0.2)


def settle_lab(lab, timeout=30):
    """Wait for what the kernel does by itself once a fresh lab is up: an uplink without a
    static IPv6 address (hv4) takes one by SLAAC from the LAN peer's router advertisements
    (the next one the peer sends, duplicate address detection, then its local route). Done
    when every such uplink holds a global IPv6 address of the LAN and no address is
    tentative: before-and-after snapshots compare the hosts, not the kernel's progress."""
    lan6 = getattr(tuntap_lab, 'LAN_NETWORK6', None)
    deadline = time.monotonic() + timeout
    while True:
        waiting = []
        for name, hv in sorted(lab.hypervisors.items()):
            addresses = network_state(hv['namespace'])['addresses']
            waiting += [(name, address['local']) for items in addresses.values() for address in items
                        if address.get('tentative')]
            if lan6 and not hv.get('uplink_address6') and not any(
                    address.get('family') == 'inet6' and ipaddress.ip_address(address['local']) in lan6
                    for address in addresses.get('eth0', [])):
                waiting.append((name, 'eth0: no SLAAC address in %s yet' % lan6))
        if not waiting:
            return
        assert time.monotonic() < deadline, 'the lab did not settle in %d s: %s' % (timeout, waiting)
        time.sleep(0.2)


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
            booted[name], settled = _settled_state(hv['namespace'], _without_dhcp_table(converged[name]))
            print('%s (%s): power cycle %.2f s, boot path %s, settled after %.2f s' % (
                name, hv['topology'], recreated,
                ', '.join('%s %.2f s' % (step, seconds) for step, seconds in timings.items()), settled))
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
        settle_lab(lab)

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
    'isolated': ['sysctl', 'ifup'],
}


@pytest.mark.parametrize('hypervisor', sorted(tuntap_lab.HYPERVISORS))
def test_boot_path_loads_only_what_a_debian_boot_loads(rebooted_lab, hypervisor):
    lab, _converged, _booted, steps = rebooted_lab
    topology = lab.hypervisors[hypervisor]['topology']
    assert steps[hypervisor] == BOOT_STEPS[topology], steps[hypervisor]
    units = tuntap_lab.enabled_units(lab.unit_dir(hypervisor))
    assert 'nftables.service' not in units
    assert (tuntap_lab.NFT_BOOT_UNIT in units) == (topology in ('routed_nat', 'bridged_nat'))


# ---------------------------------------------------------------- IPv6 (issue 13)

def _hostvars(lab, name):
    with open(lab.inventory) as handle:
        return json.load(handle)['all']['children']['hypervisors']['hosts'][name]


def _global6(state, ifname):
    """The global IPv6 addresses of ifname in a network_state, as IPv6Interface."""
    return [ipaddress.IPv6Interface('%s/%d' % (item['local'], item['prefixlen']))
            for item in state['addresses'].get(ifname, []) if item.get('family') == 'inet6']


def _ipv6_interfaces(lab, name, state):
    """{interface: its host-side IPv6 address} as the inventory plans them (docs/inventory.md,
    IPv6): routed, routed_nat: tapN, ::1 of guest N's network (its address6's, else a /64 of
    tuntap_qemu_pool6; a VDE guest has no tap, and no /64 of the pool); bridged_nat and
    isolated: br0, tuntap_qemu_bridge_address6 (else ::1 of the pool's first /64). Checked
    against state where the plan leaves a choice (which free /64)."""
    hostvars = _hostvars(lab, name)
    topology = hostvars['tuntap_qemu_topology']
    pool6 = ipaddress.IPv6Network(hostvars['tuntap_qemu_pool6']) if hostvars.get('tuntap_qemu_pool6') else None
    wanted = {}
    if topology in tuntap_lab.BRIDGE_TOPOLOGIES:
        if hostvars.get('tuntap_qemu_bridge_address6'):
            wanted['br0'] = ipaddress.IPv6Interface(hostvars['tuntap_qemu_bridge_address6'])
        elif pool6:
            first = next(pool6.subnets(new_prefix=64))
            wanted['br0'] = ipaddress.IPv6Interface('%s/64' % first[1])
    elif topology in ('routed', 'routed_nat'):
        for index, guest in enumerate(hostvars['tuntap_qemu_guests']):
            if guest.get('vde'):
                continue
            tap = 'tap%d' % index
            held = _global6(state, tap)
            if guest.get('address6'):
                network = ipaddress.IPv6Interface(guest['address6']).network
                wanted[tap] = ipaddress.IPv6Interface('%s/%d' % (network[1], network.prefixlen))
            elif pool6:
                # The plan's /64 of the pool: whichever it is, in the pool, the host side ::1.
                mine = [item for item in held if item.network.prefixlen == 64 and item.network.subnet_of(pool6)]
                wanted[tap] = ipaddress.IPv6Interface('%s/64' % mine[0].network[1]) if mine else \
                    'a ::1/64 in %s' % pool6
    return wanted


IPV6_HYPERVISORS = sorted(name for name, hv in tuntap_lab.HYPERVISORS.items()
                          if hv['topology'] in ('routed', 'routed_nat', 'bridged_nat', 'isolated'))


@pytest.mark.parametrize('hypervisor', IPV6_HYPERVISORS)
def test_the_boot_path_brings_ipv6_back(rebooted_lab, hypervisor):
    """What the IPv6 of a dual-stack host is made of comes back at boot from the files the
    converge wrote: the inet6 stanzas of the taps or the bridge (ifup), IPv6 forwarding (the
    sysctl.d file), NAT66 where tuntap_qemu_nat6 (the nft file, our unit) - and is the state
    after the converge (test_boot_path_restores_the_converged_state compares all of it).
    An isolated host does not forward, IPv6 neither."""
    lab, converged, booted, _steps = rebooted_lab
    hv = lab.hypervisors[hypervisor]
    hostvars = _hostvars(lab, hypervisor)
    forwarding = '0' if tuntap_lab.lan_blocked(hv) else '1'
    wanted = _ipv6_interfaces(lab, hypervisor, converged[hypervisor])
    assert wanted, '%s: the lab inventory plans no IPv6 (tuntap_qemu_pool6, _bridge_address6, address6)' % hypervisor
    for when, state in (('after the converge', converged[hypervisor]), ('after the boot path', booted[hypervisor])):
        held = dict((interface, _global6(state, interface)) for interface in wanted)
        assert held == dict((interface, [address]) for interface, address in wanted.items()), \
            '%s %s: IPv6 addresses %s, planned %s' % (hypervisor, when, held, wanted)
        for interface, address in wanted.items():
            routes = [route for route in state['routes'] if route.get('dst') == str(address.network)]
            assert [route.get('dev') for route in routes] == [interface], (hypervisor, when, routes)
        assert state['sysctl']['net.ipv6.conf.all.forwarding'] == forwarding, (hypervisor, when, state['sysctl'])
        # One masquerade is a nat rule and the forward rules that let it through, each
        # commented 'tuntap.qemu masquerade NETWORK oif eth0 | PART'.
        comments = [item['rule'].get('comment', '') for item in state['nftables'] if 'rule' in item]
        masqueraded = [comment for comment in comments if comment.startswith('tuntap.qemu masquerade ')]
        nat66 = sorted(set(comment.split()[2] for comment in masqueraded if ':' in comment.split()[2]))
        planned = sorted(str(address.network) for address in wanted.values()) if hostvars.get('tuntap_qemu_nat6') else []
        assert nat66 == planned, '%s %s: IPv6 sources masqueraded %s, planned %s' % (hypervisor, when, nat66, planned)
        missing = [network for network in planned if 'tuntap.qemu masquerade %s oif eth0 | nat' % network not in comments]
        assert not missing, '%s %s: no nat rule for %s: %s' % (hypervisor, when, missing, masqueraded)
    # The files the boot path read.
    etc = '/etc/netns/%s' % hv['namespace']
    with open(os.path.join(etc, 'network', 'interfaces.d', 'tuntap-qemu')) as handle:
        stanzas = handle.read()
    for interface, address in wanted.items():
        stanza = re.search(r'^iface %s inet6 static\n((?:[ \t]+.*\n)*)' % interface, stanzas, re.M)
        assert stanza and re.search(r'^\s+address %s(/%d)?$' % (address.ip, address.network.prefixlen),
                                    stanza.group(1), re.M), \
            '%s: no inet6 static stanza with %s for %s:\n%s' % (hypervisor, address, interface, stanzas)
    keys = {}
    for filename in sorted(os.listdir(os.path.join(etc, 'sysctl.d'))):
        if filename.endswith('.conf'):
            with open(os.path.join(etc, 'sysctl.d', filename)) as handle:
                keys.update((key.strip().replace('/', '.'), value.strip()) for key, _sign, value in
                            (line.partition('=') for line in handle if '=' in line and line.strip()[:1] not in '#;'))
    if forwarding == '1':
        assert keys.get('net.ipv6.conf.all.forwarding') == '1', (hypervisor, keys)
    else:
        assert keys.get('net.ipv6.conf.all.forwarding', '0') == '0', (hypervisor, keys)
    if hostvars.get('tuntap_qemu_nat6'):
        with open(hostvars['tuntap_qemu_nft_file']) as handle:
            rules = handle.read()
        for address in wanted.values():
            assert 'tuntap.qemu masquerade %s oif eth0 | nat' % address.network in rules, (hypervisor, rules)


def test_site_yml_after_the_reboot_only_starts_the_guests(restarted_lab):
    """Links, forwarding, NAT and files came back from the boot path: the only changes are
    the processes started again - the guests, one per guest, the guests' DHCP server and the
    VDE switch (the lab has no systemd to start their units at boot; the real-host stage
    shows the units back after a real reboot) - and nothing fails."""
    lab, rc, output, _reports = restarted_lab
    assert rc == 0
    # An item's label is "vm1 on tap0 (192.168.1.10/24)", a VDE guest's "vm12 on SOCKET (...)".
    changes = sorted(((host, task, item) for task, status, host, item, _text in results_by_task(output)
                      if status == 'changed'), key=str)
    expected = [(name, GUESTS_TASK, '%s on %s (%s)' % (
        guest['name'], os.path.join(lab.vde_runtime_dir(name), 'vde0.ctl') if guest.get('vde') else 'tap%d' % index,
        guest['address'])) for name, hv in lab.hypervisors.items() for index, guest in enumerate(hv['guests'])]
    dhcp_hosts = [name for name, hv in lab.hypervisors.items() if hv['topology'] in DHCP_TOPOLOGIES]
    expected += [(name, DHCP_TASK, None) for name in dhcp_hosts]
    vde_hosts = [name for name, hv in lab.hypervisors.items() if hv.get('vde')]
    expected += [(name, VDE_TASK, None) for name in vde_hosts]
    assert changes == sorted(expected, key=str), output
    # The recap counts the guests' loop once per host, the DHCP server's start, the switch's.
    assert recap(output) == dict((name, 1 + (name in dhcp_hosts) + (name in vde_hosts)) for name in lab.hypervisors)


def test_the_vde_switch_is_back_with_its_guests(restarted_lab):
    """The power cycle ended hv2's VDE switch by its pidfile and its runtime folder went
    (as /run does); the run after the boot started one switch again, on vde0, and its guests
    are ports of it (their pings: test_guests_ping_again_after_the_reboot)."""
    lab = restarted_lab[0]
    for name, hv in sorted(lab.hypervisors.items()):
        pids = lab.vde_switch_pids(name)
        assert len(pids) == (1 if hv.get('vde') else 0), (name, pids)
        for pid in pids:
            with open('/proc/%d/cmdline' % pid, 'rb') as handle:
                args = handle.read().split(b'\0')
            assert args[args.index(b'--tap') + 1] == b'vde0', args
            assert os.path.exists(os.path.join(lab.vde_runtime_dir(name), 'vde0.ctl', 'ctl')), name


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


def _expected_interfaces_lines(hv, hostvars):
    # A tap per guest but a VDE guest (tapN, N its index in the inventory), and the VDE
    # switch's tap with the switch's address (issue 13).
    taps = ['tap%d' % index for index, guest in enumerate(hv['guests']) if not guest.get('vde')]
    lines = []
    for tap in taps:
        lines += ['+auto %s' % tap, '+    pre-up ip tuntap add dev %s mode tap' % tap]
    if hv.get('vde'):
        lines += ['+auto vde0', '+    pre-up ip tuntap add dev vde0 mode tap', '+    address %s' % hv['vde']['address']]
    if hv['topology'] in ('routed', 'routed_nat'):
        lines += ['+    address %s/%s' % (tuntap_lab.guest_gateway(hv, guest), guest['address'].split('/')[1])
                  for guest in hv['guests']]
    elif hv['topology'] in tuntap_lab.BRIDGE_TOPOLOGIES:
        lines += ['+auto br0', '+    address %s' % hv['bridge_address'], '+    bridge_ports %s' % ' '.join(taps)]
    else:
        lines += ['+iface eth0 inet manual', '+auto br0', '+    address %s/24' % hv['uplink_address'],
                  '+    bridge_ports %s eth0' % ' '.join(taps), '+    bridge_hw eth0']
    # Issue 13: the isolated ports of the bridge, made isolated again at boot.
    lines += ['+    up ip link set dev tap%d type bridge_slave isolated on' % index
              for index, guest in enumerate(hv['guests']) if guest.get('isolated')]
    # Issue 13: the host side IPv6 of each tap (routed: a pool's /64 or the guest's address6)
    # or the bridge (bridged_nat, isolated) in an inet6 stanza of its own.
    pool6 = hostvars.get('tuntap_qemu_pool6')
    if hv['topology'] in ('routed', 'routed_nat'):
        lines += ['+iface tap%d inet6 static' % index for index, guest in enumerate(hostvars['tuntap_qemu_guests'])
                  if (pool6 or guest.get('address6')) and not guest.get('vde')]
    elif hv['topology'] in tuntap_lab.BRIDGE_TOPOLOGIES and (pool6 or hostvars.get('tuntap_qemu_bridge_address6')):
        lines.append('+iface br0 inet6 static')
        if hostvars.get('tuntap_qemu_bridge_address6'):
            lines.append('+    address %s' % hostvars['tuntap_qemu_bridge_address6'])
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
        missing = [line for line in _expected_interfaces_lines(hv, _hostvars(lab, name)) if line not in lines]
        assert not missing, '%s: the diff lacks %s:\n%s' % (name, missing, diffs[0])
        sources = [text for task, status, host, _item, text in results
                   if task == SOURCE_TASK and host == name and status == 'changed']
        assert len(sources) == 1 and '+source /etc/network/interfaces.d/*' in sources[0].splitlines(), sources
