# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The network state of a real host, read over SSH, normalised, and compared across a boot.

collect(vm) sends COLLECTOR (Python, standard library only) to the host over SSH and runs it
with sudo: it returns the raw output of `ip -j -d link`, `ip -j addr`, `ip -j route`,
`ip -6 -j route`, `nft -j list ruleset`, `iptables-save`, `ip6tables-save`, the forwarding
sysctls (IPv4 and IPv6), the QEMU processes, the state of the tuntap-qemu* units (and nftables.service),
per guest runtime folder, whether its QEMU runs (pidfile) and answers QMP, the VDE switch
(issue 13: its vde_switch processes, what its runtime folder holds, its ports from its
management socket), the content
hashes of the persisted files (FILE_PATTERNS), and the listening sockets (`ss -Hlnup`,
`ss -Hlntp`, and `ss -Hlnwp`: the raw ICMPv6 socket its router advertisements go out of)
and configuration hashes (DHCP_CONFIG_PATTERNS) of the guests' dnsmasq.

normalise() turns that into flat {section: {key: value}} with what legitimately changes
across a boot taken out (ifindex, pids, nft handles and counters, iptables counters, the
random MACs of taps and the link-local addresses and routes derived from them). A bridge
port's isolation (issue 13, BR_ISOLATED: `ip -d -j link`'s info_slave_data.isolated) is part
of its link entry.
compare() lists every remaining difference; explain() matches each against an allow-list
of (pattern, reason) so that a test asserts each difference explicitly.
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

