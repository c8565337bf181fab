#!/usr/bin/env python
"""A foreign server for the coexistence checks: binds one socket, forks into the background,
writes its pid to PIDFILE and sleeps (the test ends it by that pid).

    foreign_socket.py udp|tcp ADDRESS PORT DEVICE|- PIDFILE
"""

import os
import socket
import sys
import time


def main(protocol, address, port, device, pidfile):
    kind = socket.SOCK_DGRAM if protocol == 'udp' else socket.SOCK_STREAM
    sock = socket.socket(socket.AF_INET, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if device != '-':
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode() + b'\0')
    sock.bind((address, int(port)))
    if kind == socket.SOCK_STREAM:
        sock.listen(1)
    pid = os.fork()
    if pid:
        with open(pidfile, 'w') as handle:
            handle.write('%d\n' % pid)
        return 0
    os.setsid()
    for fd in (0, 1, 2):
        os.close(fd)
    time.sleep(600)
    return 0


if __name__ == '__main__':
    sys.exit(main(*sys.argv[1:]))
