"""Chaos under load (``fixgw chaos``, issue 14 item 7): a seeded schedule of faults on the processes
of a running cluster, and the checks that tell "refused while it was down" (fine) from "lost" or
"sent twice" (a failure).

Three parts, the first and last pure (frozen inputs, unit-tested):

- :func:`make_schedule`: the faults, from a seed. Three actions on any process of the cluster
  (broker, venues, nodes, gateways; never ``fixgw up`` itself): ``kill`` (SIGKILL), ``stop``
  (SIGSTOP, then SIGCONT after 1-8 s) and ``restart`` (SIGTERM: a clean stop). A killed or
  terminated process is started again by ``fixgw up``'s own supervision (``fixgw.backoff``:
  1 s, doubling for a process that ran less than 60 s, up to 30 s), not by us: that is the
  supervision the cluster runs with, and it is part of what is tested. Faults do not overlap: the
  next one starts a few seconds (``min_gap_s``-``max_gap_s``) after the previous one ended, so
  each fault's effect can be told apart in the logs. The first three faults are one kill of a
  process other than the broker and one kill or restart of the broker, in a seeded order, then
  one stop, each on another process: a short run covers all three (the test in the suite relies
  on it). No fault hits the previous fault's process (it may still be starting again).
- :func:`inject`: sends the signals at their times to the pids the cluster's process list
  (``utilities.cluster_processes``) names at that moment, and always sends the SIGCONT of a
  stop, even when cancelled.
- the checks, each on plain data read from the nodes' logs and the venues' journals:
  :func:`check_orders` (every acknowledged order is resting or final, with the same status, at
  every customer utility), :func:`check_venue_orders` (no order reached a venue twice),
  :func:`check_books` (the firm's books equal the venues' fills), :func:`check_resting` (an
  order resting at the brokerage is open at its venue), :func:`check_delivered` (no acknowledged
  order ends canceled or rejected without ever reaching a venue) and :func:`check_processes`,
  gathered in a :class:`Verdict`. Replicas converging is ``replication.ops.verify``.

Measured on the shared 2-core machine (load average 3-11): a 10 s run on the test cluster takes
20-36 s of wall time (fixgw up's start 6-13 s, the stop 2 s, the checks under 1 s); a 600 s run at
100 orders/s, seed 7: 75 faults, ~48,600 orders, checks 23-37 s (each utility's whole log folded,
each venue's journal replayed), which is why the settle polls the cheap conditions (processes,
lag) before folding the logs.

"Reached a venue twice" means, per (venue, firm, ClOrdID) -- the street's ClOrdID towards a venue
is the order's txn, so per order: accepted twice (two OrderAccepted: a duplicate execution), or
a second NewOrderSingle *without* PossDupFlag/PossResend. The simulator rejects the latter
(103=6 duplicate ClOrdID), but a venue that does not check would execute it twice, so it fails
the run as well (issue 14 item 2 saw 411 such sends after a SIGSTOP). A resend flagged PossDup is
what FIX provides for "I may have sent this": it is counted apart (``possdup_resends``), not failed.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from replication.log import RecordLog
from utilities.books import Books
from utilities.cluster_config import ClusterConfig
from utilities.cluster_processes import cluster_processes
from utilities.errors import UtilitiesError
from utilities.status import fold_all


class ChaosError(UtilitiesError):
    """A chaos run cannot be set up (nothing to inject faults into, a bad parameter)."""


class FaultAction(StrEnum):
    KILL = "kill"          # SIGKILL; fixgw up starts it again
    STOP = "stop"          # SIGSTOP, SIGCONT after hold_s
    RESTART = "restart"    # SIGTERM (a clean stop); fixgw up starts it again


@dataclass(frozen=True, slots=True)
class Target:
    """A process of the cluster that faults may hit: its name and kind (as fixgw up names them)."""

    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault: at ``at_s`` seconds into the load, ``action`` on ``target``; a stop lasts
    ``hold_s`` seconds (SIGCONT then), the other actions 0."""

    at_s: float
    action: FaultAction
    target: str
    kind: str
    hold_s: float = 0.0

    def __post_init__(self) -> None:
        if self.at_s < 0 or self.hold_s < 0:
            raise ChaosError(f"a fault needs at_s >= 0 and hold_s >= 0, got {self.at_s} and {self.hold_s}")
        if (self.action is FaultAction.STOP) != (self.hold_s > 0):
            raise ChaosError(f"only a stop holds (hold_s > 0): {self.action} with hold_s={self.hold_s}")

    @property
    def end_s(self) -> float:
        return self.at_s + self.hold_s

    def describe(self) -> str:
        what = {FaultAction.KILL: "SIGKILL", FaultAction.RESTART: "SIGTERM (restart)",
                FaultAction.STOP: f"SIGSTOP, SIGCONT at {self.end_s:.2f} s"}[self.action]
        return f"{self.at_s:7.2f} s  {self.target:<10} ({self.kind}): {what}"

    def to_json(self) -> dict[str, Any]:
        return {"at_s": self.at_s, "action": self.action.value, "target": self.target, "kind": self.kind,
                "hold_s": self.hold_s}


