"""The hybrid logical clock, with a frozen (hand-driven) physical clock."""

from __future__ import annotations

import dataclasses

import pytest

from replication.hlc import Hlc, HybridLogicalClock, hlc_unchecked


class FrozenClock:
    def __init__(self, t: int) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


def test_now_is_strictly_increasing_while_physical_time_stands_still() -> None:
    phys = FrozenClock(1000)
    clock = HybridLogicalClock("a", phys)
    stamps = [clock.now() for _ in range(5)]
    assert stamps == [Hlc(1000, i, "a") for i in range(5)]


def test_now_follows_physical_time_and_resets_the_counter() -> None:
    phys = FrozenClock(1000)
    clock = HybridLogicalClock("a", phys)
    clock.now()
    clock.now()
    phys.t = 2000
    assert clock.now() == Hlc(2000, 0, "a")


def test_physical_clock_going_back_does_not_go_back() -> None:
    phys = FrozenClock(5000)
    clock = HybridLogicalClock("a", phys)
    first = clock.now()
    phys.t = 10  # wall clock stepped back
    second = clock.now()
    assert second > first and second == Hlc(5000, 1, "a")


def test_observe_a_remote_timestamp_ahead_of_us() -> None:
    clock = HybridLogicalClock("a", FrozenClock(1000))
    got = clock.observe(Hlc(9000, 4, "b"))
    assert got == Hlc(9000, 5, "a")
    assert clock.now() == Hlc(9000, 6, "a")  # everything after is later than what we saw


def test_observe_a_remote_timestamp_behind_us() -> None:
    phys = FrozenClock(1000)
    clock = HybridLogicalClock("a", phys)
    clock.now()
    assert clock.observe(Hlc(10, 99, "b")) == Hlc(1000, 1, "a")


def test_observe_same_wall_takes_the_larger_counter() -> None:
    phys = FrozenClock(1000)
    clock = HybridLogicalClock("a", phys)
    clock.now()  # (1000, 0)
    assert clock.observe(Hlc(1000, 7, "b")) == Hlc(1000, 8, "a")


def test_observe_when_physical_time_is_ahead_of_both() -> None:
    phys = FrozenClock(1000)
    clock = HybridLogicalClock("a", phys)
    clock.now()
    phys.t = 5000
    assert clock.observe(Hlc(2000, 3, "b")) == Hlc(5000, 0, "a")


def test_total_order_with_node_id_tie_break() -> None:
    stamps = [Hlc(2, 0, "a"), Hlc(1, 5, "z"), Hlc(1, 5, "b"), Hlc(1, 0, "c")]
    assert sorted(stamps) == [Hlc(1, 0, "c"), Hlc(1, 5, "b"), Hlc(1, 5, "z"), Hlc(2, 0, "a")]
    assert Hlc(1, 5, "b") != Hlc(1, 5, "z")  # equal only when the node is the same too


def test_two_nodes_exchanging_messages_keep_causality() -> None:
    pa, pb = FrozenClock(1000), FrozenClock(500)  # b's wall clock is behind
    a, b = HybridLogicalClock("a", pa), HybridLogicalClock("b", pb)
    sent = a.now()
    b.observe(sent)
    reply = b.now()
    assert reply > sent  # the reply is ordered after the message it answers
    a.observe(reply)
    assert a.now() > reply


@pytest.mark.parametrize(("wall", "logical", "node"), [(-1, 0, "a"), (0, -1, "a"), (0, 0, "")])
def test_invalid_hlc_values_are_refused(wall: int, logical: int, node: str) -> None:
    with pytest.raises(ValueError):
        Hlc(wall, logical, node)


def test_clock_needs_a_node() -> None:
    with pytest.raises(ValueError):
        HybridLogicalClock("")


def test_now_many_continues_the_same_sequence_as_now() -> None:
    phys = FrozenClock(1000)
    clock = HybridLogicalClock("a", phys)
    first = clock.now()
    batch = clock.now_many(3)
    after = clock.now()
    assert [first, *batch, after] == [Hlc(1000, i, "a") for i in range(5)]
    phys.t = 2000
    assert clock.now_many(2) == [Hlc(2000, 0, "a"), Hlc(2000, 1, "a")]
    assert clock.now_many(0) == []
    assert clock.now() == Hlc(2000, 2, "a")
    assert all(isinstance(h, Hlc) and h.node == "a" for h in batch)


def test_fast_built_stamps_are_real_frozen_hlcs() -> None:
    clock = HybridLogicalClock("a", physical=FrozenClock(1000))
    for h in [*clock.now_many(2), hlc_unchecked(5, 1, "b")]:
        assert type(h) is Hlc and h == Hlc(h.wall_ns, h.logical, h.node) and hash(h) == hash(Hlc(h.wall_ns, h.logical, h.node))
        with pytest.raises(dataclasses.FrozenInstanceError):
            h.logical = 9  # type: ignore[misc]
    assert clock.now_many(1)[0] > Hlc(1000, 1, "a") > hlc_unchecked(999, 7, "z")
