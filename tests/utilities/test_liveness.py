"""Node heartbeats and liveness: the codec, dead-after timing with a frozen clock, and telling
a second process that runs under the same node id from the node itself."""

from __future__ import annotations

import msgpack
import pytest

from utilities.liveness import HEARTBEAT_VERSION, Heartbeat, Liveness, another_run_of


def test_heartbeat_round_trip_and_the_older_form_without_instance() -> None:
    hb = Heartbeat("ssu1", "street", "ready", ("exchange", "fund"), 4242, "h/4242/abcd")
    assert Heartbeat.decode(hb.encode()) == hb
    old = msgpack.packb([HEARTBEAT_VERSION, "ssu1", "street", "ready", ["exchange"], 7])
    assert Heartbeat.decode(old) == Heartbeat("ssu1", "street", "ready", ("exchange",), 7, "")


def test_heartbeat_sessions_round_trip_and_absent_in_older_heartbeats() -> None:
    hb = Heartbeat("cfu1", "customer", "ready", (), 11, "h/11/ab", ("CLIENT1", "CLIENT2"))
    assert Heartbeat.decode(hb.encode()) == hb
    assert Heartbeat.decode(hb.encode()).sessions == ("CLIENT1", "CLIENT2")
    before = msgpack.packb([HEARTBEAT_VERSION, "cfu1", "customer", "ready", [], 11, "h/11/ab"])
    assert Heartbeat.decode(before).sessions == ()
    with pytest.raises(ValueError):
        Heartbeat.decode(msgpack.packb([HEARTBEAT_VERSION, "cfu1", "customer", "ready", [], 11, "i", "CLIENT1"]))


@pytest.mark.parametrize("raw", [b"", b"\x91\x01", msgpack.packb([99, "a", "b", "c", [], 1]),
                                 msgpack.packb([HEARTBEAT_VERSION, 1, "b", "c", [], 1])])
def test_malformed_heartbeats_raise_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        Heartbeat.decode(raw)


def test_alive_until_silent_for_dead_after() -> None:
    now = [100.0]
    live = Liveness(3.0, monotonic=lambda: now[0])
    assert not live.alive("cfu1") and not live.ever_seen("cfu1")
    live.saw(Heartbeat("cfu1", "customer", "ready"))
    now[0] += 3.0
    assert live.alive("cfu1")
    now[0] += 0.1
    assert not live.alive("cfu1") and live.ever_seen("cfu1")
    live.saw(Heartbeat("cfu1", "customer", "stopping"))
    assert not live.alive("cfu1")  # a node saying it stops is not routed to


def test_another_run_of_this_node() -> None:
    me = "host/10/aaaa"
    assert another_run_of(Heartbeat("cfu1", "customer", "ready", instance="host/11/bbbb"), "cfu1", me)
    assert not another_run_of(Heartbeat("cfu1", "customer", "ready", instance=me), "cfu1", me)  # our own echo
    assert not another_run_of(Heartbeat("cfu2", "customer", "ready", instance="x"), "cfu1", me)  # a peer
    assert not another_run_of(Heartbeat("cfu1", "customer", "stopping", instance="x"), "cfu1", me)  # on its way out
    assert not another_run_of(Heartbeat("cfu1", "customer", "ready"), "cfu1", me)  # an older build: unknown


def test_heartbeat_carries_the_sessions_a_customer_utility_owns() -> None:
    hb = Heartbeat("cfu1", "customer", "ready", (), 42, "h/42/ab", ("CLIENT1", "CLIENT2"))
    assert Heartbeat.decode(hb.encode()) == hb
    # a heartbeat of a version that did not have the field: no sessions
    older = msgpack.packb([HEARTBEAT_VERSION, "cfu1", "customer", "ready", [], 42, "h/42/ab"])
    assert Heartbeat.decode(older).sessions == ()