# kinds that chaos never touches: the supervisor itself, and the dashboard (not on the order path)
NOT_TARGETS = frozenset({"supervisor", "dashboard"})
BROKER = "broker"


def _r(x: float) -> float:
    return round(x, 2)


def make_schedule(seed: int, seconds: float, targets: Iterable[Target], *, lead_s: float = 2.0,
                  min_gap_s: float = 3.0, max_gap_s: float = 10.0, stop_s: tuple[float, float] = (1.0, 8.0)
                  ) -> list[Fault]:
    """The faults of a run of ``seconds`` seconds of load, from ``seed`` (same inputs, same list).

    The first fault is at ``lead_s``; each next one ``min_gap_s``-``max_gap_s`` after the previous
    one ended; every fault ends (a stop's SIGCONT included) by ``seconds``. The first three are
    one kill of a non-broker process and one kill or restart of the broker (when there is one), in
    a seeded order, then one stop, each on another process, as far as they fit; then any action on
    any target but the previous fault's."""
    if not 0 < min_gap_s <= max_gap_s or not 0 < stop_s[0] <= stop_s[1] or lead_s < 0 or seconds < 0:
        raise ChaosError(f"schedule: need 0 < min_gap_s <= max_gap_s, 0 < stop_s[0] <= stop_s[1], lead_s >= 0, "
                         f"seconds >= 0; got {min_gap_s}, {max_gap_s}, {stop_s}, {lead_s}, {seconds}")
    pool = sorted({t for t in targets if t.kind not in NOT_TARGETS}, key=lambda t: (t.name, t.kind))
    if not pool:
        raise ChaosError("schedule: no process to inject faults into")
    rng = random.Random(seed)
    brokers = [t for t in pool if t.name == BROKER]
    others = [t for t in pool if t.name != BROKER] or pool
    killed = rng.choice(others)
    first: list[tuple[FaultAction, Target]] = [(FaultAction.KILL, killed)]
    if brokers:
        first.append((rng.choice([FaultAction.KILL, FaultAction.RESTART]), brokers[0]))
    rng.shuffle(first)
    # the stop last: it is the one that lasts (and is cut to end with the load), so the two
    # instant faults fit before it in any run of lead_s + 2 * max_gap_s + stop_s[0] seconds
    first.append((FaultAction.STOP, rng.choice([t for t in others if t != killed] or pool)))
    out: list[Fault] = []
    t = lead_s
    while t < seconds:
        if first:
            action, target = first.pop(0)
        else:
            # never the previous fault's target: a process killed a few seconds ago may not be
            # running again yet (fixgw up's back-off, its start-up), and the fault would be lost
            fresh = [c for c in pool if not out or c.name != out[-1].target] or pool
            action, target = rng.choice(list(FaultAction)), rng.choice(fresh)
        hold = 0.0
        if action is FaultAction.STOP:
            hold = min(rng.uniform(*stop_s), seconds - t)
            if hold < stop_s[0]:
                break   # no room left for a stop of the shortest length
        out.append(Fault(_r(t), action, target.name, target.kind, _r(hold)))
        t = out[-1].end_s + rng.uniform(min_gap_s, max_gap_s)
    return out


# -- injecting ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Injected:
    """What became of one scheduled fault: the pid it hit (None: the process was not running
    then, e.g. still down from an earlier kill, so nothing was done), when (s into the run)."""

    fault: Fault
    pid: int | None
    at_s: float
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {**self.fault.to_json(), "pid": self.pid, "done_at_s": _r(self.at_s), "note": self.note}


