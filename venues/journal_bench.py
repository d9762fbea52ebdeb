"""``fixgw bench journal``: what the venue journal (venues.journal) costs per order.

The seeded command mix of ``fixgw bench matching`` (venues.bench) applied to the exchange
three ways: without a journal, journaling each command first with no flusher
(``--no-store-sync``), and with the flusher thread fsyncing every 50 ms (the default under
``--data``); then the time to replay the journal, i.e. what a restart costs per command. Journals go to ``--data``
(default: a temporary directory on the same filesystem as /tmp), removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from venues.bench import build_commands
from venues.clock import FrozenClock
from venues.commands import Command, SubmitOrder
from venues.exchange import Exchange
from venues.journal import JournalClock, VenueJournal, command_record, decode_command, from_micros
from venues.venue_config import ExchangeConfig, LiquiditySpec, SymbolSpec

_CONFIG = ExchangeConfig(name="BENCH", symbols=(SymbolSpec("BENCH", Decimal("0.01"), Decimal("100.00")),),
                         liquidity=LiquiditySpec(enabled=False))
_AT = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)  # 10:00 New York: no session end during the run
_SESSION = ("FIX.4.4", "EXCH", "BENCH")


def _apply(venue: Exchange, cmd: Command) -> object:
    return venue.submit(cmd) if isinstance(cmd, SubmitOrder) else venue.cancel(cmd)  # type: ignore[arg-type]


def _run(commands: list[Command], journal: VenueJournal | None) -> float:
    """Microseconds per command."""
    clock = JournalClock(FrozenClock(_AT))
    venue = Exchange(_CONFIG, clock)
    t0 = time.perf_counter()
    for cmd in commands:
        if journal is not None:
            at = clock.live.now()
            clock.pin(at)
            kind = "D" if isinstance(cmd, SubmitOrder) else "F"
            extra: tuple[object, ...] = ("", False) if kind == "D" else ("",)
            journal.append(command_record(kind, at, _SESSION, extra, cmd))
        _apply(venue, cmd)
    return (time.perf_counter() - t0) / len(commands) * 1e6


def _replay(journal: VenueJournal) -> tuple[int, float]:
    clock = JournalClock(FrozenClock(_AT))
    venue = Exchange(_CONFIG, clock)
    t0 = time.perf_counter()
    n = 0
    for rec in journal.records():
        clock.pin(from_micros(rec[1]))
        _apply(venue, decode_command(rec[0], rec[-1]))
        n += 1
    return n, (time.perf_counter() - t0) / max(1, n) * 1e6


def run(orders: int, synced_orders: int, data: Path) -> dict[str, float]:
    commands = build_commands(orders)
    plain = _run(commands, None)
    j = VenueJournal(data / "nosync", sync=False)
    nosync = _run(commands, j)
    replayed, replay_us = _replay(j)
    j.close()
    j = VenueJournal(data / "sync", sync=True)
    synced = _run(commands[:synced_orders], j)
    j.close()
    return {
        "orders": orders,
        "no_journal_us": round(plain, 2),
        "journal_nosync_us": round(nosync, 2),
        "journal_fsync_us": round(synced, 2),
        "fsync_orders": synced_orders,
        "replayed": replayed,
        "replay_us": round(replay_us, 2),
    }


def main(args: argparse.Namespace) -> int:
    orders = getattr(args, "orders", None) or 20_000
    if orders < 1:
        print("fixgw bench journal: --orders must be >= 1", file=sys.stderr)
        return 2
    base = getattr(args, "data", None)
    tmp = Path(tempfile.mkdtemp(prefix="fixgw-journal-bench-", dir=base))
    try:
        result = run(orders, min(orders, 2_000), tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if getattr(args, "json", False):
        print(json.dumps(result))
    else:
        print(
            f"venue journal, per order: no journal {result['no_journal_us']} us; journaled, no flusher "
            f"{result['journal_nosync_us']} us ({result['orders']} orders); with the 50 ms fsync flusher "
            f"{result['journal_fsync_us']} us ({result['fsync_orders']} orders); replay at restart "
            f"{result['replay_us']} us per command ({result['replayed']} commands)"
        )
    return 0
