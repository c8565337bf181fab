#!/usr/bin/env python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print the ports of a vde_switch as JSON: vde_ports.py MANAGEMENT_SOCKET

A client of its own for the switch's management socket (vde_switch --mgmt): `port/print`,
each port's endpoints ("-- endpoint ID 0003 module unix prog   : QEMU user=root pid=42",
"module tuntap      : vde0"). The test does not take the module's word for the switch.
"""

from __future__ import annotations

import json
import re
import socket
import sys

PROMPT = b'$ '
ENDPOINT = re.compile(r'^\s*-- endpoint ID \d+ module (.+?)\s*: (.*)$')
PORT = re.compile(r'^Port (\d+) ')


def read_until(sock, buffer, token):
    while token not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit('the management socket closed before %r' % token)
        buffer += chunk
    head, _sep, rest = buffer.partition(token)
    return head, rest


def main():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(sys.argv[1])
    _banner, rest = read_until(sock, b'', PROMPT)
    sock.sendall(b'port/print\n')
    reply, _rest = read_until(sock, rest, b'\n1000 Success')
    ports = []
    for line in reply.decode('utf-8', 'replace').splitlines():
        match = PORT.match(line)
        if match:
            ports.append({'port': int(match.group(1)), 'endpoints': []})
            continue
        match = ENDPOINT.match(line)
        if match and ports:
            ports[-1]['endpoints'].append({'module': match.group(1).strip(), 'name': match.group(2).strip()})
    json.dump({'ports': ports}, sys.stdout)
    sock.close()


if __name__ == '__main__':
    main()
