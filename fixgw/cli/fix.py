"""``fixgw fix ...``: tools for FIX sessions.

    fixgw fix replay LOGFILE --connect HOST:PORT --sender S --target T [--speed X] [--id-suffix X] [--json]

The logic lives in ``fixgw.fixreplay``; this module is only the argparse wiring.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fixgw.cli import CliError


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("fix", help="FIX session tools: replay a recorded session")
    actions = p.add_subparsers(dest="fix_command", metavar="ACTION", required=True)
    r = actions.add_parser("replay", help="send one side of a recorded FIX session again and compare the answers")
    r.add_argument("log", type=Path, metavar="LOGFILE",
                   help="a FIX message log: ours (FileLogPath/*.messages.log) or QuickFIX's .messages.log")
    r.add_argument("--connect", required=True, metavar="HOST:PORT", help="the venue or customer utility")
    r.add_argument("--sender", required=True, metavar="S",
                   help="the side to replay: its SenderCompID in the log (and ours on the new session)")
    r.add_argument("--target", required=True, metavar="T", help="the counterparty's CompID")
    r.add_argument("--speed", type=float, default=1.0,
                   help="pace as recorded (1), X times faster (2), or no pauses (0); default 1")
    r.add_argument("--begin", choices=["FIX.4.2", "FIX.4.4"], help="BeginString (default: the log's)")
    r.add_argument("--wait", type=float, default=10.0,
                   help="seconds to wait for the answers after the last send (default 10)")
    r.add_argument("--id-suffix", default="", metavar="X",
                   help="append X to every ClOrdID/OrigClOrdID sent (a counterparty refuses ids it has seen)")
    r.add_argument("--json", action="store_true", help="one JSON object")
    r.set_defaults(func=_run_replay)


def _run_replay(args: argparse.Namespace) -> int:
    from fixgw import fixreplay

    host, _, port_s = args.connect.rpartition(":")
    if not host or not port_s.isdigit():
        raise CliError(f"--connect {args.connect!r}: expected HOST:PORT")
    if args.speed < 0:
        raise CliError(f"--speed {args.speed}: expected 0 (no pauses) or more")
    try:
        result = fixreplay.run(args.log, host=host, port=int(port_s), sender=args.sender, target=args.target,
                               speed=args.speed, begin_string=args.begin, wait=args.wait,
                               id_suffix=args.id_suffix)
    except fixreplay.FixReplayError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(result.text(), end="")
    return 0 if not result.differences else 1
