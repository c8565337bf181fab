# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who else holds the DHCP server port (UDP 67) or the DNS port (53) where our dnsmasq would
listen: `ss -H -l -n -u -t -p` lines parsed into records, and the conflicts among them.

    UNCONN 0 0 0.0.0.0%virbr0:67 0.0.0.0:* users:(("dnsmasq",pid=1042,fd=3))

A socket bound to a device (0.0.0.0%virbr0) only sees that device's packets: libvirt's dnsmasq
on virbr0 and systemd-resolved on 127.0.0.53 never clash with us. Pure functions.
"""

from __future__ import annotations

import dataclasses
import re
import typing

_USER = re.compile(r'\("((?:[^"\\]|\\.)*)",pid=(\d+),fd=\d+\)')
WILDCARDS = ('0.0.0.0', '::', '*')


@dataclasses.dataclass(frozen=True)
class Socket:
    protocol: str                # udp or tcp
    address: str                 # '0.0.0.0', '::', '192.168.3.1', '*'
    device: typing.Optional[str]  # the %device of a socket bound to one
    port: int
    processes: typing.Tuple[typing.Tuple[str, int], ...]   # (name, pid)

    @property
    def wildcard(self):
        return self.address in WILDCARDS


def parse_local(text):
    """('address', device or None, port) of ss's local address column, or None."""
    host, sep, port = text.rpartition(':')
    if not sep or not port.isdigit():
        return None
    device = None
    if '%' in host:
        host, device = host.split('%', 1)
    if host.startswith('[') and host.endswith(']'):
        host = host[1:-1]
    return host, device, int(port)


def parse_ss(text, protocol=None):
    """Socket records of `ss -H -l -n [-u|-t] -p` output. With both -u and -t the first column
    is the protocol (udp/tcp); with one of them pass `protocol`."""
    sockets = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        proto = protocol
        if fields[0] in ('udp', 'tcp'):
            proto = fields[0]
            fields = fields[1:]
        # State Recv-Q Send-Q Local Peer [Process]
        if len(fields) < 5 or proto is None:
            continue
        local = parse_local(fields[3])
        if local is None:
            continue
        processes = tuple((name, int(pid)) for name, pid in _USER.findall(' '.join(fields[5:])))
        sockets.append(Socket(proto, local[0], local[1], local[2], processes))
    return sockets


@dataclasses.dataclass(frozen=True)
class Conflict:
    socket: Socket
    pid: typing.Optional[int]
    why: str


def conflicts(sockets, interfaces, addresses, ours):
    """Conflict records: sockets of other processes that would take our guests' DHCP or DNS.

    interfaces: our interface names; addresses: their IPv4 addresses; ours: pids of our
    dnsmasq (never a conflict)."""
    found = []
    for sock in sockets:
        pids = [pid for _name, pid in sock.processes]
        if pids and all(pid in ours for pid in pids):
            continue
        why = None
        if sock.protocol == 'udp' and sock.port == 67:
            if sock.device in interfaces:
                why = 'a DHCP server socket on %s' % sock.device
            elif sock.device is None and sock.wildcard:
                why = 'a DHCP server socket on every interface (%s:67, bound to no device)' % sock.address
        elif sock.port == 53:
            if sock.address in addresses and (sock.device is None or sock.device in interfaces):
                why = 'the DNS port %s/53 on %s' % (sock.protocol, sock.address)
            elif sock.wildcard and (sock.device is None or sock.device in interfaces):
                why = 'the DNS port %s/53 on %s%s (every address)' % (
                    sock.protocol, sock.address, '%' + sock.device if sock.device else '')
        if why:
            others = [pid for pid in pids if pid not in ours] or [None]
            found.append(Conflict(sock, others[0], why))
    return found


def conflict_error(conflict, command_of):
    """The error text naming the process; command_of(pid) -> its command line or None."""
    if conflict.pid is None:
        who = 'a process that ss could not name (run as root to see it)'
    else:
        names = [name for name, pid in conflict.socket.processes if pid == conflict.pid]
        command = command_of(conflict.pid)
        who = 'process %d (%s%s)' % (conflict.pid, names[0] if names else '?',
                                     ': %s' % command if command else '')
    return ('%s holds %s; our dnsmasq would clash with it: stop it or bind it elsewhere '
            '(bind-interfaces / interface= of another dnsmasq, a listen address of another DNS '
            'server), then run again' % (who, conflict.why))
