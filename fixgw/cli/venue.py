"""``fixgw venue exchange|fund``: a simulated venue as a standalone FIX acceptor.

    fixgw venue exchange [--config F] [--port 9880] [--host 127.0.0.1] [--comp-id EXCH]
                         [--data DIR] [--day-seconds N]
    fixgw venue fund     [--config F] [--port 9881] [--host 127.0.0.1] [--comp-id FUND]
                         [--data DIR] [--day-seconds N]

FIX.4.2 and FIX.4.4 sessions from any client CompID; ``--config`` is a venue TOML file
(symbols, funds, cut-off; see configs/venues.example.toml), built-in defaults otherwise.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from fixgw import eventloop
from fixgw.cli import CliError


def _day_seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return v


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "venue",
        help="a simulated venue as a FIX acceptor (exchange or mutual-fund company)",
        description="Run a simulated venue that any FIX client can trade with: FIX.4.2 and "
        "FIX.4.4, any client CompID (sessions whose CompIDs share the part before the first "
        "'-' are one firm and share its orders).",
    )
    p.add_argument("kind", choices=["exchange", "fund"], help="which venue")
    p.add_argument("--config", type=Path, help="venue TOML file (symbols, funds, cut-off); "
                   "default: the built-in symbols and funds")
    p.add_argument("--port", type=int, default=None, help="TCP port (default: exchange 9880, fund 9881)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--comp-id", default=None, help="our SenderCompID (default: exchange EXCH, fund FUND)")
    p.add_argument("--data", type=Path, help="directory for durable session stores (LMDB), FIX logs and the "
                   "venue's journal (LMDB): a venue restarted with the same DIR recovers its orders, "
                   "books and the fund's pending orders (default: memory only)")
    p.add_argument("--no-store-sync", dest="store_sync", action="store_false",
                   help="do not fsync the session stores under --data (FileStoreSync=N: they survive "
                   "a killed process, not a power cut)")
    p.add_argument("--day-seconds", type=_day_seconds, default=None, metavar="N",
                   help="simulated business day of N real seconds (the fund values orders, the "
                   "exchange expires DAY orders, every N seconds); default: the real clock")
    p.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                   help="serve Prometheus metrics on http://HOST:PORT/metrics (default: none)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fixgw.config import ConfigError
    from venues.errors import VenueConfigError
    from venues.fix_acceptor import DEFAULTS, serve, venue_settings
    from venues.journal import JournalError
    from venues.venue_config import DEFAULT_VENUE_CONFIG, load_venue_config

    default_port, default_comp = DEFAULTS[args.kind]
    port = default_port if args.port is None else args.port
    comp_id = default_comp if args.comp_id is None else args.comp_id
    if not 0 < port < 65536:
        raise CliError(f"--port {port}: expected 1..65535")
    if args.metrics_port is not None and not 0 < args.metrics_port < 65536:
        raise CliError(f"--metrics-port {args.metrics_port}: expected 1..65535")
    try:
        config = load_venue_config(args.config) if args.config is not None else DEFAULT_VENUE_CONFIG
    except VenueConfigError as exc:
        raise CliError(str(exc)) from None
    try:
        # checked here so that a bad --comp-id is a clear error, not a traceback
        venue_settings(comp_id=comp_id, host=args.host, port=port, data_dir=args.data)
    except ConfigError as exc:
        raise CliError(f"--comp-id {comp_id!r} / --host {args.host!r}: {exc}") from None
    if args.data is not None:
        try:
            args.data.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"--data {args.data}: cannot create the directory: {exc}") from None
    try:
        return eventloop.run(serve(args.kind, host=args.host, port=port, comp_id=comp_id, config=config,
                                 data_dir=args.data, store_sync=args.store_sync, day_seconds=args.day_seconds,
                                 metrics_port=args.metrics_port))
    except (VenueConfigError, JournalError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{port}: {exc}") from None
