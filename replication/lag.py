"""How far a node is behind each origin whose records it holds: records and seconds (issue 19 item 2).

Records behind: the origin's highest sequence number this node has heard of (its digests'
announced head, or a record of it received out of order) minus the contiguous high-water mark.
That alone says how much, not for how long: 3,000 records behind is nothing for a node that
applies 20,000 a second and a problem for one stuck since yesterday. Seconds behind: the age of
the oldest announcement not yet covered, i.e. this node holds everything the origin had
announced that many seconds ago (0 when it holds all it heard of). An origin's digest comes
every ``digest_interval`` (0.5 s on the default cluster), so the figure is good to about that.

Measured before this (issue 19): after five 50,000-order benches back to back the street
utilities were 300,000 records behind each other, and nothing said so but a sum in ``fixgw
status``. A node more than ``behind_after_s`` seconds behind an origin now says so: a warning
in its log when it falls behind (and a line when it has caught up), a ``behind`` list in its
status file, ``fixgw status`` and the ``fixgw_replication_behind`` metric.

Memory: per origin, one (head, first heard) pair per announcement that raised the head, only
while not covered, at most ``MAX_MARKS`` (beyond it the newest pair's head moves up instead,
which keeps the oldest time, the one the figure depends on). No timer: the figures are computed
when asked (status file once a second, metrics scrape).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

MAX_MARKS = 256
DEFAULT_BEHIND_AFTER_S = 5.0


@dataclass(frozen=True, slots=True)
class OriginLag:
    records: int
    seconds: float

    def as_dict(self) -> dict[str, float]:
        return {"records": self.records, "seconds": round(self.seconds, 3)}


@dataclass
class LagTracker:
    behind_after_s: float = DEFAULT_BEHIND_AFTER_S
    monotonic: Callable[[], float] = time.monotonic
    _marks: dict[str, collections.deque[tuple[int, float]]] = field(default_factory=dict)
    _heads: dict[str, int] = field(default_factory=dict)
    behind: set[str] = field(default_factory=set)   # origins more than behind_after_s behind, at the last report

    def __post_init__(self) -> None:
        if not self.behind_after_s > 0:
            raise ValueError(f"behind_after_s must be > 0, not {self.behind_after_s!r}")

    def heard(self, origin: str, head: int) -> None:
        """The origin has records up to ``head`` (its digest said so, or one of them arrived)."""
        if head <= self._heads.get(origin, 0):
            return
        self._heads[origin] = head
        marks = self._marks.get(origin)
        if marks is None:
            marks = self._marks[origin] = collections.deque()
        if len(marks) >= MAX_MARKS:
            marks[-1] = (head, marks[-1][1])
        else:
            marks.append((head, self.monotonic()))

    def report(self, hwms: Mapping[str, int]) -> dict[str, OriginLag]:
        """Per origin heard of: records and seconds behind, given the high-water marks now held."""
        now = self.monotonic()
        out: dict[str, OriginLag] = {}
        for origin, head in self._heads.items():
            hwm = hwms.get(origin, 0)
            marks = self._marks[origin]
            while marks and marks[0][0] <= hwm:
                marks.popleft()
            out[origin] = OriginLag(max(0, head - hwm), now - marks[0][1] if marks else 0.0)
        return out

    def update_behind(self, lags: Mapping[str, OriginLag]) -> tuple[list[str], list[str]]:
        """The origins this node fell behind, and those it caught up with, since the last call."""
        now_behind = {o for o, lag in lags.items() if lag.seconds > self.behind_after_s}
        fell = sorted(now_behind - self.behind)
        caught = sorted(self.behind - now_behind)
        self.behind = now_behind
        return fell, caught