def _signal(pid: int, sig: int) -> str:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return "gone"
    except PermissionError as exc:
        return f"not allowed: {exc}"
    return ""


async def inject(schedule: Sequence[Fault], pids: Callable[[], Mapping[str, int]], t0: float,
                 out: Callable[[str], None] | None = None) -> list[Injected]:
    """Apply ``schedule`` (times from ``t0``, a ``time.monotonic()`` reading) to the processes
    ``pids()`` names at each fault's time. A stopped process is always continued: at its time,
    or at once if this coroutine is cancelled."""
    done: list[Injected] = []
    stopped: dict[int, str] = {}
    try:
        for f in schedule:
            await asyncio.sleep(max(0.0, t0 + f.at_s - time.monotonic()))
            pid = pids().get(f.target)
            now = time.monotonic() - t0
            if pid is None:
                done.append(Injected(f, None, now, "not running: skipped"))
                continue
            sig = {FaultAction.KILL: signal.SIGKILL, FaultAction.STOP: signal.SIGSTOP,
                   FaultAction.RESTART: signal.SIGTERM}[f.action]
            note = _signal(pid, sig)
            done.append(Injected(f, pid, now, note))
            if out is not None:
                out(f"fixgw chaos: {now:7.2f} s  {f.action.value} {f.target} (pid {pid}){' ' + note if note else ''}")
            if f.action is FaultAction.STOP and not note:
                stopped[pid] = f.target
                await asyncio.sleep(max(0.0, t0 + f.end_s - time.monotonic()))
                _signal(pid, signal.SIGCONT)
                del stopped[pid]
                if out is not None:
                    out(f"fixgw chaos: {time.monotonic() - t0:7.2f} s  cont {f.target} (pid {pid})")
    finally:
        for pid in stopped:
            _signal(pid, signal.SIGCONT)
    return done


def running_pids(cfg: ClusterConfig) -> dict[str, int]:
    """name -> pid of the cluster's live processes (fixgw up's process list, the nodes' status)."""
    return {name: pid for name, (_kind, pid) in cluster_processes(cfg).items()}


# -- reading what each part holds ----------------------------------------------------------------

class OrderView(NamedTuple):
    """One order at one customer utility: its OrdStatus, CumQty and txn (the street's ClOrdID
    towards the venue)."""

    status: str
    cum_qty: Decimal
    txn: str = ""
    text: str = ""      # the reason of a reject or cancel

RESTING_OR_FINAL = frozenset({"0", "1", "2", "4", "8", "C"})   # New, partial, filled, canceled, rejected, expired


def customer_view(data_dir: Path, cl_ord_ids: set[str] | None = None) -> dict[str, OrderView]:
    """ClOrdID -> (OrdStatus, CumQty) of each order a customer utility's log holds (the fold its
    status inquiries answer with), read-only: works on a running node's directory."""
    with RecordLog(data_dir, readonly=True) as log:
        statuses = fold_all(log.iter_all())
    out: dict[str, OrderView] = {}
    for st in statuses.values():
        if cl_ord_ids is None or st.cl_ord_id in cl_ord_ids:
            out[st.cl_ord_id] = OrderView(st.ord_status, st.cum_qty, st.txn, st.text)
    return out


def firm_fills(data_dir: Path) -> dict[str, tuple[Decimal, Decimal]]:
    """txn -> (quantity, notional) of the trades the firm node's books hold."""
    with RecordLog(data_dir, readonly=True) as log:
        books = Books.from_records(log.iter_all())
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for t in books.trades():
        q, v = out.get(t.txn, (Decimal(0), Decimal(0)))
        out[t.txn] = (q + t.qty, v + t.notional)
    return out


def tracebacks_in_logs(log_dir: Path) -> dict[str, list[str]]:
    """Per process log (fixgw up's ``logs/``): the exception line that ends each traceback in it.
    Reported, not failed: a traceback a process survived is a lead, not a lost order."""
    out: dict[str, list[str]] = {}
    for path in sorted(log_dir.glob("*.log")):
        lines = path.read_text(errors="replace").splitlines()
        ends = []
        for i, line in enumerate(lines):
            if line.startswith("Traceback"):
                j = i + 1
                while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
                    j += 1
                ends.append(lines[j] if j < len(lines) else "(truncated)")
        if ends:
            out[path.stem] = ends
    return out


