"""``fixgw at-server``: the FIX acceptor the QuickFIX acceptance scripts talk to (echo app)."""

from __future__ import annotations

import argparse
import asyncio
import shutil
from pathlib import Path
from typing import Any

from fixgw.cli import CliError


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "at-server",
        help="FIX acceptor for the QuickFIX acceptance scripts (ISLD; TW42/TW44; echo application)",
    )
    p.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--store", type=Path, help="durable (LMDB, fsync) message store directory "
                   "(default: a fresh temporary directory)")
    g.add_argument("--memory-store", action="store_true", help="keep messages in memory only")
    p.add_argument("--log", type=Path, help="directory for message and event logs")
    p.add_argument("--client", action="append", default=[], metavar="COMPID",
                   help="another client CompID to accept on FIX.4.2 and FIX.4.4 (repeatable; "
                   "BENCH is always accepted)")
    p.add_argument("--any-client", action="store_true",
                   help="accept any client CompID (off by default: the scripts expect unknown "
                   "CompIDs to be disconnected)")
    p.add_argument("--config", type=Path, help="QuickFIX-style session file to serve instead "
                   "of the built-in acceptance-test sessions (the echo application runs on them)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fixgw.at_server import default_store_dir, serve
    from fixgw.config import ConfigError

    if not 0 < args.port < 65536:
        raise CliError(f"--port {args.port}: expected 1..65535")
    temporary = not args.memory_store and args.store is None and args.config is None
    store = None if args.memory_store else (args.store or (default_store_dir() if temporary else None))
    if store is not None:
        store.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(serve(args.host, args.port, store_dir=store, config=args.config, log_dir=args.log,
                                 clients=["BENCH", *args.client], any_client=args.any_client))
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc}") from None
    finally:
        if temporary and store is not None:
            shutil.rmtree(store, ignore_errors=True)  # a throw-away store we made ourselves
