"""Orders in flight at a customer utility (utilities.in_flight): the bounds, the holds and their
hysteresis, per session and in all, without sockets."""

from __future__ import annotations

import pytest

from replication.record import RecordType
from utilities.in_flight import ANSWERED, InFlight, InFlightLimits, low_water


def test_a_session_is_held_at_its_bound_and_released_at_the_low_water_mark() -> None:
    f: InFlight[str] = InFlight(total_bound=100, default_per_session=8)
    started = [f.add(f"t{i}", "A") for i in range(8)]
    assert started == [False] * 7 + [True]          # the 8th order reaches the bound: hold
    assert f.is_held("A") and not f.is_held("B") and f.full("A") and not f.full("B")
    assert low_water(8) == 6
    assert [f.answered("t0"), f.answered("t1")] == [False, True]   # 7 (still held), 6: released
    assert not f.is_held("A") and f.count("A") == 6 and f.total == 6
    assert f.peak == 8 and f.times_held == 1
    assert f.add("t8", "A") is False and f.add("t9", "A") is True  # back at 8: held again
    assert f.times_held == 2


def test_the_total_bound_holds_every_session() -> None:
    f: InFlight[str] = InFlight(total_bound=10, default_per_session=100)
    for i in range(5):
        f.add(f"a{i}", "A")
    for i in range(4):
        f.add(f"b{i}", "B")
    assert not f.all_held
    assert f.add("c0", "C") is True                 # the 10th in all
    assert f.all_held and all(f.is_held(k) for k in ("A", "B", "C", "D"))
    assert f.full("D")                              # even a session with none in flight
    for i in range(2):
        f.answered(f"a{i}")
    assert f.all_held                               # 8: above low water (7)
    f.answered("a2")
    assert not f.all_held and f.releasing(["A", "B", "C"]) == ["A", "B", "C"]


def test_per_session_override_unknown_answers_and_repeats() -> None:
    f: InFlight[str] = InFlight(total_bound=100, default_per_session=50, per_session=lambda k: 2 if k == "SMALL" else None)
    assert f.bound("SMALL") == 2 and f.bound("OTHER") == 50
    f.add("x", "SMALL")
    assert f.add("x", "SMALL") is False and f.count("SMALL") == 1   # the same order counts once
    assert f.add("y", "SMALL") is True
    assert f.answered("nope") is False and f.answered("y") is True   # 1 <= low water of 2 (1)
    assert f.answered("y") is False and f.total == 1
    assert f.counts == {"SMALL": 1}
    f.answered("x")
    assert f.counts == {} and f.txns == {}


def test_what_answers_an_order_is_the_venue_not_the_street_sending_it() -> None:
    assert RecordType.SENT not in ANSWERED and RecordType.TAKEOVER not in ANSWERED
    assert {RecordType.VENUE_ACK, RecordType.FILL, RecordType.VENUE_REJECT, RecordType.CANCELED} <= ANSWERED


def test_limits_validate_and_give_each_customer_its_policy() -> None:
    lim = InFlightLimits(total=10, per_session=5, policy="pause", customer_policies={"C": "reject"})
    assert lim.policy_of("C") == "reject" and lim.policy_of("D") == "pause"
    with pytest.raises(ValueError, match="policy"):
        InFlightLimits(policy="drop")
    with pytest.raises(ValueError, match=">= 1"):
        InFlightLimits(total=0)
    with pytest.raises(ValueError, match=">= 1"):
        InFlight(total_bound=1, default_per_session=0)