# -- the checks (pure) ---------------------------------------------------------------------------


def orders_to_check(acked: Iterable[str], views: Mapping[str, Mapping[str, OrderView]]) -> set[str]:
    """The orders the checks hold to account: every one the client saw acknowledged, and every one
    a customer utility stored (``views`` holds only the run's own ClOrdIDs) even if its
    acknowledgement never reached the client (its connection dropped first): stored is promised."""
    return set(acked) | {cid for v in views.values() for cid in v}


@dataclass(frozen=True, slots=True)
class OrdersCheck:
    checked: int
    lost: tuple[tuple[str, str], ...]          # (ClOrdID, utility) acknowledged, unknown there
    unsettled: tuple[tuple[str, str, str], ...]  # (ClOrdID, utility, OrdStatus) neither resting nor final
    disagree: tuple[tuple[str, str], ...]      # (ClOrdID, "cfu1=2/100 cfu2=0/0")

    @property
    def ok(self) -> bool:
        return not (self.lost or self.unsettled or self.disagree)


def check_orders(acked: Iterable[str], views: Mapping[str, Mapping[str, OrderView]]) -> OrdersCheck:
    """Every acknowledged order (by ClOrdID) known at every customer utility (``views``: utility ->
    its orders), resting or final there, with the same status and cumulative quantity everywhere."""
    lost: list[tuple[str, str]] = []
    unsettled: list[tuple[str, str, str]] = []
    disagree: list[tuple[str, str]] = []
    ids = sorted(set(acked))
    for cid in ids:
        seen: dict[str, OrderView] = {}
        for node in sorted(views):
            v = views[node].get(cid)
            if v is None:
                lost.append((cid, node))
                continue
            seen[node] = v
            if v.status not in RESTING_OR_FINAL:
                unsettled.append((cid, node, v.status))
        if len(set(seen.values())) > 1:
            disagree.append((cid, " ".join(f"{n}={v.status}/{v.cum_qty}" for n, v in seen.items())))
    return OrdersCheck(len(ids), tuple(lost), tuple(unsettled), tuple(disagree))


@dataclass(frozen=True, slots=True)
class VenueNewOrder:
    """One NewOrderSingle a venue applied (from its journal): whose, flagged a possible resend
    or not, and whether the venue accepted it as a new order."""

    venue: str
    firm: str
    cl_ord_id: str
    possdup: bool
    accepted: bool


@dataclass(frozen=True, slots=True)
class VenueCheck:
    new_orders: int
    executed_twice: tuple[str, ...]   # "venue/firm/ClOrdID": accepted more than once
    sent_twice: tuple[str, ...]       # a second NewOrderSingle without PossDup
    possdup_resends: int              # NewOrderSingles flagged PossDup/PossResend (not failures)

    @property
    def duplicates(self) -> int:
        return len(set(self.executed_twice) | set(self.sent_twice))

    @property
    def ok(self) -> bool:
        return self.duplicates == 0


def check_venue_orders(orders: Iterable[VenueNewOrder]) -> VenueCheck:
    """No order reached a venue twice (see the module docstring for what counts)."""
    accepted: Counter[str] = Counter()
    plain: Counter[str] = Counter()
    possdup = n = 0
    for o in orders:
        n += 1
        key = f"{o.venue}/{o.firm}/{o.cl_ord_id}"
        if o.accepted:
            accepted[key] += 1
        if o.possdup:
            possdup += 1
        else:
            plain[key] += 1
    return VenueCheck(n, tuple(sorted(k for k, c in accepted.items() if c > 1)),
                      tuple(sorted(k for k, c in plain.items() if c > 1)), possdup)


RESTING = frozenset({"0", "1"})   # New, PartiallyFilled


@dataclass(frozen=True, slots=True)
class RestingCheck:
    resting: int                                # acknowledged orders resting at the utilities
    venue_differs: tuple[tuple[str, str], ...]  # (ClOrdID, "utilities 0/0, venue 4/0" or "... venue unknown")

    @property
    def ok(self) -> bool:
        return not self.venue_differs


