"""Group commit: every write made during one event-loop turn goes into one synced LMDB
transaction.

``append()``/``insert()`` return futures that resolve only after the commit that holds
them: an order is acknowledged only once its record is durable.

Where the commit runs: at the end of the loop turn, in the loop itself, while such commits
are quick (smoothed under ``inline_max_s``) and no earlier batch is still in the writer
thread; otherwise in the writer thread, where the loop does not wait on the disk sync and
the writes of the following loop turns queue up and go into its next transaction, so the
batch size grows with the load (a synced commit costs ~250 us whatever its size). After a
slow inline commit the thread takes the next ``INLINE_PAUSE`` batches: the policy the FIX
store shares, :mod:`fixgw.commitlane`. Committing inline saves two thread hand-offs per
commit (a wake-up each way, and the GIL changing hands twice): measured, 10-15% more durable
appends/s in ``fixgw bench replication``'s append part, and a lower ack latency end to end at
1,000 orders/s (4 of 4 interleaved pairs).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from fixgw.commitlane import INLINE_MAX_S, CommitLanePolicy
from replication.errors import LogClosedError, LogError, LogFullError, RecordEncodeError
from replication.histogram import LatencyHistogram
from replication.hlc import HybridLogicalClock
from replication.log import Inserted, InsertOutcome, RecordLog
from replication.record import Record, Role
from replication.storage_health import LOW_SPACE_BYTES, RECORD_LOG, StorageHealth, free_bytes

log = logging.getLogger(__name__)


CommitListener = Callable[[list[Inserted]], None]


class _Append(NamedTuple):
    fields: Mapping[str, Any]
    future: asyncio.Future[Record]


@dataclass(slots=True)
class _Insert:
    origin_role: Role
    items: list[tuple[Record, bytes]]
    future: asyncio.Future[InsertOutcome]
    complete: tuple[str, int, int] | None = None  # a resend answer's range (WriteBatch.insert)


_Job = _Append | _Insert
# received batches queued while lingering beyond which they are committed at once
_LINGER_MAX_JOBS = 256
_Future = asyncio.Future
_tuple_new = tuple.__new__


def full_reason(error: LogFullError) -> str:
    """What a refused write means, in the words a customer's reject and ``fixgw status`` use."""
    return "disk full" if error.disk else "record log map full (raise map_limit)"