COLLECTOR = r'''
import glob, json, os, socket, stat, subprocess
ENV = dict(os.environ, LC_ALL='C')
def out(argv):
    r = subprocess.run(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return {'rc': r.returncode, 'out': r.stdout}
def qmp_status(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect(path)
        f = s.makefile('rw')
        json.loads(f.readline())
        for cmd in ('qmp_capabilities', 'query-status'):
            f.write(json.dumps({'execute': cmd}) + '\n'); f.flush()
            while True:
                reply = json.loads(f.readline())
                if 'return' in reply or 'error' in reply:
                    break
        return reply.get('return', {}).get('status') or 'error: %r' % reply.get('error')
    except (OSError, ValueError) as e:
        return 'no QMP: %s' % e
    finally:
        s.close()
state = {}
for key, argv in (('links', ['ip', '-j', '-d', 'link']), ('addrs', ['ip', '-j', 'addr']),
                  ('routes4', ['ip', '-j', 'route', 'show', 'table', 'main']),
                  ('routes6', ['ip', '-6', '-j', 'route', 'show', 'table', 'main']),
                  ('nft', ['nft', '-j', 'list', 'ruleset']), ('iptables', ['iptables-save']),
                  ('ip6tables', ['ip6tables-save']), ('ps', ['ps', '-eo', 'pid=,user=,args=']),
                  ('ss_udp', ['ss', '-Hlnup']), ('ss_tcp', ['ss', '-Hlntp']), ('ss_raw', ['ss', '-Hlnwp'])):
    state[key] = out(argv)
state['sysctl'] = {}
for key in ('net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding'):
    with open('/proc/sys/' + key.replace('.', '/')) as h:
        state['sysctl'][key] = h.read().strip()
units = out(['systemctl', 'list-unit-files', '--no-legend', '--plain', 'tuntap-qemu*'])['out'].split()
units = [u for u in units if u.startswith('tuntap-qemu')]
loaded = out(['systemctl', 'list-units', '--all', '--no-legend', '--plain', 'tuntap-qemu*'])['out'].split()
units = sorted(set(units) | set(u for u in loaded if u.startswith('tuntap-qemu')))
state['units'] = {}
for unit in units + ['nftables.service']:
    state['units'][unit] = {
        'enabled': out(['systemctl', 'is-enabled', unit])['out'].strip(),
        'active': out(['systemctl', 'is-active', unit])['out'].strip()}
state['guests'] = {}
for folder in sorted(glob.glob(RUNTIME_ROOT + '/*/')):
    name = os.path.basename(folder.rstrip('/'))
    if folder.rstrip('/') == VDE_RUNTIME_DIR:
        continue
    guest = {'pid': None, 'args': None, 'qmp': None}
    try:
        with open(folder + 'qemu.pid') as h:
            pid = int(h.read().strip())
        with open('/proc/%d/cmdline' % pid, 'rb') as h:
            guest['args'] = [a.decode() for a in h.read().split(b'\0') if a]
        guest['pid'] = pid
    except (OSError, ValueError):
        pass
    if os.path.exists(folder + 'qmp.sock'):
        guest['qmp'] = qmp_status(folder + 'qmp.sock')
    state['guests'][name] = guest
state['vde_runtime'] = {}
for path in sorted(glob.glob(VDE_RUNTIME_DIR + '/*')):
    kind = 'socket' if stat.S_ISSOCK(os.lstat(path).st_mode) else 'dir' if os.path.isdir(path) else 'file'
    if kind == 'dir':
        # vde_switch -s PATH: a folder with its ctl socket (and one socket per attached
        # port, named after the client's pid: not listed).
        ctl = os.path.join(path, 'ctl')
        kind += ' ctl' if os.path.exists(ctl) and stat.S_ISSOCK(os.lstat(ctl).st_mode) else ''
    state['vde_runtime'][path] = kind
def vde_port_print(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(path)
        buffer = b''
        while b'$ ' not in buffer:
            chunk = s.recv(65536)
            if not chunk:
                return 'error: closed before the prompt'
            buffer += chunk
        s.sendall(b'port/print\n')
        buffer = buffer.partition(b'$ ')[2]
        while b'\n1000 Success' not in buffer:
            chunk = s.recv(65536)
            if not chunk:
                return 'error: closed before 1000 Success'
            buffer += chunk
        return buffer.decode('utf-8', 'replace')
    except OSError as e:
        return 'error: %s' % e
    finally:
        s.close()
state['vde_ports'] = vde_port_print(VDE_MGMT) if os.path.exists(VDE_MGMT) else None
import hashlib
state['files'] = {}
for pattern in FILE_PATTERNS:
    for path in sorted(glob.glob(pattern)):
        if os.path.isfile(path):
            with open(path, 'rb') as h:
                state['files'][path] = hashlib.sha256(h.read()).hexdigest()[:16]
state['dhcp_config'] = {}
for pattern in DHCP_CONFIG_PATTERNS:
    for path in sorted(glob.glob(pattern)):
        if os.path.isfile(path):
            with open(path, 'rb') as h:
                state['dhcp_config'][path] = hashlib.sha256(h.read()).hexdigest()[:16]
with open('/proc/uptime') as h:
    state['uptime'] = float(h.read().split()[0])
with open('/proc/sys/kernel/random/boot_id') as h:
    state['boot_id'] = h.read().strip()
print(json.dumps(state))
'''

DEFAULT_RUNTIME_ROOT = '/run/tuntap-qemu'
# The persisted side (content hashes): what the converge writes and the boot reads.
FILE_PATTERNS = ('/etc/network/interfaces', '/etc/network/interfaces.d/*', '/etc/nftables.conf',
                 '/etc/nftables.d/*', '/etc/sysctl.d/*', '/etc/systemd/system/tuntap-qemu*',
                 '/etc/network/if-*.d/tuntap-qemu*')
