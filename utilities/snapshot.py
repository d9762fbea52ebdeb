"""A customer utility's snapshot: its derived state at a log position, so a restart folds only the tail.

Start-up used to fold the whole log (``CustomerUtility.load``): ``fixgw bench scale --records
200000`` spent 4.9 s in it, and py-spy showed where: 35% reading and decoding every record,
22% indexing them (risk view, ClOrdIDs, account index), and 40% checking every own request
the node ever took (``records_for_txn`` + the status fold of each, to find the few still
open). All of it grows with history; at 1,000,000 records the restart took 108 s.

What a snapshot holds (:class:`CustomerState`): the risk view, the account ledger of the
position inquiries (:class:`utilities.positions.AccountLedger`: sums and open orders, every
waiting order booked first), the ClOrdIDs, each client's orders, the session facts
(:class:`utilities.session_owner.SessionView`) and the own requests whose order was not final
(what the router and the in-flight bound start from), together with the **position** it is the
fold of: per origin a high-water mark, read in the same LMDB read transaction as the records
(:class:`replication.log.LogReader`), so the snapshot is exactly the fold of every record with
``seq <= hwm[origin]``, and a start-up folds exactly the records above (a range scan per origin).
Records held above a gap are left to the tail.

The day views are laid out to load as they are (session 13): ClOrdIDs as day -> client -> id ->
txn (:mod:`utilities.clordids`), the risk view's finished orders and fills as a set per day
(:class:`utilities.risk.DayKeys`), each client's orders as lists of txns per (day, BeginString)
in the file. On the log of ``fixgw bench scale --records 10000000`` (500,000 orders a day), a
restart from the snapshot of 9,900,000 records went from 6.9, 7.3 and 7.0 s to 5.1, 5.2 and
4.7 s (``python -m utilities.scalebench restart``, the two builds alternated, each with its own
snapshot), 896 to 433 MiB RSS, and the snapshot from 142 to 93 MB.

Before it is written, the state forgets what the trading-day roll forgets, one day later than
the live view does (:data:`KEEP_DAYS`): a record that arrives up to a day late folds the same
after a restart as in a full fold; and a fold from a snapshot plus its tail gives the views a
full fold gives (tests/utilities/test_snapshot.py checks it over random histories).

The file (``<node dir>/snapshot/customer.snap``; its header, checks and atomic write are
:mod:`utilities.snapshot_file`'s, shared with the street utility's snapshot): a magic line, the
format version, a fingerprint of the source of the modules whose objects it holds, a SHA-256 of the payload, the payload (a pickle: the state is
Python objects, Decimals, dates and Records, and pickle writes and reads them in a few hundred
ms at 250,000 orders where a field-by-field encoding would need a codec per class; the file
is the node's own, in its data directory, as trusted as its LMDB, and read only after its
checksum matches). A snapshot that fails a check (format, fingerprint: another build wrote it,
checksum, node, reference prices, a position beyond the log) is ignored with a warning and
the node folds the whole log, then writes a fresh one.

Written: after a start-up that folded many records (once the utility is up; a start-up from
nothing writes its fold itself), every ``[cluster] snapshot_every_records``
records, and at a clean stop. A process of its own (``python -m utilities.snapshot``, the log
opened read-only: LMDB readers in other processes are what ``fixgw log`` does to a running
node) reads the newest snapshot, folds the records since into it and writes it; the live views
are not touched. Not a worker thread: one held the utility's event loop up to 97 ms at a time
(1 ms sleeps: p99 11 ms late, the GIL through the fold and through one whole pickle call; a
full fold of 200,000 records, 2 busy cores); with the process: p99 0.2 ms, max 8.5 ms.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from replication.log import LogReader
from replication.record import Record, RecordType
from utilities.adoption import answered, track
from utilities.books import trade_date_of
from utilities.clordids import ClOrdIds, Days
from utilities.positions import AccountLedger
from utilities.record_node import RecordSource
from utilities.risk import RiskView
from utilities.session_owner import SessionView, learn_fact
from utilities.session_rule import SessionFact, SessionKey
from utilities.snapshot_file import (
    SnapshotError,
    SnapshotKind,
    Taken,
    check_node_and_position,
    read_bytes,
    write_file,
)
from utilities.snapshot_file import decode as decode_file
from utilities.snapshot_file import encode as encode_file
from utilities.status import fold

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = 1
MAGIC = b"fixgw customer snapshot\n"
FILE_NAME = "customer.snap"
# a start-up folds at most about this many records: 3.1 s of load at 1,000,000 records (fixgw bench
# scale, --tail 100000); each snapshot costs a worker thread ~2 s of CPU then (fold + pickle)
DEFAULT_EVERY_RECORDS = 100_000
KEEP_DAYS = dt.timedelta(days=1)  # the snapshot rolls a day behind the live view (see the module doc)
RISK_MEMORY = dt.timedelta(days=1)  # the risk view remembers finished orders and fills this long past their day
# the accepted requests of a client, each under a ClOrdID of its own (a refused one takes none)
TAKES_CLORDID = frozenset({RecordType.ORDER, RecordType.CANCEL_REQUEST, RecordType.REPLACE_REQUEST})
# the modules whose objects a snapshot holds, or whose rules made them: another build, another fingerprint
_SOURCES = ("utilities/snapshot.py", "utilities/adoption.py", "utilities/risk.py", "utilities/positions.py", "utilities/clordids.py",
            "utilities/session_owner.py", "utilities/session_rule.py", "utilities/books.py", "utilities/status.py",
            "replication/record.py", "replication/hlc.py")
KIND = SnapshotKind("customer", MAGIC, SNAPSHOT_FORMAT, _SOURCES)   # the file: utilities.snapshot_file


def fingerprint() -> bytes:
    """SHA-256 of the sources of :data:`_SOURCES` (computed once)."""
    return KIND.fingerprint()


@dataclass
class CustomerState:
    """What a customer utility rebuilds from its log (see the module doc)."""

    me: str
    risk: RiskView
    accounts: AccountLedger = field(default_factory=AccountLedger)
    clids_entries: Days = field(default_factory=dict)
    clids_twice: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    # client -> its orders' txns -> (trading day, BeginString of the session that sent it)
    client_txns: dict[str, dict[str, tuple[dt.date, str]]] = field(default_factory=dict)
    sessions: dict[SessionKey, SessionView] = field(default_factory=dict)
    # own request records (order, cancel, replace) whose order was not final when last looked at
    requests: dict[int, Record] = field(default_factory=dict)
    # peers' ORDER records no street record had answered when last looked at (utilities.adoption)
    peer_orders: dict[str, Record] = field(default_factory=dict)
    clids: ClOrdIds = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.clids = ClOrdIds(lambda txn: txn in self.risk.open)
        self.clids.restore(self.clids_entries, self.clids_twice)

    @classmethod
    def empty(cls, me: str, reference_prices: dict[str, Decimal]) -> CustomerState:
        return cls(me=me, risk=RiskView(dict(reference_prices)))

    def __getstate__(self) -> dict[str, Any]:
        entries, twice = self.clids.export()
        # each client's orders go by (day, BeginString), as lists of txns: a dict of 975,000
        # ``txn -> (day, begin)`` tuples took 0.48 s to unpickle (fixgw bench scale --records
        # 4000000 --days 2), the lists and dict.fromkeys a fraction of it
        client_txns: dict[str, dict[tuple[dt.date, str], list[str]]] = {}
        for client, txns in self.client_txns.items():
            groups = client_txns[client] = {}
            for txn, key in txns.items():
                group = groups.get(key)
                if group is None:
                    group = groups[key] = []
                group.append(txn)
        return {"me": self.me, "risk": self.risk, "accounts": self.accounts, "clids_entries": entries,
                "clids_twice": twice, "client_txns": client_txns, "sessions": self.sessions,
                "requests": self.requests, "peer_orders": self.peer_orders}

    def __setstate__(self, d: dict[str, Any]) -> None:
        d = dict(d)
        client_txns: dict[str, dict[str, tuple[dt.date, str]]] = {}
        for client, groups in d["client_txns"].items():
            txns = client_txns[client] = {}
            for key, group in groups.items():
                txns.update(dict.fromkeys(group, key))
        d["client_txns"] = client_txns
        self.__dict__.update(d)
        self.__post_init__()

    def index(self, r: Record, *, ledger: bool = True) -> tuple[SessionKey, SessionFact] | None:
        """One record into the views (at start-up and live); the session fact it holds, if any.
        ``ledger`` False: not into the account ledger (it books the same records by txn)."""
        self.risk.apply(r)
        if ledger:
            self.accounts.add(r)
        session = r.session
        if session and r.cl_ord_id:
            if r.type in TAKES_CLORDID:
                self.clids.learn(session, r.cl_ord_id, r.txn, trade_date_of(r.hlc))
            elif r.type in (RecordType.SENT, RecordType.TAKEOVER):
                # the street's sending carries the ClOrdID too: a customer utility paused right
                # after recording an order (its record not yet on the bus) may have routed it; its
                # successor then knows the id from the street's SENT and answers the customer's
                # PossDup resend with the order's status instead of taking it as new
                self.clids.learn_unknown(session, r.cl_ord_id, r.txn, trade_date_of(r.hlc))
        if session:
            if r.type in (RecordType.ORDER, RecordType.ORDER_REJECTED):
                self.client_txns.setdefault(session, {})[r.txn] = (trade_date_of(r.hlc), str(r.extra.get("begin") or ""))
            elif r.type is RecordType.SENT:
                # the order of a peer paused before its ORDER record left: the street's SENT names the
                # client, so a take-over reports its events again all the same
                self.client_txns.setdefault(session, {}).setdefault(
                    r.txn, (trade_date_of(r.hlc), str(r.extra.get("begin") or "")))
        return learn_fact(self.sessions, r)

    def fold(self, records: Iterable[Record], *, ledger: bool = True) -> int:
        """Index ``records`` (a start-up or a snapshot), keeping the own requests; how many."""
        n = 0
        me, requests, peer_orders = self.me, self.requests, self.peer_orders
        for r in records:
            self.index(r, ledger=ledger)
            mine = r.origin == me
            if mine and r.type in TAKES_CLORDID:
                requests[r.seq] = r
            track(peer_orders, r, from_peer=not mine)   # (customer records come from customer utilities only)
            n += 1
        return n

    def fold_from(self, rd: LogReader, after: Mapping[str, int], upto: Mapping[str, int] | None = None, *,
                  settle: bool = True) -> int:
        """The records of ``rd`` above ``after`` (and at or below ``upto``) into the views; how
        many. The account ledger books each order once, whole: by txn when it starts from
        nothing (a whole log), else as the records come, booking the orders at the end
        (``settle`` False: later, from the log, :meth:`utilities.positions.AccountLedger.book_some`)."""
        ledger = self.accounts
        ledger.source = rd.records_for_txn
        if not after and upto is not None and not ledger.added.upto and not ledger.pending:
            n = self.fold(rd.iter_after(after, upto), ledger=False)
            ledger.book_log(rd.iter_by_txn(upto), upto)
            return n
        with ledger.bulk():
            n = self.fold(rd.iter_after(after, upto))
        if settle:
            ledger.settle()
        return n

    def prune_peer_orders(self, records_for_txn: Callable[[str], list[Record]]) -> None:
        """Drop the peers' orders a street has answered (its answer folded before the order; a
        start-up checks the few it holds the same way, so only a snapshot needs this)."""
        for txn in [t for t in self.peer_orders if answered(records_for_txn(t))]:
            del self.peer_orders[txn]

    def prune_requests(self, records_for_txn: Callable[[str], list[Record]]) -> None:
        """Drop the own requests whose order is final now (final stays final: utilities.status)."""
        done: dict[str, bool] = {}
        for seq, r in list(self.requests.items()):
            final = done.get(r.txn)
            if final is None:
                st = fold(records_for_txn(r.txn))
                final = done[r.txn] = st is not None and st.is_terminal
            if final:
                del self.requests[seq]

    def roll(self, today: dt.date) -> tuple[int, int]:
        """A new trading day: ClOrdIDs of earlier days whose orders are done are released, the
        clients' finished orders of earlier days and what the risk view remembers of orders
        finished before yesterday are forgotten. (ClOrdIDs released, risk entries forgotten.)"""
        dropped = self.clids.roll(today)
        risk = self.risk
        open_ = risk.open
        for client, txns in self.client_txns.items():
            # each client's orders copied with those kept (a day's worth goes at once: 475,000 at
            # 500,000 orders a day, deleted one by one, were ~0.15 s of a restart's roll)
            self.client_txns[client] = {t: v for t, v in txns.items() if v[0] >= today or t in open_}
        forgotten = risk.forget_before(today - RISK_MEMORY)
        return dropped, forgotten


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A snapshot read back: the state, the position it is the fold of, and what it says of itself."""

    state: CustomerState
    position: dict[str, int]
    records: int        # records at or below the position (what a start-up does not fold)
    taken_at: float     # time.time() when written


