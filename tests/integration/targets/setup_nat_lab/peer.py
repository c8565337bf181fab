# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Traffic endpoints of the NAT lab: a server that tells each peer its address, and a client.

    peer.py serve --name NAME --tcp 7000,80 --udp 7001 --ready FILE
        Listens on every address (IPv4 and IPv6) of the namespace it runs in and answers
        each TCP connection and each UDP datagram with "NAME:PORT ADDRESS\\n": the port
        that answered, and the peer's address as the server sees it (IPv4-mapped IPv6
        addresses shown as IPv4).
        Touches FILE once every socket is bound. Runs until killed.

    peer.py ask tcp|udp HOST PORT [--timeout SECONDS]
        Prints the server's answer and exits 0, or exits 1 when nothing answers in time
        (refused, dropped, no route).

The NAT proof: a LAN namespace without a route back to the guest subnet answers a guest
only through the masquerade, and then names the host's uplink address.
"""

from __future__ import annotations

import argparse
import ipaddress
import selectors
import socket
import sys


def _shown(address):
    ip = ipaddress.ip_address(address.split('%')[0])
    if ip.version == 6 and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ip)


def _listen(kind, port):
    sock = socket.socket(socket.AF_INET6, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(('::', port))
    if kind == socket.SOCK_STREAM:
        sock.listen(16)
    sock.setblocking(False)
    return sock


def serve(args):
    selector = selectors.DefaultSelector()
    for port in filter(None, args.tcp.split(',')):
        selector.register(_listen(socket.SOCK_STREAM, int(port)), selectors.EVENT_READ,
                          ('tcp', '%s:%s' % (args.name, port)))
    for port in filter(None, args.udp.split(',')):
        selector.register(_listen(socket.SOCK_DGRAM, int(port)), selectors.EVENT_READ,
                          ('udp', '%s:%s' % (args.name, port)))
    with open(args.ready, 'w') as handle:
        handle.write('ready\n')
    while True:
        for key, _events in selector.select():
            sock = key.fileobj
            kind, name = key.data
            try:
                if kind == 'tcp':
                    conn, peer = sock.accept()
                    with conn:
                        conn.settimeout(2)
                        conn.sendall(('%s %s\n' % (name, _shown(peer[0]))).encode())
                else:
                    _data, peer = sock.recvfrom(2048)
                    sock.sendto(('%s %s\n' % (name, _shown(peer[0]))).encode(), peer)
            except OSError:
                continue


def ask(args):
    family = socket.AF_INET6 if ':' in args.host else socket.AF_INET
    kind = socket.SOCK_STREAM if args.protocol == 'tcp' else socket.SOCK_DGRAM
    sock = socket.socket(family, kind)
    sock.settimeout(args.timeout)
    try:
        if args.protocol == 'tcp':
            sock.connect((args.host, args.port))
            answer = sock.recv(256)
        else:
            sock.sendto(b'hello\n', (args.host, args.port))
            answer, _peer = sock.recvfrom(256)
    except OSError as exc:
        print('no answer from %s %s:%d: %s' % (args.protocol, args.host, args.port, exc),
              file=sys.stderr)
        return 1
    finally:
        sock.close()
    sys.stdout.write(answer.decode())
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest='command', required=True)
    server = commands.add_parser('serve')
    server.add_argument('--name', required=True)
    server.add_argument('--tcp', default='')
    server.add_argument('--udp', default='')
    server.add_argument('--ready', required=True)
    client = commands.add_parser('ask')
    client.add_argument('protocol', choices=['tcp', 'udp'])
    client.add_argument('host')
    client.add_argument('port', type=int)
    client.add_argument('--timeout', type=float, default=2.0)
    args = parser.parse_args(argv)
    if args.command == 'serve':
        serve(args)
        return 0
    return ask(args)


if __name__ == '__main__':
    sys.exit(main())