# The guests' DHCP and DNS server (tuntap.qemu.guest_dhcp's default config_dir): its own
# section, dhcp_server, with dnsmasq's sockets and process. Not its lease file: the
# guests' leases and their expiry times change while it runs.
DHCP_CONFIG_PATTERNS = ('/etc/tuntap-qemu/dnsmasq/*',)
DHCP_UNIT = 'tuntap-qemu-dnsmasq.service'
# Issue 13's VDE switch (tuntap.qemu.vde_switch's default runtime_dir, inside the guests'
# runtime root: not a guest's folder) and its unit on a systemd host.
VDE_RUNTIME_DIR = DEFAULT_RUNTIME_ROOT + '/vde'
VDE_UNIT = 'tuntap-qemu-vde.service'
# Its management socket (vde_switch --mgmt, root only): `port/print` lists the switch's ports.
VDE_MGMT = VDE_RUNTIME_DIR + '/vde_switch.mgmt'


class Difference(NamedTuple):
    path: str
    before: object
    after: object

    def __str__(self):
        return '%s: %s -> %s' % (self.path, _show(self.before), _show(self.after))


class Explained(NamedTuple):
    difference: Difference
    reason: str | None


def _show(value):
    if value is None:
        return '(absent)'
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def collect(vm, runtime_root=DEFAULT_RUNTIME_ROOT):
    """The raw state of vm's host (a realhost.Vm), over SSH with sudo."""
    source = ('RUNTIME_ROOT = %r\nFILE_PATTERNS = %r\nDHCP_CONFIG_PATTERNS = %r\nVDE_RUNTIME_DIR = %r\nVDE_MGMT = %r\n'
              % (runtime_root, FILE_PATTERNS, DHCP_CONFIG_PATTERNS, VDE_RUNTIME_DIR, VDE_MGMT)) + COLLECTOR
    result = vm.ssh('sudo', '/usr/bin/python3', '-', input_text=source, timeout=120)
    # The state is the last line; ssh's own warnings (stderr, merged) come before it.
    lines = result.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        raise ValueError('the state collector printed no JSON: %s' % result.stdout[-1000:]) from None


# ---------------------------------------------------------------- normalise

def _json(raw, default):
    if raw['rc'] != 0 or not raw['out'].strip():
        return default
    return json.loads(raw['out'])


def normalise_links(links):
    """{ifname: {kind, master, up, operstate, owner, mtu, mac}}; taps' MACs are random. A
    bridge port also has `isolated` (issue 13: BR_ISOLATED, from ip -d's info_slave_data)."""
    result = {}
    for link in links:
        info = link.get('linkinfo') or {}
        data = info.get('info_data') or {}
        kind = info.get('info_kind') or link.get('link_type')
        entry = {
            'kind': kind,
            'master': link.get('master'),
            'up': 'UP' in link.get('flags', []),
            'operstate': link.get('operstate'),
            'mtu': link.get('mtu'),
            # Our mark (tuntap.qemu:tap, tuntap.qemu:bridge ...): what a later prune goes by.
            'alias': link.get('ifalias'),
        }
        if info.get('info_slave_kind') == 'bridge':
            entry['isolated'] = bool((info.get('info_slave_data') or {}).get('isolated'))
        if kind == 'tun':
            entry['tun_type'] = data.get('type')
            entry['owner'] = data.get('user')
            entry['group'] = data.get('group')
        else:
            entry['mac'] = link.get('address')
        result[link['ifname']] = entry
    return result


def normalise_addrs(addrs):
    """{ifname: sorted global addresses}; link-local ones follow the (random) tap MACs. A
    DHCP lease (not permanent) says so: '10.44.0.50/24 dynamic' (its lifetimes count down)."""
    result = {}
    for link in addrs:
        wanted = sorted('%s/%s%s' % (a['local'], a['prefixlen'], ' dynamic' if a.get('dynamic') else '')
                        for a in link.get('addr_info', [])
                        if a.get('scope') != 'link' and a.get('scope') != 'host')
        if wanted:
            result[link['ifname']] = wanted
    return result


