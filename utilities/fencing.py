"""Fencing: a process that may have been presumed dead acts on nothing until it has caught up.

Why (issue 14, item 3): a street utility SIGSTOPped for 6 s (past ``dead_after_s``, 3 s) and
then resumed read the commands queued in its MQTT socket during the pause and sent 411 (second
run: 447) orders its live peer had already taken over to the venue again within 50 ms, and at
once "took over" 10-13 of that peer's orders, because the peer's last heartbeat *in its frozen
view* was 6 s old. A pause, a stall of the event loop or a broker link down for longer than the
liveness timeout means the cluster may have replaced this process: what it believes (who is
alive, which order is still to be sent) is stale.

The rule, one module for every role that has it: the street utilities (no venue send, no
take-over of a peer's orders) and the customer utilities' session ownership
(:mod:`utilities.session_owner`: every owned session dropped at the fence, no session taken and
no order routed until it is lifted, a session's owner presumed dead on fresh evidence only).
The customer utilities had a stall detector of their own, with its own notion of "caught up"
(every *live* peer's digest, judged on the liveness view the pause had frozen); one detector
now serves both roles, so the two cannot drift apart:

- **noticing**: a watchdog ticks every ``interval`` (0.1 s); a gap between ticks longer than
  ``dead_after_s`` (the monotonic clock jumped: SIGSTOP, a swapped-out or stalled process) or
  a broker link down for longer than that fences the process. :meth:`Fence.may_act` also looks
  at the gap *synchronously*, so the first thing that runs after a SIGCONT (which may be a
  queued command, before the watchdog's own tick) already sees the jump;
- **fenced**: nothing is sent to a venue and nothing is taken over; commands are refused (the
  customer utilities' router repeats a command until it is answered, so nothing is lost);
- **lifted**: once the broker link is up, at least ``2 * heartbeat_s`` have passed since the
  fence (every live peer has published a digest *after* our wake-up) and this node holds every
  record those digests announce (:meth:`Fence.caught_up`): then it knows which orders its peers
  sent and took over while it stood still;
- **fresh evidence**: a peer may be presumed dead only by a process that has itself been
  running, unfenced and connected, for ``dead_after_s`` (:meth:`Fence.may_presume_dead`): a
  heartbeat missing in that window is missing at the broker, not in a frozen view. This also
  keeps two street utilities from taking over each other's orders right after a broker
  restart (both links were down: neither heard the other, neither was silent).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Fence", "FencedNode"]

log = logging.getLogger(__name__)


class FencedNode(Protocol):
    """What the fence reads of the record node: its link, its peers' digests, its holdings."""

    @property
    def connected(self) -> bool: ...

    def peer_digests(self) -> dict[str, Any]: ...

    @property
    def log(self) -> Any: ...


class Fence:
    """The stall detector and the rule above for one process (``run`` is its watchdog task)."""

    def __init__(self, name: str, node: FencedNode, *, dead_after_s: float, heartbeat_s: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.node = node
        self.dead_after_s = dead_after_s
        self.heartbeat_s = heartbeat_s
        self._monotonic = monotonic
        now = monotonic()
        self._last_tick = now
        self._link_down_since: float | None = None
        self.fenced_at: float | None = None
        self.why = ""
        self.clear_since = now          # running, unfenced and connected since
        self._on_lift: list[Callable[[], None]] = []
        self._on_fence: list[Callable[[str], None]] = []
        self._stale: dict[str, Any] = {}  # the peers' digests as they were when fenced
        self.counters = {"fenced": 0, "lifted": 0}

    # ------------------------------------------------------------------ questions
    @property
    def fenced(self) -> bool:
        return self.fenced_at is not None

    def _check_gap(self) -> None:
        now = self._monotonic()
        gap = now - self._last_tick
        if gap > self.dead_after_s:
            self._last_tick = now
            self.fence(f"the process stood still for {gap:.1f}s")

    def may_act(self) -> bool:
        """Whether this process may send to a venue or take anything over now (on the loop
        thread: a jump seen here fences at once, and the ``on_fence`` callbacks run)."""
        self._check_gap()
        return self.fenced_at is None

    def stalled(self) -> bool:
        """Whether this process is fenced, or stood still past the liveness timeout and its
        watchdog has not seen it yet: a read only, safe from any thread (the FIX store's)."""
        return self.fenced_at is not None or self._monotonic() - self._last_tick > self.dead_after_s

    def may_presume_dead(self, silent_for: float | None) -> bool:
        """Whether a peer silent for ``silent_for`` seconds (None: never heard) may be taken as dead:
        only on fresh evidence, gathered while this process ran unfenced and connected."""
        if not self.may_act() or not self.node.connected:
            return False
        if self._monotonic() - self.clear_since < self.dead_after_s:
            return False
        return silent_for is None or silent_for > self.dead_after_s

    def caught_up(self) -> bool:
        """This node holds every record announced by each peer digest heard since the fence (a peer
        not heard since is not alive for us: waiting for it would fence us for good)."""
        hwms = self.node.log.high_water_marks()
        return all(hwms.get(p, 0) >= d.head for p, d in self.node.peer_digests().items()
                   if self._stale.get(p) is not d)

    # ------------------------------------------------------------------ actions
    def on_lift(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` each time the fence is lifted (e.g. to settle what was withheld)."""
        self._on_lift.append(callback)

    def on_fence(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(why)`` each time this process is fenced (e.g. to drop its sessions)."""
        self._on_fence.append(callback)

    def fence(self, why: str) -> None:
        first = self.fenced_at is None
        if first:
            self.counters["fenced"] += 1
            self.why = why
            log.warning("%s: fenced: %s: sending nothing, taking nothing over until caught up with the peers",
                        self.name, why)
        self.fenced_at = self._monotonic()
        self._stale = dict(self.node.peer_digests())
        if first:
            for cb in self._on_fence:
                try:
                    cb(why)
                except Exception:
                    log.exception("%s: on being fenced", self.name)

    def tick(self) -> None:
        """One watchdog step (``run`` calls it every ``interval``)."""
        self._check_gap()
        now = self._last_tick = self._monotonic()
        if not self.node.connected:
            if self._link_down_since is None:
                self._link_down_since = now
            elif now - self._link_down_since > self.dead_after_s:
                self.fence(f"cut off from the broker for {now - self._link_down_since:.1f}s")
            self.clear_since = now
            return
        self._link_down_since = None
        if self.fenced_at is not None and now - self.fenced_at >= 2 * self.heartbeat_s and self.caught_up():
            log.warning("%s: caught up with the peers %.1fs after the fence (%s): acting again", self.name,
                        now - self.fenced_at, self.why)
            self.fenced_at = None
            self.clear_since = now
            self.counters["lifted"] += 1
            for cb in self._on_lift:
                try:
                    cb()
                except Exception:
                    log.exception("%s: after lifting the fence", self.name)

    async def run(self, interval: float = 0.1) -> None:
        self._last_tick = self._monotonic()
        while True:
            await asyncio.sleep(interval)
            self.tick()
