# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 12: a stock Debian guest asks DHCP and gets its planned address and name.

The guest is the real-host stage's Debian 12 image built with `--uplink dhcp`
(tests/realhost/build_image.py, cached under /var/cache/tuntap-qemu/realhost): its
/etc/network/interfaces is the installer's `allow-hotplug eth0` / `iface eth0 inet dhcp`,
nothing in it knows the lab. It boots, from a qcow2 overlay of the image's root.img in the
lab's state folder, as the only guest of a bridged_nat lab hypervisor that site.yml
converges (the LAN, the peer 10.0.0.20 and the hypervisor are namespaces of
tuntap_lab.Lab with a unique prefix). The plan appends no `ip=` for a DHCP guest, so
its address can only come from the host's dnsmasq (tuntap.qemu.guest_dhcp, a pidfile'd
process in the lab, no DNS forwarding: resolvers []).

Proven over SSH from the hypervisor's namespace to the planned address (the image's user
and key, as tests/realhost/realhost.py uses them), within BOOT_TIMEOUT of the converge:
eth0 holds the planned address as a dynamic (DHCP) address and the kernel command line
has no ip=; dhclient's lease names the guest (`option host-name`) and gives that address;
/etc/resolv.conf names the leased DNS server and `getent hosts <guest>.qemu.internal`
answers the planned address through it; the guest pings the LAN peer, which sees only the
hypervisor's uplink address (NAT); the host's lease file holds the guest's lease.

Everything is removed on exit, also after a failure: the guest and the lab's dnsmasq by
the pids in their pidfiles (checked against their command lines), the namespaces by
their prefix, the state folder.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'lab'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'realhost'))

import build_image  # noqa: E402  pylint: disable=wrong-import-position
import realhost  # noqa: E402  pylint: disable=wrong-import-position
import tuntap_lab  # noqa: E402  pylint: disable=wrong-import-position

HYPERVISOR = 'hv3'
GUEST = 'deb1'
GUEST_CIDR = '192.168.5.10/24'
GUEST_ADDRESS = GUEST_CIDR.split('/', maxsplit=1)[0]
BRIDGE_ADDRESS = '192.168.5.1/24'
DOMAIN = 'qemu.internal'
SPECS = {HYPERVISOR: {'uplink_address': '10.0.0.13', 'topology': 'bridged_nat', 'bridge_address': BRIDGE_ADDRESS,
                      'guests': [{'name': GUEST, 'address': GUEST_CIDR}]}}
# Direct kernel boot of the image's own kernel; no ip= (the plan adds none for a DHCP guest).
GUEST_APPEND = 'root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=-1'
GUEST_MEMORY = 1024
# Measured under TCG on this 2-core machine: SSH answers 24-35 s after QEMU starts, 64 s
# while other QEMU tests kept the load at 6-8.
BOOT_TIMEOUT = int(os.environ.get('TUNTAP_DEBIAN_GUEST_TIMEOUT', '120'))
# ifupdown's dhclient for eth0 on Debian 12 (`dhclient -4 -v -i -pf /run/dhclient.eth0.pid
# -lf /var/lib/dhcp/dhclient.eth0.leases ... eth0`).
DHCLIENT_LEASES = '/var/lib/dhcp/dhclient.eth0.leases'


# ---------------------------------------------------------------- the guest over SSH