def check_resting(acked: Iterable[str], views: Mapping[str, Mapping[str, OrderView]],
                  venue: Mapping[str, tuple[str, Decimal]]) -> RestingCheck:
    """Every acknowledged order that the utilities show resting (New or PartiallyFilled) is open at
    its venue, with that status and CumQty (``venue``: txn -> (OrdStatus, CumQty) at the end of
    the venues' journals): a venue that forgot an order (a restart) must not leave it "New" for ever
    at the brokerage (issue 14 item 3). Filled orders are the books check's; a resting order is
    judged on the first utility's copy (the orders check makes them agree)."""
    n = 0
    differ: list[tuple[str, str]] = []
    first = min(views) if views else None
    for cid in sorted(set(acked)):
        v = views[first].get(cid) if first is not None else None
        if v is None or v.status not in RESTING:
            continue
        n += 1
        at_venue = venue.get(v.txn)
        if at_venue is None:
            differ.append((cid, f"utilities {v.status}/{v.cum_qty}, venue unknown (txn {v.txn})"))
        elif at_venue != (v.status, v.cum_qty):
            differ.append((cid, f"utilities {v.status}/{v.cum_qty}, venue {at_venue[0]}/{at_venue[1]} (txn {v.txn})"))
    return RestingCheck(n, tuple(differ))


ENDED_UNFILLED = frozenset({"4", "8", "C"})   # Canceled, Rejected, Expired


@dataclass(frozen=True, slots=True)
class DeliveryCheck:
    acked: int
    unsent: tuple[tuple[str, str], ...]   # (ClOrdID, "8: unknown order ...") ended without reaching a venue

    @property
    def ok(self) -> bool:
        return not self.unsent


def check_delivered(acked: Iterable[str], views: Mapping[str, Mapping[str, OrderView]],
                    venue_txns: set[str]) -> DeliveryCheck:
    """An order the client saw acknowledged is the brokerage's to deliver (DESIGN: sent to a street
    utility "at least once"): it must not end canceled, rejected or expired at the utilities without
    its NewOrderSingle ever reaching a venue (``venue_txns``: the venues' ClOrdIDs, i.e. txns).
    Judged on the first utility's copy; an order unknown there is the orders check's."""
    ids = sorted(set(acked))
    first = min(views) if views else None
    unsent = []
    for cid in ids:
        v = views[first].get(cid) if first is not None else None
        if v is not None and v.status in ENDED_UNFILLED and v.txn not in venue_txns:
            unsent.append((cid, f"{v.status}: {v.text}"))
    return DeliveryCheck(len(ids), tuple(unsent))


@dataclass(frozen=True, slots=True)
class VenueFill:
    """One execution a venue made for one of our orders (``txn``: its ClOrdID's order part)."""

    venue: str
    txn: str
    exec_id: str
    qty: Decimal
    px: Decimal


@dataclass(frozen=True, slots=True)
class BooksCheck:
    venue_fills: int
    firm_orders: int
    differ: tuple[tuple[str, str, str], ...]   # (txn, firm "qty/notional", venue "qty/notional")

    @property
    def ok(self) -> bool:
        return not self.differ


def check_books(firm: Mapping[str, tuple[Decimal, Decimal]], fills: Iterable[VenueFill]) -> BooksCheck:
    """The firm's booked quantity and notional per order equal the sum of the venues' fills."""
    venue: dict[str, tuple[Decimal, Decimal]] = defaultdict(lambda: (Decimal(0), Decimal(0)))
    n = 0
    for f in fills:
        n += 1
        q, v = venue[f.txn]
        venue[f.txn] = (q + f.qty, v + f.qty * f.px)
    differ = []
    zero = (Decimal(0), Decimal(0))
    for txn in sorted(set(firm) | set(venue)):
        a, b = firm.get(txn, zero), venue.get(txn, zero)
        if a[0] != b[0] or a[1] != b[1]:
            differ.append((txn, f"{a[0]}/{a[1]}", f"{b[0]}/{b[1]}"))
    return BooksCheck(n, len(firm), tuple(differ))


@dataclass(frozen=True, slots=True)
class ProcessesCheck:
    expected: tuple[str, ...]
    dead: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.dead


def check_processes(expected: Iterable[str], alive: Iterable[str]) -> ProcessesCheck:
    """No process of the cluster left dead after the settle."""
    exp = tuple(sorted(set(expected)))
    live = set(alive)
    return ProcessesCheck(exp, tuple(n for n in exp if n not in live))


