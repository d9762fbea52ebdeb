"""``fixgw firm books|eod``: the firm's books from its record log (read-only; the node may run)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from fixgw.cli import CliError


def register(sub: Any) -> None:
    p = sub.add_parser("firm", help="the firm's books and records")
    actions = p.add_subparsers(dest="firm_command", metavar="ACTION", required=True)
    b = actions.add_parser("books", help="positions, cash and buying power per account")
    b.add_argument("--config", help="cluster config (finds the firm node's data)")
    b.add_argument("--data", help="the firm node's data directory (instead of --config)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=_books)
    e = actions.add_parser("eod", help="write the end-of-day report of a trade date now (JSON + text)")
    e.add_argument("--config", help="cluster config (finds the firm node's data)")
    e.add_argument("--data", help="the firm node's data directory (instead of --config)")
    e.add_argument("--date", help="trade date YYYY-MM-DD (default: today, New York)")
    e.add_argument("--out", help="directory for the report (default: <firm data>/eod)")
    e.set_defaults(func=_eod)


def _firm_dir(args: argparse.Namespace) -> Path:
    if args.data:
        return Path(args.data)
    from fixgw.cli.cluster import load_config

    cfg = load_config(args.config)
    firm = cfg.nodes_with_role("firm")[0]
    return Path(cfg.node_data_dir(firm.name))


def _records(node_dir: Path) -> list[Any]:
    from replication.errors import ReplicationError
    from replication.log import RecordLog

    log_dir = node_dir / "log" if (node_dir / "log" / "data.mdb").exists() else node_dir
    try:
        with RecordLog(log_dir, readonly=True) as log:
            return list(log.iter_all())
    except ReplicationError as exc:
        raise CliError(str(exc)) from None


def _books(args: argparse.Namespace) -> int:
    from utilities.books import Books
    from utilities.firm import books_summary

    summary = books_summary(Books.from_records(_records(_firm_dir(args))))
    if args.json:
        print(json.dumps(summary, sort_keys=True))
        return 0
    for acct, s in summary.items():
        print(f"{acct}: cash {s['cash']} (settled {s['cash_settled']})  buying power {s['buying_power']}")
        for sym, qty in sorted(s["positions"].items()):
            print(f"    {sym:<8} {qty}")
    return 0


def _eod(args: argparse.Namespace) -> int:
    from utilities.books import end_of_day_report, format_report_text, new_york_today

    node_dir = _firm_dir(args)
    try:
        day = dt.date.fromisoformat(args.date) if args.date else new_york_today()
    except ValueError:
        raise CliError(f"--date {args.date!r}: expected YYYY-MM-DD") from None
    report = end_of_day_report(_records(node_dir), day)
    out = Path(args.out) if args.out else node_dir / "eod"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{day.isoformat()}.json"
    path.write_text(json.dumps(report, indent=2, sort_keys=True))
    path.with_suffix(".txt").write_text(format_report_text(report))
    print(f"end of day {day}: {path} and {path.with_suffix('.txt')}")
    return 0
