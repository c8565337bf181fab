#!/usr/bin/env python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print a QEMU guest's QMP query-status as JSON: qmp_status.py SOCKET

A client of its own, so the test does not take the module's word for the guest's state.
"""

from __future__ import annotations

import json
import socket
import sys


def qmp_reply(reader):
    """The next message that is not an asynchronous event."""
    while True:
        message = json.loads(reader.readline())
        if 'event' not in message:
            return message


def main():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(sys.argv[1])
    reader = sock.makefile('rb')
    greeting = qmp_reply(reader)
    if 'QMP' not in greeting:
        raise SystemExit('no QMP greeting: %r' % greeting)
    for command in ('qmp_capabilities', 'query-status'):
        sock.sendall(json.dumps({'execute': command}).encode('utf-8') + b'\n')
        reply = qmp_reply(reader)
        if 'return' not in reply:
            raise SystemExit('QMP %s failed: %r' % (command, reply))
    sock.close()
    print(json.dumps(reply['return']))


if __name__ == '__main__':
    main()