def encode(state: CustomerState, position: dict[str, int], records: int,
           reference_prices: dict[str, Decimal]) -> bytes:
    """The file's bytes (see the module doc)."""
    return encode_file(KIND, {"node": state.me, "position": dict(position), "records": records,
                              "taken_at": time.time(), "reference_prices": dict(reference_prices), "state": state})


def decode(data: bytes, *, node: str, reference_prices: dict[str, Decimal],
           held: dict[str, int] | None = None) -> Snapshot:
    """Check and read a snapshot; ``held``: the log's high-water marks (a position beyond them
    is refused). Raises SnapshotError."""
    d = decode_file(KIND, data)
    state = d.get("state")
    if not isinstance(state, CustomerState):
        raise SnapshotError("unreadable payload: not a customer state")
    position = check_node_and_position(d, node=node, held=held)
    if d.get("reference_prices") != dict(reference_prices):
        raise SnapshotError("the reference prices changed since it was written")
    return Snapshot(state, position, int(d.get("records", 0)), float(d.get("taken_at", 0.0)))


def read_file(path: Path, *, node: str, reference_prices: dict[str, Decimal],
              held: dict[str, int]) -> tuple[Snapshot | None, str]:
    """The snapshot at ``path`` if it passes its checks, else None and why ("" when there is none)."""
    data, why = read_bytes(path)
    if data is None:
        return None, why
    try:
        return decode(data, node=node, reference_prices=reference_prices, held=held), ""
    except SnapshotError as exc:
        return None, f"{path}: {exc}"