class GuestShell:
    """Commands on the guest over SSH from a namespace (argv words quoted for the remote shell)."""

    def __init__(self, namespace, address, key, user=realhost.USER):
        self.namespace, self.address, self.key, self.user = namespace, address, key, user

    def argv(self, *command):
        return (['ip', 'netns', 'exec', self.namespace, 'ssh', '-i', self.key] + realhost.SSH_OPTIONS
                + ['-o', 'ConnectTimeout=3', '%s@%s' % (self.user, self.address), shlex.join(command)])

    def run(self, *command, timeout=60):
        return subprocess.run(self.argv(*command), env=realhost.ENV, text=True, check=False, timeout=timeout,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait(self, timeout, alive):
        """Seconds until a login works, or None after timeout or once alive() says no."""
        started = time.monotonic()
        while time.monotonic() - started < timeout and alive():
            try:
                if self.run('true', timeout=15).returncode == 0:
                    return time.monotonic() - started
            except subprocess.TimeoutExpired:
                pass
            time.sleep(1)
        return None


def last_lease(text):
    """{option or keyword: value} of the last `lease { ... }` block of a dhclient lease file
    ('fixed-address', 'host-name', 'domain-name', 'domain-name-servers', 'routers', ...)."""
    blocks = re.findall(r'^lease \{\n(.*?)^\}', text, re.M | re.S)
    if not blocks:
        return {}
    fields = {}
    for line in blocks[-1].splitlines():
        match = re.match(r'\s*(?:option\s+)?([\w-]+)\s+(.*?);\s*$', line)
        if match:
            fields[match.group(1)] = match.group(2).strip('"')
    return fields


def resolv_nameservers(text):
    return [line.split()[1] for line in text.splitlines() if line.startswith('nameserver ') and len(line.split()) > 1]


def guest_checks(guest, name, address, domain, peer):
    """[(check, ok, detail)] of the DHCP guest, all read inside it over SSH."""
    checks = []
    shown = guest.run('ip', '-j', '-4', 'address', 'show', 'dev', 'eth0')
    infos = [info for link in json.loads(shown.stdout or '[]') if shown.returncode == 0
             for info in link.get('addr_info', [])]
    held = ['%s/%s%s' % (info.get('local'), info.get('prefixlen'), ' dynamic' if info.get('dynamic') else '')
            for info in infos]
    checks.append(('eth0 holds the planned %s as a DHCP (dynamic) address' % address,
                   any(info.get('local') == address and info.get('dynamic') for info in infos),
                   'eth0: %s' % (held or shown.stdout.strip()[-300:])))
    cmdline = guest.run('cat', '/proc/cmdline').stdout.strip()
    checks.append(('the kernel command line has no ip= (the address is not the plan\'s kernel argument)',
                   cmdline and not re.search(r'(^|\s)ip=', cmdline), cmdline))
    lease_text = guest.run('sudo', 'cat', DHCLIENT_LEASES).stdout
    lease = last_lease(lease_text)
    checks.append(('dhclient\'s lease names the guest %s and gives %s' % (name, address),
                   lease.get('host-name') == name and lease.get('fixed-address') == address,
                   ', '.join('%s %s' % item for item in sorted(lease.items())
                             if item[0] in ('fixed-address', 'host-name', 'domain-name', 'domain-name-servers',
                                            'routers')) or lease_text.strip()[-300:]))
    servers = [server.strip() for server in lease.get('domain-name-servers', '').split(',') if server.strip()]
    nameservers = resolv_nameservers(guest.run('cat', '/etc/resolv.conf').stdout)
    checks.append(('/etc/resolv.conf names the leased DNS server', servers and nameservers == servers,
                   'resolv.conf %s, lease %s' % (nameservers, servers)))
    fqdn = '%s.%s' % (name, domain)
    resolved = guest.run('getent', 'hosts', fqdn)
    words = resolved.stdout.split()
    checks.append(('getent hosts %s answers %s through it' % (fqdn, address),
                   resolved.returncode == 0 and words[:1] == [address],
                   'exit %d: %s' % (resolved.returncode, resolved.stdout.strip()[-200:])))
    pinged = guest.run('sudo', 'ping', '-n', '-c', '3', '-i', '0.3', '-W', '2', peer)
    summary = re.search(r'\d+ packets transmitted, \d+ received[^\n]*', pinged.stdout)
    checks.append(('the guest pings the LAN peer %s' % peer, pinged.returncode == 0,
                   summary.group(0) if summary else pinged.stdout.strip()[-300:]))
    return checks


# ---------------------------------------------------------------- the lab

def stop_dnsmasq(folder):
    """End the dnsmasq processes whose pidfiles lie under folder, by those pids, each only
    when it is a dnsmasq whose command line names a path under folder (its config, its
    pidfile). Returns the pids ended."""
    ended = []
    for pidfile in glob.glob(os.path.join(glob.escape(folder), '**', '*.pid'), recursive=True):
        try:
            with open(pidfile) as handle:
                pid = int(handle.read().strip())
            with open('/proc/%d/cmdline' % pid, 'rb') as handle:
                args = [arg.decode(errors='replace') for arg in handle.read().split(b'\0') if arg]
        except (OSError, ValueError):
            continue
        if not args or os.path.basename(args[0]) != 'dnsmasq' or not any(folder in arg for arg in args[1:]):
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while os.path.exists('/proc/%d' % pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if os.path.exists('/proc/%d' % pid):
            os.kill(pid, signal.SIGKILL)
        ended.append(pid)
    return ended


def dhcp_vars(lab):
    """The lab's DHCP service: a process (no systemd here), no DNS forwarding (no traffic
    leaves the lab), every file in the lab's state folder."""
    base = os.path.join(lab.state_dir, HYPERVISOR)
    return {
        'tuntap_qemu_dhcp_service': 'process',
        'tuntap_qemu_dhcp_resolvers': [],
        'tuntap_qemu_dhcp_config_dir': os.path.join(base, 'dnsmasq'),
        'tuntap_qemu_dhcp_runtime_dir': os.path.join(lab.state_dir, 'dhcp-run', HYPERVISOR),
        'tuntap_qemu_dhcp_lease_file': os.path.join(base, 'dnsmasq.leases'),
        'tuntap_qemu_dhcp_unit_dir': lab.unit_dir(HYPERVISOR),
    }


def write_guest(lab, image):
    """The lab's inventory with the Debian image as the hypervisor's guest (a qcow2 overlay
    of its root.img in the lab's state folder) and the DHCP variables."""
    overlay = os.path.join(lab.state_dir, '%s.qcow2' % GUEST)
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', os.path.join(image, 'root.img'),
                    overlay], check=True)
    with open(lab.inventory) as handle:
        inventory = json.load(handle)
    host = inventory['all']['children']['hypervisors']['hosts'][HYPERVISOR]
    host['tuntap_qemu_guests'] = [{
        'name': GUEST, 'address': GUEST_CIDR,
        'kernel': os.path.join(image, 'vmlinuz'), 'initrd': os.path.join(image, 'initrd.img'),
        'append': GUEST_APPEND, 'disk': overlay, 'disk_format': 'qcow2', 'memory': GUEST_MEMORY,
        # TCG: `max` boots the Debian kernel several times faster than the default qemu64
        # (realhost.cpu_model); a panic ends QEMU instead of a reboot loop.
        'extra_args': ['-cpu', 'max', '-no-reboot'],
    }]
    host.update(dhcp_vars(lab))
    with open(lab.inventory, 'w') as handle:
        json.dump(inventory, handle, indent=2)


@pytest.fixture(scope='module')
def image():
    if os.geteuid() != 0:
        pytest.fail('the e2e tests create network namespaces and taps: run them as root')
    started = time.monotonic()
    path, built = build_image.build(uplink='dhcp')
    print('\nDebian image (dhcp uplink): %s (%s)' % (
        path, 'built in %.0f s' % built if built else 'cached, %.1f s' % (time.monotonic() - started)))
    return path


@pytest.fixture(scope='module')
def lab(image):
    lab = tuntap_lab.Lab('ttqd%d-' % (os.getpid() % 100000), specs=SPECS)
    try:
        # The lab's test guest is not used: the inventory's guest is the Debian image.
        lab.up('/usr/bin/python3', {'kernel': os.path.join(image, 'vmlinuz'),
                                    'initrd': os.path.join(image, 'initrd.img')})
        write_guest(lab, image)
        yield lab
    finally:
        lab.stop_guests()
        stopped = stop_dnsmasq(lab.state_dir)
        if stopped:
            print('dnsmasq ended: pid %s' % ', '.join(str(pid) for pid in stopped))
        lab.down()


def test_debian_guest_gets_its_planned_address_and_name_by_dhcp(lab, image):
    started = time.monotonic()
    rc, _changed = lab.converge('site.yml')
    converge_seconds = time.monotonic() - started
    assert rc == 0, 'site.yml failed (exit %d):\n%s' % (rc, lab.last_output[-4000:])
    hv = lab.hypervisors[HYPERVISOR]
    pidfile = os.path.join(lab.guest_dir(GUEST), 'qemu.pid')
    serial_log = lab.serial_log({'name': GUEST})

    def serial_tail():
        try:
            with open(serial_log, errors='replace') as handle:
                return '\n'.join(handle.read().splitlines()[-40:])
        except OSError:
            return '(no serial log)'

    guest = GuestShell(hv['namespace'], GUEST_ADDRESS, os.path.join(image, 'id_ed25519'))
    waited = guest.wait(BOOT_TIMEOUT, lambda: tuntap_lab.guest_process(pidfile, GUEST) is not None)
    assert waited is not None, 'no SSH to %s within %d s of the converge (QEMU %s); serial log:\n%s' % (
        GUEST_ADDRESS, BOOT_TIMEOUT, 'running' if tuntap_lab.guest_process(pidfile, GUEST) else 'gone',
        serial_tail())
    print('site.yml %.0f s; SSH to %s %.0f s after the converge' % (converge_seconds, GUEST_ADDRESS, waited))

    checks = guest_checks(guest, GUEST, GUEST_ADDRESS, DOMAIN, tuntap_lab.PEER_ADDRESS)
    counts = lab.source_counts()
    from_host, from_guests = counts.get('%s uplink' % HYPERVISOR, 0), counts.get('%s guests' % HYPERVISOR, 0)
    checks.append(('the LAN peer saw the hypervisor %s, never a guest address' % hv['uplink_address'],
                   from_host > 0 and from_guests == 0,
                   '%d pings from %s, %d from 192.168.5.0/24' % (from_host, hv['uplink_address'], from_guests)))
    leases = host_leases(dhcp_vars(lab)['tuntap_qemu_dhcp_lease_file'])
    checks.append(('the host\'s dnsmasq leased %s to %s' % (GUEST_ADDRESS, GUEST),
                   any(address == GUEST_ADDRESS and name == GUEST for _mac, address, name in leases),
                   'leases %s' % leases))
    for check, ok, detail in checks:
        print('%s %s (%s)' % ('PASS' if ok else 'FAIL', check, detail))
    failed = [check for check, ok, _detail in checks if not ok]
    assert not failed, 'failed: %s\nserial log:\n%s' % ('; '.join(failed), serial_tail())


def host_leases(path):
    """[(mac, address, name)] of a dnsmasq lease file (expiry mac address name client-id)."""
    try:
        with open(path) as handle:
            return [tuple(fields[1:4]) for fields in (line.split() for line in handle) if len(fields) >= 4]
    except OSError:
        return []


@pytest.mark.parametrize('text, expected', [
    ('', {}),
    ('lease {\n  interface "eth0";\n  fixed-address 192.168.5.9;\n  option host-name "old";\n}\n'
     'lease {\n  interface "eth0";\n  fixed-address 192.168.5.10;\n  option subnet-mask 255.255.255.0;\n'
     '  option routers 192.168.5.1;\n  option domain-name-servers 192.168.5.1;\n  option host-name "deb1";\n'
     '  option domain-name "qemu.internal";\n  renew 2 2026/12/01 19:00:00;\n}\n',
     {'interface': 'eth0', 'fixed-address': '192.168.5.10', 'subnet-mask': '255.255.255.0',
      'routers': '192.168.5.1', 'domain-name-servers': '192.168.5.1', 'host-name': 'deb1',
      'domain-name': 'qemu.internal', 'renew': '2 2026/12/01 19:00:00'}),
])
def test_last_lease(text, expected):
    assert last_lease(text) == expected