class GroupCommitWriter:
    """The only writer of a :class:`RecordLog` while a node runs.

    ``on_commit`` is called on the loop thread after each commit with the records that
    commit newly inserted (own and received, in commit order), before any future of that
    commit resolves.
    """

    def __init__(
        self,
        log: RecordLog,
        clock: HybridLogicalClock,
        on_commit: CommitListener | None = None,
        *,
        inline_max_s: float = INLINE_MAX_S,
        health: StorageHealth | None = None,
        insert_linger_s: float = 0.0,
    ) -> None:
        """``inline_max_s <= 0``: every commit in the writer thread. ``health``: told of every
        commit refused by a full disk or map, and of the next one that succeeds.
        ``insert_linger_s > 0``: received records wait up to that long for others before their
        commit (own records never wait: an append commits at the end of its loop turn, with
        whatever received records are queued). For a node that nothing waits on for a replica
        (the firm, a street's copy of its peer): at 100 orders/s the firm committed 2.9 times
        per order, each a synced transaction."""
        if insert_linger_s < 0:
            raise ValueError(f"insert_linger_s must be >= 0, got {insert_linger_s!r}")
        self._insert_linger = insert_linger_s
        self._soon = False   # a flush at the end of this loop turn is scheduled
        self._later: asyncio.TimerHandle | None = None   # a lingering flush is scheduled
        self._log = log
        self.health = health if health is not None else StorageHealth()
        self.last_full: LogFullError | None = None  # the latest write refused by a full disk or map
        self._clock = clock
        self._on_commit = on_commit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[_Job] = []
        self._queue: queue.SimpleQueue[list[_Job] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._in_thread = 0  # batches handed to the thread and not yet completed on the loop
        self._lane_policy = CommitLanePolicy(inline_max_s)  # inline or in the thread (fixgw.commitlane)
        self.commits = 0
        self.inline_commits = 0
        self.committed_records = 0
        self.appends = 0  # own records queued (each ends in a commit, or in an error)
        # wall time of each LMDB transaction (write + sync), observed where it runs: one
        # float written per commit, read by the metrics collector at scrape time
        self.commit_latency = LatencyHistogram()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name=f"lmdb-writer-{self._log.node_id}", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._flush()
        self._queue.put(None)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    # -- the loop side ---------------------------------------------------------------------

    def append(self, fields: Mapping[str, Any]) -> asyncio.Future[Record]:
        """Queue an own record; the future gives it (seq and HLC assigned) once durable."""
        loop = self._loop
        if loop is None or self._closed:
            raise LogClosedError(f"the writer of {self._log.path} is not running")
        # asyncio.Future directly: loop.create_future() adds a Python frame (~0.5 us) per append
        fut: asyncio.Future[Record] = _Future(loop=loop)
        pending = self._pending
        self.appends += 1
        if not self._soon:
            self._soon = True
            loop.call_soon(self._flush)  # end of this loop turn: commit the batch (inline or in the thread)
        # tuple.__new__ directly: a NamedTuple's own __new__ is a Python frame (~0.3 us)
        pending.append(_tuple_new(_Append, (fields, fut)))
        return fut

    def insert(self, origin_role: Role, items: list[tuple[Record, bytes]], *,
               complete: tuple[str, int, int] | None = None) -> asyncio.Future[InsertOutcome]:
        """Queue received records (already decoded); idempotent per key. ``complete``: the
        ``(origin, first, last)`` a resend answer covers whole (:meth:`WriteBatch.insert`)."""
        loop = self._loop
        if loop is None or self._closed:
            raise LogClosedError(f"the writer of {self._log.path} is not running")
        if complete is not None and not 1 <= complete[1] <= complete[2]:
            # here, not in the transaction: there it would fail every write of the commit
            raise ValueError(f"{self._log.path}: bad complete range {complete[1]}..{complete[2]} of {complete[0]}")
        fut: asyncio.Future[InsertOutcome] = loop.create_future()
        if not self._soon:
            if self._insert_linger <= 0 or len(self._pending) >= _LINGER_MAX_JOBS:
                self._soon = True
                loop.call_soon(self._flush)
            elif self._later is None:
                self._later = loop.call_later(self._insert_linger, self._flush)
        self._pending.append(_Insert(origin_role, items, fut, complete))
        return fut

    def _flush(self) -> None:
        self._soon = False
        if self._later is not None:
            self._later.cancel()
            self._later = None
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        if self._lane_policy.inline(self._in_thread > 0):
            self._commit_inline(batch)
            return
        self._in_thread += 1
        self._queue.put(batch)

    def _commit_inline(self, jobs: list[_Job]) -> None:
        t = time.perf_counter()
        self.inline_commits += 1
        results, new, error = self._commit(jobs)
        self._lane_policy.inline_took(time.perf_counter() - t)
        self._complete(jobs, results, new, error)

    def _from_thread(self, jobs: list[_Job], results: list[Any], new: list[Inserted],
                     error: BaseException | None) -> None:
        self._in_thread -= 1
        self._complete(jobs, results, new, error)

    def _complete(self, jobs: list[_Job], results: list[Any], new: list[Inserted], error: BaseException | None) -> None:
        health = self.health
        if error is None:
            if not health.ok:
                self._wrote_again()
            self.commits += 1
            self.committed_records += len(new)
            if new and self._on_commit is not None:
                try:
                    self._on_commit(new)
                except Exception:  # a listener bug must not lose acknowledgements
                    log.exception("commit listener failed")
        if error is not None:
            if isinstance(error, LogFullError):
                self._full(error)
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        for job, result in zip(jobs, results):
            fut = job.future
            if fut.done():  # cancelled by its caller; the record is durable all the same
                continue
            if isinstance(result, BaseException):
                fut.set_exception(result)
            else:
                fut.set_result(result)

    def _full(self, error: LogFullError) -> None:
        health = self.health
        self.last_full = error
        if not health.failing(RECORD_LOG):
            log.error("%s: DEGRADED: %s", self._log.path, error)
        health.failed(RECORD_LOG, full_reason(error))

    async def probe(self) -> bool:
        """Whether the log can write again (a small synced transaction, off the loop); reports
        the outcome to ``health`` as a commit would."""
        try:
            await asyncio.to_thread(self._log.probe)
        except LogFullError as exc:
            self._full(exc)
            return False
        except LogError:
            return False
        return self._wrote_again()

    def _wrote_again(self) -> bool:
        """A write succeeded: the log is no longer degraded, unless its disk is still short of
        space (a small commit may succeed on LMDB's free pages while the next one cannot grow
        the file: measured, a full tmpfs let a commit through 6 ms after refusing one)."""
        if not self.health.failing(RECORD_LOG):
            return True
        full = self.last_full
        if full is not None and full.disk:
            free = free_bytes(self._log.path)
            if free is not None and free < LOW_SPACE_BYTES:
                return False
        if self.health.recovered(RECORD_LOG):
            log.warning("%s: the record log writes again: no longer degraded", self._log.path)
        return True

    # -- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            jobs = list(first)
            while True:  # take everything queued meanwhile: one transaction for all of it
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.extend(more)
            self._post(jobs, *self._commit(jobs))
        # anything queued after the stop marker can no longer be written
        while True:
            try:
                rest = self._queue.get_nowait()
            except queue.Empty:
                break
            if rest:
                self._post(rest, [None] * len(rest), [], LogClosedError(f"{self._log.path}: writer closed"))

    def _commit(self, jobs: list[_Job]) -> tuple[list[Any], list[Inserted], BaseException | None]:
        start = time.perf_counter()
        try:
            while True:
                try:
                    return self._commit_once(jobs)
                except LogFullError as exc:
                    if not exc.map_grown:  # at its limit (or the disk is full): the callers see it
                        return [None] * len(jobs), [], exc
                    # the transaction was aborted and the map has grown: the same jobs again (a
                    # bounded loop: each round doubles the map, up to its limit)
        finally:
            self.commit_latency.observe(time.perf_counter() - start)

    def _commit_once(self, jobs: list[_Job]) -> tuple[list[Any], list[Inserted], BaseException | None]:
        results: list[Any] = []
        try:
            with self._log.write(self._clock) as batch:
                batch.reserve_stamps(sum(1 for job in jobs if type(job) is _Append))
                for job in jobs:
                    if isinstance(job, _Append):
                        try:
                            results.append(batch.append(job.fields).record)
                        except (ValueError, TypeError, RecordEncodeError) as exc:
                            results.append(exc if isinstance(exc, ValueError) else ValueError(str(exc)))
                    else:
                        results.append(batch.insert(job.origin_role, job.items, complete=job.complete))
            return results, batch.new, None
        except LogFullError:
            raise
        except LogError as exc:
            return [None] * len(jobs), [], exc
        except BaseException as exc:  # never leave an appender waiting forever
            log.exception("LMDB writer failed")
            return [None] * len(jobs), [], LogError(f"{self._log.path}: writer failed: {exc!r}")

    def _post(self, jobs: list[_Job], results: list[Any], new: list[Inserted], error: BaseException | None) -> None:
        loop = self._loop
        assert loop is not None
        try:
            loop.call_soon_threadsafe(self._from_thread, jobs, results, new, error)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass
