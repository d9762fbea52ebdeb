"""The one stall detector of street and customer utilities (utilities.fencing), in frozen time.

The node it reads is a plain value here (its link, its peers' digests, its high-water marks):
the rule is pure logic over those and the monotonic clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from utilities.fencing import Fence


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@dataclass(frozen=True)
class Digest:
    head: int


@dataclass
class Log:
    hwms: dict[str, int] = field(default_factory=dict)

    def high_water_marks(self) -> dict[str, int]:
        return dict(self.hwms)


@dataclass
class Node:
    connected: bool = True
    digests: dict[str, Digest] = field(default_factory=dict)
    log: Log = field(default_factory=Log)

    def peer_digests(self) -> dict[str, Digest]:
        return dict(self.digests)


def fence_on(node: Node, clock: Clock) -> Fence:
    return Fence("cfu1", node, dead_after_s=2.0, heartbeat_s=0.3, monotonic=clock)


def test_a_jump_fences_at_once_and_calls_back_once() -> None:
    clock, node = Clock(), Node()
    f = fence_on(node, clock)
    dropped: list[str] = []
    f.on_fence(dropped.append)
    clock.t += 1.0
    f.tick()
    assert f.may_act() and not f.stalled()
    clock.t += 5.0                              # SIGSTOP: the watchdog has not ticked yet
    assert f.stalled()                          # the FIX store's thread sees it without acting
    assert not dropped
    assert not f.may_act()                      # the first thing on the loop fences
    assert len(dropped) == 1 and "stood still for 5.0s" in dropped[0]
    f.fence("again")
    assert len(dropped) == 1 and f.counters["fenced"] == 1


def test_lifted_only_once_caught_up_with_digests_heard_since() -> None:
    clock, node = Clock(), Node(digests={"cfu2": Digest(10), "ssu1": Digest(5)})
    node.log.hwms = {"cfu2": 10, "ssu1": 5}
    f = fence_on(node, clock)
    lifted: list[bool] = []
    f.on_lift(lambda: lifted.append(True))
    clock.t += 5.0
    f.tick()
    assert f.fenced
    clock.t += 0.7
    node.digests["cfu2"] = Digest(40)           # cfu2 wrote meanwhile; ssu1 not heard since
    f.tick()
    assert f.fenced and not lifted              # cfu2's records 11..40 are not here yet
    node.log.hwms["cfu2"] = 40
    clock.t += 0.1
    f.tick()
    assert not f.fenced and lifted == [True] and f.may_act()


def test_a_peer_is_presumed_dead_only_on_fresh_evidence() -> None:
    clock, node = Clock(), Node()
    f = fence_on(node, clock)
    clock.t += 1.0
    f.tick()
    assert not f.may_presume_dead(10.0)         # not running clear for dead_after_s yet
    clock.t += 1.5
    f.tick()
    assert f.may_presume_dead(10.0) and f.may_presume_dead(None) and not f.may_presume_dead(1.0)
    node.connected = False
    f.tick()
    assert not f.may_presume_dead(10.0)         # cut off: a silence is not evidence
    node.connected = True
    clock.t += 0.1
    f.tick()
    assert not f.may_presume_dead(10.0)         # clear again only since now
    for _ in range(21):
        clock.t += 0.1
        f.tick()
    assert f.may_presume_dead(10.0)


def test_a_long_broker_outage_fences() -> None:
    clock, node = Clock(), Node(connected=False)
    f = fence_on(node, clock)
    for _ in range(30):
        clock.t += 0.1
        f.tick()
    assert f.fenced and "cut off from the broker" in f.why