def normalise_routes(routes, family):
    result = {}
    for route in routes:
        if family == 6 and route.get('dst', '').startswith('fe80::'):
            continue
        key = '%s dev %s' % (route.get('dst'), route.get('dev'))
        if route.get('gateway'):
            key = '%s via %s dev %s' % (route.get('dst'), route['gateway'], route.get('dev'))
        value = dict((field, route[field]) for field in ('protocol', 'scope', 'prefsrc', 'metric', 'flags')
                     if route.get(field) not in (None, []))
        result[key] = value
    return result


def _strip_nft(value):
    if isinstance(value, dict):
        if 'counter' in value and isinstance(value['counter'], dict):
            return {'counter': 'counted'}
        return dict((key, _strip_nft(item)) for key, item in value.items() if key != 'handle')
    if isinstance(value, list):
        return [_strip_nft(item) for item in value]
    return value


def normalise_nft(ruleset):
    """{'<family> <table>': table attributes, '<family> <table> <chain>': chain, 'rule ...': n}."""
    result = {}
    rules = {}
    for item in ruleset.get('nftables', []):
        kind, body = next(iter(item.items()))
        if kind == 'metainfo':
            continue
        body = _strip_nft(body)
        table = '%s %s' % (body.get('family'), body.get('table', body.get('name')))
        if kind == 'table':
            result['table %s' % table] = body
        elif kind == 'chain':
            result['chain %s %s' % (table, body['name'])] = body
        elif kind == 'rule':
            key = 'rule %s %s %s' % (table, body['chain'], json.dumps(body.get('expr'), sort_keys=True))
            if body.get('comment'):
                key += ' comment=%s' % body['comment']
            rules[key] = rules.get(key, 0) + 1
        else:
            result['%s %s %s' % (kind, table, body.get('name'))] = body
    result.update(rules)
    return result


def normalise_iptables(text):
    """{line: count} of iptables-save without comments and counters."""
    result = {}
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        line = re.sub(r' \[\d+:\d+\]$', '', line)
        line = re.sub(r'^\[\d+:\d+\] ', '', line)
        result[line] = result.get(line, 0) + 1
    return result


def normalise_processes(text):
    """{'user args': count} of the QEMU processes (pids change at every boot)."""
    result = {}
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and 'qemu-system' in parts[2].split(' ', 1)[0]:
            key = '%s %s' % (parts[1], parts[2])
            result[key] = result.get(key, 0) + 1
    return result


def normalise_dhcp_clients(text):
    """{'program interface': count} of the DHCP clients (dhclient, dhcpcd, udhcpc; the
    interface is their last argument, as ifupdown starts them)."""
    result = {}
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3:
            words = parts[2].split()
            program = words[0].rsplit('/', 1)[-1]
            if program in ('dhclient', 'dhcpcd', 'udhcpc') and len(words) > 1:
                key = '%s %s' % (program, words[-1])
                result[key] = result.get(key, 0) + 1
    return result


def _socket_address(address):
    """ss's local address with an IPv6 link-local address (from a tap's random MAC) as
    '[fe80::]' and its interface: '[fe80::5c11:22ff:fe33:4455]%tap0:53' -> '[fe80::]%tap0:53'."""
    return re.sub(r'^\[fe80:[0-9a-f:]*(%[^\]]+)?\]', lambda match: '[fe80::%s]' % (match.group(1) or ''),
                  address, flags=re.I)


