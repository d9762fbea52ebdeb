"""The record log's LMDB map grows by itself, up to a configured limit.

Why: an LMDB map is a fixed reservation of address space, and a write past its end fails
with MDB_MAP_FULL: with the former fixed 4 GiB and ~340 bytes a record, four records an
order, a node filled it in under an hour of full load (1,000 orders/s) and then could not
write at all. ``Environment.set_mapsize`` grows the map in place, but LMDB leaves one rule
to its caller: no transaction of this process may be active, because the file is mapped
again (maybe at another address) and a reader in the middle of the old mapping would read
unmapped memory. So:

* every read of :class:`~replication.log.RecordLog` passes a :class:`ReadGate` (a count of
  readers, re-entrant per thread; ~0.3 us a read);
* the writer grows the map before it begins a transaction (it holds the log's write lock, so
  no write transaction is active) once the used part passes :data:`GROW_AT` of the map:
  to twice the size, at most the limit. It waits a moment for the readers in the gate to
  leave (they are short: the loop thread's lookups) and otherwise tries again at its next
  write, which leaves half the map to spare meanwhile;
* a transaction that finds the map full all the same (one larger than the free part) is
  aborted, the map grows, and the writer runs it again (:class:`LogFullError` with
  ``map_grown``); at the limit, the caller gets :class:`LogFullError` and nothing of the
  transaction is durable.

At :data:`WARN_AT` of the limit the log warns (once per crossing), and
:meth:`MapGrowth.usage` is what ``status.json`` shows. "Used" is LMDB's highest page in use
(``last_pgno``): an insert-only log frees few pages, so it is the file's size, a slight
overestimate of the live data.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import lmdb

log = logging.getLogger(__name__)

GROW_AT = 0.5  # grow once the used part passes this share of the map
URGENT_AT = 0.85  # ... and past this share, wait longer for readers to leave
WARN_AT = 0.8  # warn once the used part passes this share of the limit
READER_WAIT_S = 0.05  # how long a growth waits for readers before trying at the next write
URGENT_READER_WAIT_S = 2.0
PAGE = 4096


def round_up_to_page(size: int) -> int:
    return -(-size // PAGE) * PAGE


@dataclass(frozen=True, slots=True)
class MapUsage:
    """How much of a log's map is used: bytes used, the map's size now, the most it may grow to."""

    used: int
    size: int
    limit: int

    @property
    def of_limit(self) -> float:
        return self.used / self.limit if self.limit else 1.0

    @property
    def near_limit(self) -> bool:
        """At or past :data:`WARN_AT` of the limit: time to raise it or archive."""
        return self.used >= WARN_AT * self.limit

    def as_dict(self) -> dict[str, Any]:
        return {"used": self.used, "size": self.size, "limit": self.limit,
                "of_limit": round(self.of_limit, 4), "near_limit": self.near_limit}


class ReadGate:
    """Readers of an LMDB environment in this process versus a resize of its map.

    ``with gate:`` around every read transaction. Re-entrant per thread (a read inside an
    iteration does not wait on a resize that waits on that very iteration). A resize,
    :meth:`exclusive`, stops new readers and waits, bounded, for the current ones.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the plain lock on the readers' path: a Condition's own
        self._cond = threading.Condition(self._lock)  # __enter__ is a Python frame more
        self._readers = 0
        self._resizing = False
        self._local = threading.local()

    def __enter__(self) -> None:
        local = self._local
        depth: int = getattr(local, "depth", 0)
        if depth == 0:
            with self._lock:
                while self._resizing:
                    self._cond.wait()
                self._readers += 1
        local.depth = depth + 1

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        local = self._local
        depth: int = local.depth - 1
        local.depth = depth
        if depth == 0:
            with self._lock:
                self._readers -= 1
                if self._resizing and self._readers == 0:
                    self._cond.notify_all()

    def exclusive(self, timeout: float) -> bool:
        """Stop new readers and wait up to ``timeout`` s for the others to leave. True: no
        reader is left, and :meth:`release` must follow; False: nothing is held."""
        if getattr(self._local, "depth", 0):
            return False  # this thread is reading: it would wait for itself
        with self._cond:
            self._resizing = True
            if self._cond.wait_for(lambda: self._readers == 0, timeout):
                return True
            self._resizing = False
            self._cond.notify_all()
            return False

    def release(self) -> None:
        with self._cond:
            self._resizing = False
            self._cond.notify_all()


class MapGrowth:
    """Grows one writable environment's map (see the module docstring). Called by the log's
    writer only, with the log's write lock held and no write transaction open."""

    def __init__(self, env: lmdb.Environment, path: Path, limit: int, gate: ReadGate) -> None:
        self._env = env
        self._path = path
        self._gate = gate
        self._psize: int = env.stat()["psize"]
        self.limit = max(round_up_to_page(limit), env.info()["map_size"])
        self._warned = False
        self.grown = 0  # how many times the map grew since the log was opened

    def usage(self) -> MapUsage:
        info = self._env.info()
        return MapUsage((info["last_pgno"] + 1) * self._psize, info["map_size"], self.limit)

    def before_write(self) -> None:
        u = self.usage()
        self._warn(u)
        if u.used > GROW_AT * u.size and u.size < self.limit:
            self._grow(u, READER_WAIT_S if u.used < URGENT_AT * u.size else URGENT_READER_WAIT_S)

    def after_full(self) -> bool:
        """The map was full in a transaction (aborted now): grow it; True if it grew."""
        u = self.usage()
        return u.size < self.limit and self._grow(u, URGENT_READER_WAIT_S)

    def _grow(self, u: MapUsage, wait_s: float) -> bool:
        new = min(self.limit, round_up_to_page(max(2 * u.size, u.used * 2)))
        if not self._gate.exclusive(wait_s):
            log.debug("%s: map not grown yet: readers still active", self._path)
            return False
        try:
            self._env.set_mapsize(new)
        except lmdb.Error as exc:
            log.warning("%s: could not grow the LMDB map to %d bytes: %s", self._path, new, exc)
            return False
        finally:
            self._gate.release()
        self.grown += 1
        log.info("%s: LMDB map grown from %d to %d bytes (%d used, limit %d)",
                 self._path, u.size, new, u.used, self.limit)
        return True

    def _warn(self, u: MapUsage) -> None:
        if u.near_limit and not self._warned:
            self._warned = True
            log.warning("%s: the record log uses %d of its %d-byte map limit (%.0f%%): raise map_limit "
                        "in the cluster config, or archive old records, before it is full",
                        self._path, u.used, u.limit, 100 * u.of_limit)
        elif not u.near_limit:
            self._warned = False
