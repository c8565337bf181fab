# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a rollback must restore, read before the change: typed records, JSON-serialisable.

    snap = read(uplink='eth0', bridge='br0', files=['/etc/network/interfaces.d/br0'])
    snap.to_json() / Snapshot.from_json(data)

Links and addresses come from the collection's reader (_links/reading.read_snapshot), the
configured routes from reading.read_routes() (the one the takeover moves), the remaining
lifetimes of non-permanent addresses (a DHCP lease) from one pyroute2 address dump, the DHCP
clients from /proc/*/cmdline, the files from the file system (content kept in memory; the
rollback folder stores it, see arming.py).
"""

from __future__ import annotations

import dataclasses
import os
import socket
from typing import List, Optional

IFA_F_PERMANENT = 0x80
INFINITY_LIFE_TIME = 0xFFFFFFFF
DHCP_CLIENTS = ('dhclient', 'dhcpcd', 'udhcpc')
# dhclient options that take a value (so the value is not the interface)
DHCLIENT_VALUE_OPTIONS = frozenset(('-pf', '-lf', '-cf', '-sf', '-df', '-s', '-g', '-p', '-e',
                                    '--decline-wait-time', '--address-prefix-len',
                                    '--prefix-len-hint', '-timeout'))
# A stand-in or wrapper script run by its interpreter names the client in argv[1].
INTERPRETERS = ('sh', 'bash', 'dash', 'python3', 'python')


@dataclasses.dataclass(frozen=True)
class Address:
    """ADDRESS/PREFIX; lifetimes in seconds at `taken_at` of the snapshot (None: forever)."""
    address: str
    valid_lft: Optional[int] = None
    preferred_lft: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class Route:
    """A configured route through a link, as reading.read_routes() returns it."""
    family: int
    dst: str
    gateway: Optional[str] = None
    metric: Optional[int] = None
    proto: Optional[int] = None
    scope: int = 0
    onlink: bool = False


@dataclasses.dataclass(frozen=True)
class Link:
    """A link as a rollback needs it; exists=False for a link that is not there."""
    name: str
    exists: bool = False
    mac: Optional[str] = None
    master: Optional[str] = None
    alias: Optional[str] = None
    state: str = 'up'
    stp: bool = False
    forward_delay: int = 0
    addresses: List[Address] = dataclasses.field(default_factory=list)
    ports: List[str] = dataclasses.field(default_factory=list)
    routes: List[Route] = dataclasses.field(default_factory=list)
    # The IPv6 addresses the kernel made from the LAN router's advertisements (the link
    # snapshot's `autoconf`): never restored (they come back by themselves), but they say
    # that the link heard an IPv6 router, so the rollback solicits it again.
    autoconf: List[str] = dataclasses.field(default_factory=list)

    def address_texts(self):
        return sorted(address.address for address in self.addresses)


@dataclasses.dataclass(frozen=True)
class DhcpClient:
    """A running DHCP client: its pid, argv, the interface it serves and its pidfile (-pf)."""
    ifname: str
    pid: int
    argv: List[str]
    pidfile: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class SavedFile:
    """A file to restore: absent (exists=False) or its mode, owner and content."""
    path: str
    exists: bool
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    content: Optional[bytes] = dataclasses.field(default=None, compare=False, repr=False)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Everything a rollback restores, read at `taken_at` (epoch seconds)."""
    taken_at: float
    uplink: Link
    bridge: Link
    dhcp: List[DhcpClient] = dataclasses.field(default_factory=list)
    files: List[SavedFile] = dataclasses.field(default_factory=list)

    def uplink_is_port(self):
        """Shape (b): the uplink was a port of the bridge (the change gives it back)."""
        return self.bridge.exists and self.uplink.master == self.bridge.name

    def to_json(self):
        data = dataclasses.asdict(self)
        for entry in data['files']:
            entry.pop('content', None)
        return data

    @classmethod
    def from_json(cls, data):
        def link(entry):
            entry = dict(entry)
            entry['addresses'] = [Address(**item) for item in entry.get('addresses', [])]
            entry['routes'] = [Route(**item) for item in entry.get('routes', [])]
            return Link(**entry)
        return cls(taken_at=data['taken_at'], uplink=link(data['uplink']),
                   bridge=link(data['bridge']),
                   dhcp=[DhcpClient(**item) for item in data.get('dhcp', [])],
                   files=[SavedFile(**item) for item in data.get('files', [])])


# ---------------------------------------------------------------- DHCP clients

def client_program(argv):
    """'dhclient', 'dhcpcd' or 'udhcpc' when argv runs one (also as a script run by its
    interpreter, argv[1]), else None."""
    for word in argv[:2]:
        base = os.path.basename(word)
        if base in DHCP_CLIENTS:
            return base
        if base not in INTERPRETERS:
            return None
    return None


def client_interface(argv):
    """The interface a DHCP client's argv names: its last non-option argument (udhcpc: -i)."""
    program = client_program(argv)
    if program is None:
        return None
    start = 2 if os.path.basename(argv[0]) in INTERPRETERS else 1
    words = argv[start:]
    if program == 'udhcpc':
        for index, word in enumerate(words[:-1]):
            if word in ('-i', '--interface'):
                return words[index + 1]
        return None
    if not words or words[-1].startswith('-'):
        return None
    if len(words) > 1 and words[-2] in DHCLIENT_VALUE_OPTIONS:
        return None
    return words[-1]


def client_pidfile(argv):
    """The pidfile of `-pf FILE` (dhclient) or `-p FILE` (udhcpc), or None."""
    for index, word in enumerate(argv[:-1]):
        if word == '-pf' or (word == '-p' and client_program(argv) == 'udhcpc'):
            return argv[index + 1]
    return None


def read_cmdline(pid, proc='/proc'):
    """argv of a process, [] when it is gone or a kernel thread."""
    try:
        with open(os.path.join(proc, str(pid), 'cmdline'), 'rb') as handle:
            raw = handle.read()
    except OSError:
        return []
    return [word.decode('utf-8', 'surrogateescape') for word in raw.split(b'\0')[:-1]]


def netns_of(pid, proc='/proc'):
    """(st_dev, st_ino) of a process's network namespace ('self' for this one), or None."""
    try:
        stat = os.stat(os.path.join(proc, str(pid), 'ns', 'net'))
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def dhcp_clients(ifnames, proc='/proc'):
    """The DHCP clients of this network namespace whose argv names one of `ifnames`, sorted
    by pid. A client in another namespace (another host of the lab: its br0 is not ours) is
    left out, and so is one whose namespace cannot be read."""
    clients = []
    try:
        entries = os.listdir(proc)
    except OSError:
        return clients
    own = netns_of('self', proc)
    for entry in entries:
        if not entry.isdigit():
            continue
        argv = read_cmdline(entry, proc)
        ifname = client_interface(argv) if argv else None
        if ifname in ifnames and own is not None and netns_of(entry, proc) == own:
            clients.append(DhcpClient(ifname, int(entry), argv, client_pidfile(argv)))
    return sorted(clients, key=lambda client: client.pid)


# ---------------------------------------------------------------- files

def read_file(path):
    """A SavedFile of `path` (its content, mode and owner), or absent."""
    try:
        with open(path, 'rb') as handle:
            stat = os.fstat(handle.fileno())
            content = handle.read()
    except FileNotFoundError:
        return SavedFile(path, False)
    return SavedFile(path, True, stat.st_mode & 0o7777, stat.st_uid, stat.st_gid, content)


# ---------------------------------------------------------------- links

def link_from(snapshot, name, routes, lifetimes):
    """A Link from a _links snapshot record (None: absent), its routes and lifetimes."""
    record = snapshot.get(name)
    if record is None:
        return Link(name)
    addresses = [Address(address, *lifetimes.get((name, address), (None, None)))
                 for address in record['addresses']]
    return Link(name, True, record.get('mac'), record.get('master'), record.get('alias'),
                record.get('state') or 'up', bool(record.get('stp')),
                int(record.get('forward_delay') or 0), addresses,
                sorted(port for port, link in snapshot.items() if link.get('master') == name),
                [Route(**route) for route in routes], sorted(record.get('autoconf') or {}))


def read_lifetimes(ipr, names):
    """{(ifname, 'ADDRESS/PREFIX'): (valid, preferred)} of the addresses of `names` that are
    not IFA_F_PERMANENT (a DHCP lease, SLAAC): one pyroute2 address dump."""
    lifetimes = {}
    indexes = {}
    for name in names:
        try:
            indexes[socket.if_nametoindex(name)] = name
        except OSError:
            continue
    for msg in ipr.get_addr():
        name = indexes.get(msg['index'])
        if name is None:
            continue
        flags = msg.get_attr('IFA_FLAGS')
        if flags is None:
            flags = msg['flags']
        if flags & IFA_F_PERMANENT:
            continue
        cache = msg.get_attr('IFA_CACHEINFO')
        if cache is None:
            continue
        address = msg.get_attr('IFA_LOCAL') or msg.get_attr('IFA_ADDRESS')
        valid, preferred = cache['ifa_valid'], cache['ifa_preferred']
        lifetimes[(name, '%s/%d' % (address, msg['prefixlen']))] = (
            None if valid == INFINITY_LIFE_TIME else valid,
            None if preferred == INFINITY_LIFE_TIME else preferred)
    return lifetimes


def read(uplink, bridge, files, clock=None):
    """The Snapshot of the uplink, the bridge, their DHCP clients and `files`."""
    # pylint: disable=import-outside-toplevel
    import time
    from ansible_collections.tuntap.qemu.plugins.module_utils._links import netlink, reading
    taken_at = (clock or time.time)()
    links = reading.read_snapshot()
    routes = {}
    with netlink.open_netlink() as ipr:
        for name in (uplink, bridge):
            routes[name] = reading.read_routes(ipr, name) if name in links else []
        lifetimes = read_lifetimes(ipr, [name for name in (uplink, bridge) if name in links])
    return Snapshot(taken_at, link_from(links, uplink, routes[uplink], lifetimes),
                    link_from(links, bridge, routes[bridge], lifetimes),
                    dhcp_clients((uplink, bridge)), [read_file(path) for path in files])
