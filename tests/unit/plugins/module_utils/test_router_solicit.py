# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""router_solicit: one RS to all routers, tried again while the link cannot send yet."""

from __future__ import annotations

import errno

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._links import router_solicit


class FakeSocket:
    def __init__(self, failures):
        self.failures = list(failures)
        self.sent = []
        self.closed = False

    def sendto(self, data, address):
        if self.failures:
            raise OSError(self.failures.pop(0), 'fake')
        self.sent.append((data, address))

    def close(self):
        self.closed = True


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_the_message_is_a_router_solicitation():
    assert router_solicit.message() == b'\x85\x00\x00\x00\x00\x00\x00\x00'
    assert router_solicit.message('02:45:00:00:00:50') == (
        b'\x85\x00\x00\x00\x00\x00\x00\x00' b'\x01\x01' b'\x02\x45\x00\x00\x00\x50')


@pytest.mark.parametrize('failures, sent, result', [
    pytest.param([], 1, True, id='sent at once'),
    pytest.param([errno.EADDRNOTAVAIL] * 5, 1, True, id='link-local tentative, then sent'),
    pytest.param([errno.EADDRNOTAVAIL] * 100, 0, False, id='never a link-local address: gives up'),
])
def test_solicit(monkeypatch, failures, sent, result):
    monkeypatch.setattr(router_solicit.socket, 'if_nametoindex', lambda name: 7)
    sock = FakeSocket(failures)
    clock = Clock()
    assert router_solicit.solicit('br0', wait=3.0, pause=0.1, clock=clock, sleep=clock.sleep,
                                  open_socket=lambda index: sock, mac_of=lambda name: '02:00:00:00:00:07') is result
    assert sock.closed
    assert sock.sent == [(router_solicit.message('02:00:00:00:00:07'), ('ff02::2', 0, 0, 7))] * sent
    assert clock.now <= 3.1


def test_other_errors_are_raised(monkeypatch):
    monkeypatch.setattr(router_solicit.socket, 'if_nametoindex', lambda name: 7)
    sock = FakeSocket([errno.EPERM])
    with pytest.raises(OSError):
        router_solicit.solicit('br0', open_socket=lambda index: sock, mac_of=lambda name: None)
    assert sock.closed
