# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The retry policy of every netlink dump reader (rtnl_snapshot.retry_interrupted and its
Backoff), with an injected clock, sleep and random draw: no kernel, no waiting."""

from __future__ import annotations

import errno

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils._links import rtnl_snapshot

Backoff = rtnl_snapshot.Backoff


class FakeClock:
    """time.monotonic and time.sleep: sleeping moves the clock, and is recorded."""

    def __init__(self, read_takes=0.0):
        self.now = 0.0
        self.read_takes = read_takes
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class Reader:
    """read(): interrupted `interruptions` times (None: always), then returns 'dump'."""

    def __init__(self, clock, interruptions=None, error=None):
        self.clock = clock
        self.interruptions = interruptions
        self.error = error or rtnl_snapshot.DumpInterrupted('RTM_GETLINK dump')
        self.reads = 0

    def __call__(self):
        self.reads += 1
        self.clock.now += self.clock.read_takes
        if self.interruptions is None or self.reads <= self.interruptions:
            raise self.error
        return 'dump'


@pytest.mark.parametrize('backoff, retry, draw, expected', [
    pytest.param(Backoff(), 1, 0.0, 0.001, id='first retry: 1 ms'),
    pytest.param(Backoff(), 2, 0.0, 0.002, id='doubles'),
    pytest.param(Backoff(), 8, 0.0, 0.128, id='eighth: 128 ms'),
    pytest.param(Backoff(), 9, 0.0, 0.25, id='capped at 250 ms'),
    pytest.param(Backoff(), 10000, 0.0, 0.25, id='no overflow after many retries'),
    pytest.param(Backoff(), 9, 0.999999, 0.125, id='jitter leaves out up to half'),
    pytest.param(Backoff(), 3, 0.5, 0.003, id='jitter in the middle'),
    pytest.param(Backoff(first=0.01, factor=3.0, longest=1.0), 3, 0.0, 0.09, id='other policy'),
])
def test_pause(backoff, retry, draw, expected):
    assert backoff.pause(retry, lambda: draw) == pytest.approx(expected, rel=1e-5)


def test_default_policy_is_bounded_and_tries_many_times():
    clock = FakeClock()
    reader = Reader(clock)
    with pytest.raises(OSError):
        rtnl_snapshot.retry_interrupted(reader, 'RTM_GETLINK dump', clock=clock,
                                        sleep=clock.sleep, draw=lambda: 0.0)
    assert clock.now == pytest.approx(3.0)  # the whole budget, not a moment more
    assert reader.reads >= 15
    assert max(clock.sleeps) == pytest.approx(0.25)


@pytest.mark.parametrize('interruptions, expected_sleeps', [
    pytest.param(0, [], id='consistent at once: no pause'),
    pytest.param(1, [0.001], id='one interruption'),
    pytest.param(4, [0.001, 0.002, 0.004, 0.008], id='four interruptions'),
])
def test_reads_again_until_consistent(interruptions, expected_sleeps):
    clock = FakeClock()
    reader = Reader(clock, interruptions)
    assert rtnl_snapshot.retry_interrupted(reader, 'RTM_GETLINK dump', clock=clock,
                                           sleep=clock.sleep, draw=lambda: 0.0) == 'dump'
    assert reader.reads == interruptions + 1
    assert clock.sleeps == pytest.approx(expected_sleeps)


def test_jitter_comes_from_draw():
    clock = FakeClock()
    draws = iter([0.0, 0.5, 0.999999])
    rtnl_snapshot.retry_interrupted(Reader(clock, 3), 'dump', clock=clock, sleep=clock.sleep,
                                    draw=lambda: next(draws))
    assert clock.sleeps == pytest.approx([0.001, 0.0015, 0.002], rel=1e-5)


def test_gives_up_after_the_budget_naming_reads_and_seconds():
    clock = FakeClock(read_takes=0.01)
    reader = Reader(clock)
    with pytest.raises(OSError) as caught:
        rtnl_snapshot.retry_interrupted(reader, 'RTM_GETADDR dump', clock=clock,
                                        sleep=clock.sleep, draw=lambda: 0.0,
                                        backoff=Backoff(budget=1.0))
    assert caught.value.errno == errno.EAGAIN
    message = caught.value.strerror
    assert message.startswith('RTM_GETADDR dump: interrupted by concurrent changes %d times in a '
                              'row over 1.0 s' % reader.reads)
    assert 'nothing was changed' in message
    # The last pause is cut to end at the budget; then one more read, which took 10 ms.
    assert clock.now == pytest.approx(1.0 + 0.01)
    assert sum(clock.sleeps) + reader.reads * 0.01 == pytest.approx(clock.now)


def test_a_read_that_takes_the_whole_budget_is_not_retried():
    clock = FakeClock(read_takes=5.0)
    reader = Reader(clock)
    with pytest.raises(OSError) as caught:
        rtnl_snapshot.retry_interrupted(reader, 'dump', clock=clock, sleep=clock.sleep)
    assert reader.reads == 1 and clock.sleeps == []
    assert 'interrupted by concurrent changes 1 times in a row over 5.0 s' in str(caught.value)


def test_other_errors_are_not_retried():
    clock = FakeClock()
    reader = Reader(clock, error=OSError(errno.EPERM, 'RTM_GETLINK dump: Operation not permitted'))
    with pytest.raises(OSError) as caught:
        rtnl_snapshot.retry_interrupted(reader, 'dump', clock=clock, sleep=clock.sleep)
    assert caught.value.errno == errno.EPERM
    assert reader.reads == 1 and clock.sleeps == []


def test_the_interruption_exceptions_are_the_callers():
    """The pyroute2 readers pass pyroute2's NetlinkDumpInterrupted (netlink.dump_interrupted())."""

    class Interrupted(Exception):
        pass

    clock = FakeClock()
    reader = Reader(clock, 2, error=Interrupted())
    assert rtnl_snapshot.retry_interrupted(reader, 'RTM_GETROUTE dump', (Interrupted,),
                                           clock=clock, sleep=clock.sleep) == 'dump'
    assert reader.reads == 3
    # and the snapshot's own DumpInterrupted is then no longer swallowed
    reader = Reader(FakeClock(), 1)
    with pytest.raises(rtnl_snapshot.DumpInterrupted):
        rtnl_snapshot.retry_interrupted(reader, 'dump', (Interrupted,), clock=clock,
                                        sleep=clock.sleep)
