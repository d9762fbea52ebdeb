"""Hybrid logical clock: physical time plus a logical counter plus the node id.

"The earlier event wins" must mean the same thing on every node even when their wall
clocks disagree, so every record carries an :class:`Hlc` and records compare by
``(wall_ns, logical, node)``: a total order with the node id as tie-break.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

PhysicalClock = Callable[[], int]
"""Returns physical time in nanoseconds since the epoch (injected so tests can freeze it)."""


@dataclass(frozen=True, slots=True, order=True)
class Hlc:
    wall_ns: int
    logical: int
    node: str

    def __post_init__(self) -> None:
        if not isinstance(self.wall_ns, int) or self.wall_ns < 0:
            raise ValueError(f"Hlc.wall_ns must be a non-negative int, got {self.wall_ns!r}")
        if not isinstance(self.logical, int) or self.logical < 0:
            raise ValueError(f"Hlc.logical must be a non-negative int, got {self.logical!r}")
        if not isinstance(self.node, str) or not self.node:
            raise ValueError(f"Hlc.node must be a non-empty str, got {self.node!r}")

    def __str__(self) -> str:
        return f"{self.wall_ns}.{self.logical}@{self.node}"


class _HlcShell:
    """An Hlc under construction: the same slots, not frozen, so that building one is three
    plain attribute stores and a __class__ assignment (CPython allows it between identical
    layouts) instead of __init__ and its checks, which cost more than the clock itself. For
    values valid by construction (now_many) or already checked (the record decoder)."""

    __slots__ = Hlc.__slots__


def hlc_unchecked(wall_ns: int, logical: int, node: str) -> Hlc:
    """An Hlc from values the caller has checked (non-negative ints, a non-empty node)."""
    h: Any = _HlcShell()
    h.wall_ns = wall_ns
    h.logical = logical
    h.node = node
    h.__class__ = Hlc
    return cast(Hlc, h)


class HybridLogicalClock:
    """Kulkarni et al. HLC. ``now()`` for local events, ``observe()`` for received ones."""

    def __init__(self, node: str, physical: PhysicalClock = time.time_ns) -> None:
        if not node:
            raise ValueError("HybridLogicalClock needs a non-empty node id")
        self._node = node
        self._physical = physical
        self._wall = 0
        self._logical = 0
        # now() may be called from the LMDB writer thread as well as the loop thread.
        self._lock = threading.Lock()

    @property
    def node(self) -> str:
        return self._node

    def now(self) -> Hlc:
        with self._lock:
            pt = self._physical()
            if pt > self._wall:
                self._wall, self._logical = pt, 0
            else:
                self._logical += 1
            return Hlc(self._wall, self._logical, self._node)

    def now_many(self, n: int) -> list[Hlc]:
        """``n`` consecutive ``now()`` stamps under one lock (for group commit).

        Added for the LMDB writer: building the stamps without re-validating values made
        here costs ~0.3 us each instead of ~2.4 us for ``now()``.
        """
        out: list[Hlc] = []
        if n <= 0:
            return out
        node = self._node
        with self._lock:
            pt = self._physical()
            if pt > self._wall:
                self._wall, self._logical = pt, -1
            wall, logical = self._wall, self._logical
            for _ in range(n):
                logical += 1
                out.append(hlc_unchecked(wall, logical, node))
            self._logical = logical
        return out

    def observe(self, remote: Hlc) -> Hlc:
        """Merge a timestamp seen on a received record; returns the new local timestamp."""
        with self._lock:
            pt = self._physical()
            wall = max(self._wall, remote.wall_ns, pt)
            if wall == self._wall and wall == remote.wall_ns:
                logical = max(self._logical, remote.logical) + 1
            elif wall == self._wall:
                logical = self._logical + 1
            elif wall == remote.wall_ns:
                logical = remote.logical + 1
            else:
                logical = 0
            self._wall, self._logical = wall, logical
            return Hlc(wall, logical, self._node)