@dataclass(frozen=True, slots=True)
class Verdict:
    """The run's outcome: each check, the figures, and pass/fail."""

    orders: OrdersCheck
    venues: VenueCheck
    books: BooksCheck
    processes: ProcessesCheck
    resting: RestingCheck
    delivery: DeliveryCheck
    replicas_ok: bool
    replica_lines: tuple[str, ...]
    settled: bool
    settle_s: float
    faults: tuple[Injected, ...]
    load: Mapping[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> list[str]:
        out = []
        if self.orders.lost:
            out.append(f"lost: {len(self.orders.lost)} acknowledged order copies unknown at a customer utility")
        if self.orders.unsettled:
            out.append(f"unsettled: {len(self.orders.unsettled)} acknowledged order copies neither resting nor final")
        if self.orders.disagree:
            out.append(f"disagree: {len(self.orders.disagree)} orders with different statuses at the utilities")
        if self.venues.executed_twice:
            out.append(f"executed twice at a venue: {len(self.venues.executed_twice)} orders")
        if self.venues.sent_twice:
            out.append(f"sent twice without PossDup to a venue: {len(self.venues.sent_twice)} orders")
        if not self.delivery.ok:
            out.append(f"unsent: {len(self.delivery.unsent)} acknowledged orders ended canceled or rejected "
                       "without ever reaching a venue")
        if not self.resting.ok:
            out.append(f"resting: {len(self.resting.venue_differs)} orders resting at the utilities, "
                       "not so at their venue")
        if not self.books.ok:
            out.append(f"books: {len(self.books.differ)} orders whose booked fills differ from the venues'")
        if not self.replicas_ok:
            out.append("replicas differ (fixgw log verify)")
        if not self.processes.ok:
            out.append(f"dead: {', '.join(self.processes.dead)}")
        if not self.settled:
            out.append("did not settle within the timeout")
        return out

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self, sample: int = 20) -> dict[str, Any]:
        by_action = Counter(i.fault.action.value for i in self.faults if i.pid is not None)
        return {
            "verdict": "pass" if self.ok else "fail",
            "failures": self.failures,
            "faults_injected": sum(by_action.values()),
            "faults_by_action": dict(sorted(by_action.items())),
            "faults_by_target": dict(sorted(Counter(i.fault.target for i in self.faults if i.pid is not None).items())),
            "faults_skipped": sum(1 for i in self.faults if i.pid is None),
            "schedule": [i.to_json() for i in self.faults],
            "orders": int(self.load.get("orders", 0)),
            "acked": int(self.load.get("acked", 0)),
            "orders_checked": self.orders.checked,
            "refused": int(self.load.get("refused", 0)),
            "unacked": int(self.load.get("unacked", 0)),
            "skipped": int(self.load.get("skipped", 0)),
            "reconnects": int(self.load.get("reconnects", 0)),
            "lost": len({c for c, _ in self.orders.lost}),
            "unsettled": len({c for c, _, _ in self.orders.unsettled}),
            "disagree": len(self.orders.disagree),
            "duplicates": self.venues.duplicates,
            "executed_twice": len(self.venues.executed_twice),
            "sent_twice": len(self.venues.sent_twice),
            "possdup_resends": self.venues.possdup_resends,
            "venue_new_orders": self.venues.new_orders,
            "venue_fills": self.books.venue_fills,
            "books_differ": len(self.books.differ),
            "unsent": len(self.delivery.unsent),
            "resting": self.resting.resting,
            "resting_venue_differs": len(self.resting.venue_differs),
            "replicas_converge": self.replicas_ok,
            "dead": list(self.processes.dead),
            "settled": self.settled,
            "settle_s": _r(self.settle_s),
            "examples": {
                "lost": [list(x) for x in self.orders.lost[:sample]],
                "unsettled": [list(x) for x in self.orders.unsettled[:sample]],
                "disagree": [list(x) for x in self.orders.disagree[:sample]],
                "executed_twice": list(self.venues.executed_twice[:sample]),
                "sent_twice": list(self.venues.sent_twice[:sample]),
                "books_differ": [list(x) for x in self.books.differ[:sample]],
                "resting_venue_differs": [list(x) for x in self.resting.venue_differs[:sample]],
                "unsent": [list(x) for x in self.delivery.unsent[:sample]],
                "replicas": [ln for ln in self.replica_lines if "DIFFERS" in ln or ln.startswith("  ")][:sample],
            },
        }
