"""Whether a node can store: a full disk or a full LMDB map makes it *degraded*, not silent.

Why (issue 14, item 5): cfu1's data on a full filesystem answered new orders with nothing at
all (only a log line), its customers got no New or fill (it could not store the street's
records), its FIX sessions were dropped, and ``fixgw status`` still said ready. A node that
cannot write must say so (status file, ``fixgw status``, metrics), refuse what it cannot store
with a clear text, keep its sessions, and come back by itself once space is back.

What a full disk looks like from LMDB, measured here (a 2 MiB tmpfs, py-lmdb 1.x, no
writemap): the commit fails with ``mdb_txn_commit: Input/output error`` (EIO), not ENOSPC,
because LMDB turns the short ``pwrite`` of its page flush into EIO; and the next small
transactions may succeed again (pages freed by earlier commits are reused, no file growth).
So an I/O error counts as "disk full" when the filesystem under the log has less than
:data:`LOW_SPACE_BYTES` left (``statvfs``), and a node is *degraded* from a failed write until a
later write succeeds or a probe (a small synced LMDB transaction, tried only while the
filesystem shows :data:`LOW_SPACE_BYTES` free again) does, with back-off (:class:`Backoff`).

Every part of a node that writes reports here under a name of its own (the record log, a
customer utility's FIX message store): the node is degraded while any part is.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FIX_STORE", "LOW_SPACE_BYTES", "RECORD_LOG", "Backoff", "StorageHealth", "free_bytes", "is_disk_full"]

LOW_SPACE_BYTES = 1 << 20  # below this much free space, a failed write is taken as "disk full"
RECORD_LOG = "record log"          # the parts of a node that report here
FIX_STORE = "FIX message store"


def free_bytes(path: Path | str) -> int | None:
    """Bytes free for an unprivileged writer on the filesystem of ``path`` (None: unknown)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def is_disk_full(exc: BaseException, path: Path | str) -> bool:
    """Whether a failed write (an OSError or LMDB's error) came from a full filesystem."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    if "No space left" in text or "Disk quota exceeded" in text:
        return True
    if "Input/output error" in text or (isinstance(exc, OSError) and exc.errno == errno.EIO):
        free = free_bytes(path)
        return free is not None and free < LOW_SPACE_BYTES
    return False


@dataclass(slots=True)
class Backoff:
    """Delays of a retry: ``first``, doubled each time, at most ``most``; ``reset`` starts over."""

    first: float = 0.2
    most: float = 2.0
    _next: float = 0.0

    def __post_init__(self) -> None:
        if self.first <= 0 or self.most < self.first:
            raise ValueError("Backoff needs 0 < first <= most")
        self._next = self.first

    def next(self) -> float:
        delay = self._next
        self._next = min(self.most, delay * 2)
        return delay

    def reset(self) -> None:
        self._next = self.first


class StorageHealth:
    """The parts of a node that cannot write now, each with why (thread-safe: the FIX store
    reports from its commit thread). ``ok`` is a field read while nothing is wrong."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._failing: dict[str, str] = {}   # part -> why it cannot write
        self._clock = clock
        self.ok = True
        self.since: float | None = None      # wall time the node became degraded
        self.write_failures = 0              # writes refused by a full disk or map, every part
        self.recoveries = 0                  # times the node could write again after being degraded

    @property
    def degraded(self) -> str | None:
        """Why the node cannot store (one line per part), or None."""
        if self.ok:
            return None
        with self._lock:
            return "; ".join(f"{part}: {why}" for part, why in sorted(self._failing.items())) or None

    def failing(self, part: str) -> bool:
        return not self.ok and part in self._failing

    def failed(self, part: str, why: str) -> None:
        """``part`` could not write (the disk or its map is full)."""
        with self._lock:
            self.write_failures += 1
            if not self._failing:
                self.since = self._clock()
            self._failing[part] = why
            self.ok = False

    def recovered(self, part: str) -> bool:
        """``part`` wrote again; True when it was failing (the node is no longer degraded once
        no part is)."""
        if self.ok:
            return False
        with self._lock:
            if self._failing.pop(part, None) is None:
                return False
            if not self._failing:
                self.ok = True
                self.since = None
                self.recoveries += 1
            return True

    def as_dict(self) -> dict[str, Any]:
        """What the status file shows (``degraded``: the reasons, or None)."""
        with self._lock:
            return {"degraded": "; ".join(f"{p}: {w}" for p, w in sorted(self._failing.items())) or None,
                    "degraded_since": self.since, "parts": dict(self._failing),
                    "write_failures": self.write_failures, "recoveries": self.recoveries}