def normalise_dhcp_server(ss_udp, ss_tcp, ps, config, ss_raw=''):
    """The guests' DHCP/DNS server: {'socket udp|tcp|raw ADDRESS:PORT': 'dnsmasq'} of every
    socket dnsmasq holds but those on IPv6 link-local addresses (ss -Hlnup/-Hlntp/-Hlnwp;
    '0.0.0.0%tap0:67' is its DHCP socket bound to the one interface it serves, '[fd00:1::1]:53'
    its DNS on the internal IPv6 address, 'raw *:58' the ICMPv6 socket of its router
    advertisements (enable-ra; a raw socket's port is its protocol)), {'process': {'USER ARGS':
    count}} of the dnsmasq processes, {'config PATH': content hash} of its configuration."""
    result = {}
    for protocol, text in (('udp', ss_udp), ('tcp', ss_tcp), ('raw', ss_raw)):
        for line in text.splitlines():
            fields = line.split()
            programs = re.findall(r'\(\("([^"]+)"', line)
            if len(fields) >= 4 and 'dnsmasq' in programs:
                if fields[3].lower().startswith('[fe80:'):
                    # A tap's IPv6 link-local address exists only while the tap has a carrier
                    # (its guest's QEMU attached), and dnsmasq (bind-dynamic) binds it when it
                    # sees it: such a socket follows the guests, not the converge (the real
                    # host's leave-for-routed run had it after the reboot only). The guests'
                    # DHCP and DNS are served on the IPv4 and global IPv6 addresses, which are
                    # compared, and the router advertisements go out of the raw socket.
                    continue
                result['socket %s %s' % (protocol, _socket_address(fields[3]))] = 'dnsmasq'
    processes = {}
    for line in ps.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[2].split(' ', 1)[0].rsplit('/', 1)[-1] == 'dnsmasq':
            key = '%s %s' % (parts[1], parts[2])
            processes[key] = processes.get(key, 0) + 1
    if processes:
        result['process'] = processes
    for path, digest in config.items():
        result['config %s' % path] = digest
    return result


def dhcp_sockets(section):
    """[(protocol, address, port)] of a normalised dhcp_server section."""
    sockets = []
    for key in section:
        if key.startswith('socket '):
            _word, protocol, local = key.split(' ', 2)
            address, _colon, port = local.rpartition(':')
            sockets.append((protocol, address, port))
    return sorted(sockets)


def guest_tap(args):
    for value in args or ():
        match = re.search(r'(?:^|,)ifname=([^,]+)', value)
        if value.startswith('tap,') and match:
            return match.group(1)
    return None


def guest_vde(args):
    """The VDE switch socket of a guest's `-netdev vde,...,sock=PATH` (issue 13), or None."""
    for value in args or ():
        match = re.search(r'(?:^|,)sock=([^,]+)', value)
        if value.startswith('vde,') and match:
            return match.group(1)
    return None


def normalise_guests(guests):
    return dict((name, {'running': guest['pid'] is not None, 'tap': guest_tap(guest['args']),
                        'vde': guest_vde(guest['args']), 'qmp': guest['qmp']})
                for name, guest in guests.items())


VDE_PORT = re.compile(r'^Port (\d+) ')
VDE_ENDPOINT = re.compile(r'^\s*-- endpoint ID \d+ module (.+?)\s*: (.*)$')


def parse_vde_ports(text):
    """The switch's `port/print` reply -> [[(module, endpoint), ...] of each port]:
    'module tuntap      : vde0' is its tap, 'module unix prog   : QEMU user=root pid=42' a
    QEMU on its socket (the port numbers, counters and users of the reply are left out)."""
    ports = []
    for line in (text or '').splitlines():
        if VDE_PORT.match(line):
            ports.append([])
            continue
        match = VDE_ENDPOINT.match(line)
        if match and ports:
            ports[-1].append((match.group(1).strip(), match.group(2).strip()))
    return ports


def vde_port_keys(text, guest_pids):
    """{'port ENDPOINTS': count}: each port by its sorted endpoints ('tuntap vde0', 'unix
    prog QEMU user=root guest=vm12': a QEMU's pid named by the guest whose pidfile holds it,
    'guest=?' for another process), so that a boot's new pids and port numbers do not count."""
    def endpoint(module, name):
        def guest(match):
            return 'guest=%s' % guest_pids.get(int(match.group(1)), '?')
        return '%s %s' % (module, re.sub(r'\bpid=(\d+)', guest, name))
    result = {}
    for port in parse_vde_ports(text):
        key = 'port %s' % ' + '.join(sorted(endpoint(*item) for item in port))
        result[key] = result.get(key, 0) + 1
    return result


