"""When a node writes its snapshot, and how: a process of its own, one at a time.

The customer utility (:mod:`utilities.snapshot`) and the street utility
(:mod:`utilities.street_snapshot`) write their snapshots the same way, so the way lives here
once (session 13: ``duplicates`` found the two copies of it, 26 lines each):

- every ``every`` records added to the log (0: only when asked: after a start-up, at a stop);
- by a process of its own that opens the log read-only (``python -m utilities.snapshot`` or
  ``utilities.street_snapshot``), never a worker thread of the node: one held a customer
  utility's event loop up to 97 ms at a time (the GIL through a fold and a whole pickle call);
- one at a time: a request while one is being written waits for it, then writes its own, so a
  stop's snapshot holds everything up to the stop; the node's stop waits for a running one
  before its log is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from utilities.child_env import child_env
from utilities.errors import UtilitiesError
from utilities.snapshot_file import Taken

log = logging.getLogger(__name__)


class SnapshotWriter:
    """A node's snapshots (see the module doc). ``command(log_dir, path)``: the command line of
    the process that writes one; ``spawn``: the node's task set (it logs a task's failure)."""

    def __init__(self, *, name: str, path: Path | None, every: int, log_dir: Callable[[], object],
                 command: Callable[[Path, Path], list[str]],
                 spawn: Callable[[Coroutine[Any, Any, Any]], object], counters: dict[str, int]) -> None:
        self.name = name
        self.path = path
        self.every = every
        self._log_dir = log_dir
        self._command = command
        self._spawn = spawn
        self._counters = counters
        counters.setdefault("snapshots", 0)
        self._since = 0
        self.running: asyncio.Future[Taken] | None = None

    def record_added(self) -> None:
        """One record more in the log: a snapshot once ``every`` have come since the last."""
        self._since += 1
        if self.every and self._since >= self.every and self.running is None:
            self._since = -(1 << 62)   # one at a time: counted again once it has started
            self._spawn(self.write())

    async def _take(self, path: Path) -> Taken:
        log_dir = self._log_dir()
        if not isinstance(log_dir, Path):
            raise UtilitiesError(f"{self.name}: its log has no directory to snapshot from")
        proc = await asyncio.create_subprocess_exec(*self._command(log_dir, path), stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE, env=child_env())
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise UtilitiesError(f"{self.name}: the snapshot process exited {proc.returncode}: "
                                 f"{err.decode(errors='replace')[-2000:]}")
        return Taken(**json.loads(out.decode().strip().splitlines()[-1]))

    async def write(self) -> Taken | None:
        """A snapshot now: the newest one plus the records since. None when this node keeps
        none, or it failed (logged; the next one folds what this one would have)."""
        if self.path is None:
            return None
        while (running := self.running) is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(running)
        self._since = 0
        self.running = fut = asyncio.ensure_future(self._take(self.path))

        def done(_: asyncio.Future[Taken]) -> None:
            # only once the process is done: a stop waits for it before the log is closed
            if self.running is fut:
                self.running = None
        fut.add_done_callback(done)
        try:
            taken = await asyncio.shield(fut)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: snapshot not written", self.name)
            return None
        if taken.previous:
            log.warning("%s: the previous snapshot was not used: %s", self.name, taken.previous)
        self._counters["snapshots"] += 1
        log.info("%s: snapshot of %d records written (%d folded since the last one, %d bytes, %.2f s)",
                 self.name, taken.records, taken.folded, taken.bytes, taken.seconds)
        return taken