def take(node_log: RecordSource, path: Path, *, me: str, reference_prices: dict[str, Decimal],
         today: dt.date) -> Taken:
    """A new snapshot: the newest valid one (else nothing) plus the records since, rolled to
    ``today`` less :data:`KEEP_DAYS`, written to ``path``. Blocking: run it in a worker thread
    (it touches none of the live views)."""
    t0 = time.perf_counter()
    prices = dict(reference_prices)
    with node_log.reader() as rd:
        held = rd.high_water_marks()
        snap, why = read_file(path, node=me, reference_prices=prices, held=held)
        state = snap.state if snap is not None else CustomerState.empty(me, prices)
        after = snap.position if snap is not None else {}
        folded = state.fold_from(rd, after, held)   # every order booked: a snapshot holds no records waiting
        state.prune_requests(rd.records_for_txn)
        state.prune_peer_orders(rd.records_for_txn)
    state.roll(today - KEEP_DAYS)
    records = (snap.records if snap is not None else 0) + folded
    data = encode(state, held, records, prices)
    write_file(path, data)
    return Taken(records, folded, len(data), time.perf_counter() - t0, why)


def take_command(log_dir: Path, path: Path, *, me: str, reference_prices: dict[str, Decimal],
                 today: dt.date) -> list[str]:
    """The command line of a process that takes a snapshot (:func:`main`): the running utility's
    own process is left alone (a worker thread held its event loop up to 97 ms at a time: the
    GIL through the fold and through one pickle call, 200,000 records)."""
    prices = ",".join(f"{k}={v}" for k, v in sorted(reference_prices.items()))
    return [sys.executable, "-m", "utilities.snapshot", str(log_dir), str(path), me, today.isoformat(), prices]


def main(argv: list[str]) -> int:
    """``python -m utilities.snapshot LOG_DIR PATH NODE TODAY PRICES``: :func:`take` on a read-only
    open of the log (another process may be writing it); prints what it did as JSON."""
    from replication.log import RecordLog

    log_dir, path, me, today = Path(argv[0]), Path(argv[1]), argv[2], dt.date.fromisoformat(argv[3])
    prices = {k: Decimal(v) for k, _, v in (kv.partition("=") for kv in argv[4].split(",") if kv)}
    with RecordLog(log_dir, readonly=True) as node_log:
        taken = take(node_log, path, me=me, reference_prices=prices, today=today)
    print(json.dumps({f.name: getattr(taken, f.name) for f in dataclasses.fields(taken)}), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit("usage: python -m utilities.snapshot LOG_DIR PATH NODE TODAY PRICES (internal: a customer utility's)")
    # run through the module's own name: a state pickled from ``__main__`` would name its classes there
    import importlib

    sys.exit(importlib.import_module("utilities.snapshot").main(sys.argv[1:]))
