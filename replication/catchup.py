"""Anti-entropy: deciding which ranges to ask an origin to resend (pure logic, no I/O).

A node holds, per origin, a contiguous high-water mark ``hwm`` (every seq 1..hwm is
here). It learns that something is missing in two ways: a received record leaves a gap
(``next_held`` > hwm + 1), or the origin's digest announces a head beyond what is here
(the tail was lost silently, e.g. a broker restarted without persistence). Either way it
asks the origin for the first missing range, like a FIX ResendRequest.

This class only decides; the node sends. It does not ask again for a range it asked
for less than ``retry_after`` seconds ago (the resend is probably on its way), and caps
a request at ``chunk`` records so that a long outage is caught up in bounded steps.
A head announced by a digest counts only ``grace`` seconds later, and only while the
high-water mark of that origin has not moved for ``grace`` seconds: records published
before the digest may still be on their way (a replica catching up a backlog lags behind
the digests), and asking for them would only duplicate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MissingRange:
    origin: str
    first: int
    last: int


@dataclass(slots=True)
class _Asked:
    first: int
    last: int
    at: float


class CatchUp:
    def __init__(
        self,
        *,
        retry_after: float = 2.0,
        chunk: int = 5000,
        grace: float = 0.5,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if retry_after <= 0 or chunk < 1 or grace < 0:
            raise ValueError("CatchUp needs retry_after > 0, chunk >= 1 and grace >= 0")
        self._retry_after = retry_after
        self._grace = grace
        self._announced: dict[str, tuple[int, float]] = {}
        self._progress: dict[str, tuple[int, float]] = {}  # origin -> (hwm, since when)
        self._chunk = chunk
        self._now = monotonic
        self._asked: dict[str, _Asked] = {}
        self._heads: dict[str, int] = {}

    def head(self, origin: str) -> int:
        """The highest seq of ``origin`` known to exist for at least ``grace`` seconds."""
        announced = self._announced.get(origin)
        if announced is not None and self._now() - announced[1] >= self._grace:
            del self._announced[origin]
            if announced[0] > self._heads.get(origin, 0):
                self._heads[origin] = announced[0]
        return self._heads.get(origin, 0)

    def saw_head(self, origin: str, head: int) -> None:
        """``origin`` announced (in a digest) that it has records up to ``head``.

        The origin's latest word is the truth: a head lower than one announced before takes
        its place (the higher one was forged, or came from a log since lost), so that a node
        never asks for ever for records nobody has (issue 14: a forged head of 10**12 kept
        two nodes asking while every log was complete).
        """
        known = self._heads.get(origin, 0)
        announced = self._announced.get(origin)
        if head < known or (announced is not None and head < announced[0]):
            self._heads[origin] = min(known, head)
            self._announced.pop(origin, None)
            return
        if head <= known:
            return
        announced = self._announced.get(origin)
        if announced is None:
            self._announced[origin] = (head, self._now())
        elif head > announced[0] and self._now() - announced[1] >= self._grace:
            self._heads[origin] = max(self._heads.get(origin, 0), announced[0])
            self._announced[origin] = (head, self._now())

    def wanted(self, origin: str, hwm: int, next_held: int | None) -> MissingRange | None:
        """The range to request now for ``origin``, or None.

        ``hwm``: contiguous high-water mark here; ``next_held``: the lowest seq held above
        hwm (None if nothing is held above it). The range is hwm+1 .. (next_held - 1), or
        up to the known head when nothing is held above hwm.
        """
        now = self._now()
        asked = self._asked.get(origin)
        answered = asked is not None and hwm >= asked.last
        if answered:
            del self._asked[origin]
            asked = None
        seen = self._progress.get(origin)
        if seen is None or seen[0] != hwm:
            self._progress[origin] = seen = (hwm, now)
        if next_held is not None:
            last = next_held - 1
        elif answered or now - seen[1] >= self._grace:
            # our own request explains the progress: go on with the next chunk at once
            last = self.head(origin)
        else:
            return None  # still moving: what the digest announced is probably on its way
        first = hwm + 1
        if last < first:
            return None
        last = min(last, first + self._chunk - 1)
        if asked is not None and asked.first <= first <= asked.last and now - asked.at < self._retry_after:
            return None  # an answer to the request in flight will cover it
        self._asked[origin] = _Asked(first, last, now)
        return MissingRange(origin, first, last)

    def forget(self, origin: str) -> None:
        self._asked.pop(origin, None)
