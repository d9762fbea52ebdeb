"""Where a durable commit runs: in the event loop itself, or in a writer thread.

Both the FIX message store (:mod:`fixgw.engine`) and the record log's group commit
(``replication/writer.py``) make the same choice, with this one policy. Committing in the loop
saves two thread hand-offs per commit (a wake-up each way, the GIL changing hands twice):
~10 us less CPU per FIX message, 10-15% more durable appends/s in ``fixgw bench replication``.
But a slow disk would then stall the loop: while commits are slow (their duration, smoothed,
above ``INLINE_MAX_S``) the thread takes the next ``INLINE_PAUSE`` commits, during whose
fsyncs the loop goes on reading and handling messages, and the writes of the following loop
turns queue up for the thread's next commit (the batch grows with the load). A commit never
runs in the loop while one is in the thread: it would overtake it.

``INLINE_PAUSE``: the engine had 128, the record writer 64. Measured one after the other on
this 2-core machine while it also ran other engineers' loads (load average 13-18):
``fixgw bench replication`` durable appends 4,655/s with 64, 3,547/s with 128 (4,249/s for the
code before the merge), replicated records and lag within the run-to-run spread, which is 2-3x
at that load. The pause only matters once inline commits are slow (above 2 ms smoothed), and
these runs do not separate the two values: 64 is kept, as it returns to the cheaper inline
commits sooner after a slow spell. Measure again on a quiet machine before tuning it.
This module is pure (no fixgw import): the replication package may use it.
"""

from __future__ import annotations

__all__ = ["INLINE_MAX_S", "INLINE_PAUSE", "CommitLanePolicy"]

INLINE_MAX_S = 0.002  # inline commits slower than this (s, smoothed) ...
INLINE_PAUSE = 64  # ... send this many commits to the thread


class CommitLanePolicy:
    """Decides, commit by commit, inline or in the thread. ``max_s <= 0``: always the thread.
    Defaults are read when the policy is made (tests may change the module's constants)."""

    __slots__ = ("_avg", "_slow", "max_s", "pause")

    def __init__(self, max_s: float | None = None, pause: int | None = None) -> None:
        self.max_s = INLINE_MAX_S if max_s is None else max_s
        self.pause = INLINE_PAUSE if pause is None else pause
        self._avg = 0.0  # inline commits' duration (s), smoothed
        self._slow = 0  # commits still to go to the thread after slow inline ones

    def inline(self, thread_busy: bool) -> bool:
        """Commit this one in the loop? Never while the thread has a commit (order first)."""
        if thread_busy or self.max_s <= 0:
            return False
        if self._slow:
            self._slow -= 1
            return False
        return True

    def inline_took(self, seconds: float) -> None:
        """An inline commit took ``seconds``: a smoothed duration, so one late fsync is not a
        slow disk."""
        avg = self._avg = 0.75 * self._avg + 0.25 * seconds
        if avg > self.max_s:
            self._slow = self.pause
            self._avg = 0.0
