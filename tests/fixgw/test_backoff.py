"""The restart back-off of ``fixgw up``'s supervision: doubling, capped, reset after a stable run."""

from __future__ import annotations

from fixgw.backoff import Backoff


def test_doubles_up_to_the_cap_while_the_child_keeps_dying() -> None:
    b = Backoff(initial_s=1.0, cap_s=30.0, stable_s=60.0)
    assert [b.delay(ran_s=0.5) for _ in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert b.restarts == 7


def test_a_child_that_ran_stable_starts_over() -> None:
    b = Backoff(initial_s=1.0, cap_s=30.0, stable_s=60.0)
    for _ in range(5):
        b.delay(ran_s=1.0)
    assert b.delay(ran_s=59.9) == 30.0      # not yet stable: still capped
    assert b.delay(ran_s=60.0) == 1.0       # ran a minute: back to the first delay
    assert b.delay(ran_s=0.1) == 2.0


def test_a_thousand_crashes_do_not_overflow() -> None:
    b = Backoff(initial_s=0.5, cap_s=10.0)
    assert max(b.delay(ran_s=0.0) for _ in range(1000)) == 10.0
