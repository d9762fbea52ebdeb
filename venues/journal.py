"""The venue's write-ahead journal: every command, with the instant it was applied, in LMDB.

Why commands in, not events out: a venue is deterministic given its commands and the
clock readings it made (the market maker and the NAV walks are seeded), so replaying the
journal through a fresh venue rebuilds *everything* exactly -- resting orders in their
queue positions, fills' averages to the last digit, the market maker's walk, the fund's
pending orders, the order/exec/trade counters (so OrderIDs and ExecIDs stay unique across
a restart) and the FIX layer's routes (which session gets an order's reports). Events out
would need a second, lossy model of the book (queue priority is not in any report) and
could not restore the market maker. The price is replay time at start-up, proportional
to the journal (compaction by snapshot is not done yet).

Each command is appended (one LMDB write transaction) *before* the venue applies it, so
no report ever leaves for a command the journal lacks. A timer tick is journaled only
when something was due (``now >= venue.next_timer()``): a tick with nothing due changes
no state.

Durability: commits are not fsynced one by one (MDB_NOSYNC): a committed record is in
the kernel, so a killed process (SIGKILL, a crash) loses nothing; a flusher thread fsyncs
every 50 ms when something was written (off with ``--no-store-sync``), so a power cut
loses at most the last ~50 ms -- orders the street then finds unknown at the venue (the
street's reconciliation after logon is for that). Measured with ``fixgw bench journal
--orders 20000`` on the shared 2-core machine (load average 8-11, so +-50%): an fsync per
record cost 8,400-9,500 us per order (the disk's fdatasync p50 is 4.6 ms, ``fixgw bench
disk``), i.e. a venue limited to ~110 orders/s with its event loop blocked; without it the
journal adds 60-180 us per order (52-57 us without a journal), and replay at start-up
costs 100-170 us per journaled command (20,000 commands: 2-3.5 s).

Record layout (msgpack list, key = 8-byte big-endian sequence):

    ["S", t_us]                                    the venue's first start (its clock then)
    ["D", t_us, session, account, resend, cmd]     NewOrderSingle (resend: PossDup/PossResend)
    ["F", t_us, session, account, cmd]             OrderCancelRequest
    ["G", t_us, session, account, cmd]             OrderCancelReplaceRequest
    ["H", t_us, session, account, req_id, cmd]     OrderStatusRequest (req_id: 790 or None)
    ["T", t_us]                                    a timer tick that had something due

``session`` is [BeginString, SenderCompID, TargetCompID]; ``cmd`` a map of the command's
non-None fields (Decimals as strings, enums as their FIX values).
"""

from __future__ import annotations

import contextlib
import struct
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import lmdb
import msgpack

from fixgw.lmdblock import allocate_lock_file
from fixgw.orders import OrdType, Side, TimeInForce
from venues.clock import Clock
from venues.commands import CancelOrder, Command, QueryStatus, ReplaceOrder, SubmitOrder

