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

Each command is appended (one LMDB write transaction, fsynced unless ``sync`` is off)
*before* the venue applies it, so no report ever leaves for a command the journal lacks.
A timer tick is journaled only when something was due (``now >= venue.next_timer()``): a
tick with nothing due changes no state. Cost per order, measured with
``fixgw bench journal`` (``venues/journal_bench.py``) on the project's 2-core machine:
see the README ("Venues survive a restart").

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

import struct
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import lmdb
import msgpack

from fixgw.orders import OrdType, Side, TimeInForce
from venues.clock import Clock
from venues.commands import CancelOrder, Command, QueryStatus, ReplaceOrder, SubmitOrder

__all__ = [
    "JournalClock",
    "JournalError",
    "VenueJournal",
    "decode_command",
    "encode_command",
    "from_micros",
    "to_micros",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KEY = struct.Struct(">Q")
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

    def __init__(self, path: Path, *, sync: bool = True, map_size: int = DEFAULT_MAP_SIZE) -> None:
        self.path = path
        try:
            path.mkdir(parents=True, exist_ok=True)
            self._env = lmdb.open(str(path), map_size=map_size, subdir=True, sync=sync, metasync=sync,
                                  max_dbs=0, lock=True)
        except (OSError, lmdb.Error) as exc:
            raise JournalError(f"venue journal {path}: cannot open: {exc}") from None
        with self._env.begin() as txn:
            cur = txn.cursor()
            self._next = _KEY.unpack(cur.key())[0] + 1 if cur.last() else 0
        self._pack = msgpack.Packer(use_bin_type=True).pack

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
        self._env.close()