def normalise_vde(ps, runtime, ports_text=None, guest_pids=None):
    """The VDE switch (issue 13): {'process USER ARGS': count} of the vde_switch processes
    (its tap, socket, group and mode are on its command line; pids change at every boot),
    {'runtime PATH': 'socket' | 'dir ctl' | 'dir' | 'file'} of what its runtime folder holds
    (vde_switch -s makes the socket path a folder with its ctl socket in it: 'dir ctl'), and
    its ports from its management socket (vde_port_keys; 'ports': the error when it did not
    answer)."""
    result = {}
    if ports_text is not None and ports_text.startswith('error:'):
        result['ports'] = ports_text
    elif ports_text is not None:
        result.update(vde_port_keys(ports_text, guest_pids or {}))
    for line in ps.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[2].split(' ', 1)[0].rsplit('/', 1)[-1] == 'vde_switch':
            key = 'process %s %s' % (parts[1], parts[2])
            result[key] = result.get(key, 0) + 1
    for path, kind in runtime.items():
        result['runtime %s' % path] = kind
    return result


def bridge_ports(links, bridge):
    """{port: isolated} of a bridge's ports in a normalised link section."""
    return dict((name, entry.get('isolated', False)) for name, entry in links.items()
                if entry.get('master') == bridge)


def normalise(raw):
    """Flat {section: {key: value}} of a collect() result."""
    return {
        'link': normalise_links(_json(raw['links'], [])),
        'addr': normalise_addrs(_json(raw['addrs'], [])),
        'route4': normalise_routes(_json(raw['routes4'], []), 4),
        'route6': normalise_routes(_json(raw['routes6'], []), 6),
        'nft': normalise_nft(_json(raw['nft'], {})),
        'iptables': normalise_iptables(raw['iptables']['out']),
        'ip6tables': normalise_iptables(raw['ip6tables']['out']),
        'sysctl': raw['sysctl'],
        'qemu': normalise_processes(raw['ps']['out']),
        'dhcp': normalise_dhcp_clients(raw['ps']['out']),
        'unit': raw['units'],
        'guest': normalise_guests(raw['guests']),
        'vde': normalise_vde(raw['ps']['out'], raw.get('vde_runtime', {}), raw.get('vde_ports'),
                             dict((guest['pid'], name) for name, guest in raw['guests'].items() if guest['pid'])),
        'file': raw.get('files', {}),
        'dhcp_server': normalise_dhcp_server(raw['ss_udp']['out'], raw['ss_tcp']['out'], raw['ps']['out'],
                                             raw.get('dhcp_config', {}), raw.get('ss_raw', {'out': ''})['out']),
    }


# ---------------------------------------------------------------- compare

def compare(before, after):
    """Every difference between two normalise() results, as Difference(path, before, after);
    a path is section/key[/field] ('link/tap0/operstate', 'route4/default via ... dev br0')."""
    differences = []
    for section in sorted(set(before) | set(after)):
        old, new = before.get(section, {}), after.get(section, {})
        for key in sorted(set(old) | set(new)):
            a, b = old.get(key), new.get(key)
            if a == b:
                continue
            if isinstance(a, dict) and isinstance(b, dict):
                for field in sorted(set(a) | set(b)):
                    if a.get(field) != b.get(field):
                        differences.append(Difference('%s/%s/%s' % (section, key, field), a.get(field), b.get(field)))
            else:
                differences.append(Difference('%s/%s' % (section, key), a, b))
    return differences


def explain(differences, allowed):
    """[(difference, reason or None)]: allowed is [(regex on the path, reason)], each
    regex must match the whole path."""
    explained = []
    for difference in differences:
        reason = None
        for pattern, why in allowed:
            if re.fullmatch(pattern, difference.path):
                reason = why
                break
        explained.append(Explained(difference, reason))
    return explained