__all__ = [
    "JournalClock",
    "JournalError",
    "VenueJournal",
    "command_record",
    "decode_command",
    "encode_command",
    "from_micros",
    "to_micros",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KEY = struct.Struct(">Q")
FLUSH_SECONDS = 0.05
DEFAULT_MAP_SIZE = 1 << 30  # 1 GiB: ~5 million orders at ~200 bytes a record

_DECIMALS = frozenset({"quantity", "price", "cash_quantity"})
_ENUMS: dict[str, Callable[[str], Any]] = {"side": Side, "order_type": OrdType, "time_in_force": TimeInForce}
_KINDS: dict[str, type[Command]] = {"D": SubmitOrder, "F": CancelOrder, "G": ReplaceOrder, "H": QueryStatus}


class JournalError(Exception):
    """The journal cannot be opened, read or written (the message names the file)."""


def to_micros(at: datetime) -> int:
    d = at - _EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def encode_command(cmd: Command) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in cmd.__slots__:
        v = getattr(cmd, name)
        if v is None:
            continue
        out[name] = str(v) if isinstance(v, Decimal) else v.value if name in _ENUMS else v
    return out


def decode_command(kind: str, fields: dict[str, Any]) -> Command:
    cls = _KINDS[kind]
    kw: dict[str, Any] = {}
    for name, v in fields.items():
        if name in _DECIMALS:
            kw[name] = Decimal(v)
        elif name in _ENUMS:
            kw[name] = _ENUMS[name](v)
        else:
            kw[name] = v
    return cls(**kw)


def command_record(kind: str, at: datetime, session: tuple[str, str, str], extra: tuple[object, ...],
                   cmd: Command) -> list[Any]:
    """The journal record of one command (layout in the module docstring)."""
    return [kind, to_micros(at), list(session), *extra, encode_command(cmd)]


class JournalClock:
    """The venue's clock: the live clock's time, pinned while a command is applied.

    The journal stores the instant each command was applied at, and replay pins the
    clock to it, so the venue reads exactly the times it read the first time."""

    def __init__(self, live: Clock) -> None:
        self.live = live
        self._pinned: datetime | None = None

    def now(self) -> datetime:
        return self.live.now() if self._pinned is None else self._pinned

    def pin(self, at: datetime) -> None:
        self._pinned = at

    def unpin(self) -> None:
        self._pinned = None


class VenueJournal:
    """An append-only LMDB of journal records (see the module docstring)."""

    def __init__(self, path: Path, *, sync: bool = True, map_size: int = DEFAULT_MAP_SIZE,
                 flush_seconds: float = FLUSH_SECONDS) -> None:
        self.path = path
        try:
            path.mkdir(parents=True, exist_ok=True)
            # commits are not fsynced (they reach the kernel: a killed process loses nothing);
            # a flusher thread fsyncs what was written every flush_seconds (see the docstring)
            self._env = lmdb.open(str(path), map_size=map_size, subdir=True, sync=False, metasync=False,
                                  max_dbs=0, lock=True)
            allocate_lock_file(Path(path))  # a full disk later: write errors, not SIGBUS (fixgw.lmdblock)
        except (OSError, lmdb.Error) as exc:
            raise JournalError(f"venue journal {path}: cannot open: {exc}") from None
        with self._env.begin() as txn:
            cur = txn.cursor()
            self._next = _KEY.unpack(cur.key())[0] + 1 if cur.last() else 0
        self._pack = msgpack.Packer(use_bin_type=True).pack
        self._dirty = threading.Event()
        self._closing = threading.Event()
        self._closed = False
        self._lock = threading.Lock()  # the flusher and close() never sync a closed env
        self._flusher: threading.Thread | None = None
        if sync:
            self._flusher = threading.Thread(target=self._flush_loop, args=(flush_seconds,),
                                             name="venue-journal-flush", daemon=True)
            self._flusher.start()

    def _flush_loop(self, every: float) -> None:
        while not self._closing.wait(every):
            if self._dirty.is_set():
                self._dirty.clear()
                self.flush()

    def flush(self) -> None:
        """fsync everything appended so far."""
        with self._lock:
            if not self._closed:
                self._env.sync(True)

    def __len__(self) -> int:
        return self._next

    def append(self, record: list[Any]) -> None:
        """Store one record durably (returns after the commit)."""
        try:
            with self._env.begin(write=True) as txn:
                txn.put(_KEY.pack(self._next), self._pack(record), append=True)
        except lmdb.Error as exc:
            raise JournalError(f"venue journal {self.path}: cannot write: {exc}") from None
        self._next += 1
        self._dirty.set()

    def first(self) -> list[Any] | None:
        return self._at(first=True)

    def last(self) -> list[Any] | None:
        return self._at(first=False)

    def _at(self, *, first: bool) -> list[Any] | None:
        with self._env.begin(buffers=False) as txn:
            cur = txn.cursor()
            if not (cur.first() if first else cur.last()):
                return None
            rec: list[Any] = msgpack.unpackb(cur.value(), raw=False)
            return rec

    def records(self) -> Iterator[list[Any]]:
        """Every record, oldest first."""
        with self._env.begin(buffers=False) as txn:
            for _key, value in txn.cursor():
                yield msgpack.unpackb(value, raw=False)

    def close(self) -> None:
        self._closing.set()
        if self._flusher is not None:
            self._flusher.join()
        if self._closed:
            return
        with self._lock, contextlib.suppress(lmdb.Error):
            self._env.sync(True)
        with self._lock:
            self._closed = True
            self._env.close()
