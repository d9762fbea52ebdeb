"""``fixgw log ...``: operations on a node's record log (no broker needed).

    fixgw log dump --data DIR [--origin NODE] [--txn T] [--json]
    fixgw log verify DIR DIR...
    fixgw log export --data DIR [--origin NODE] [--out FILE]
    fixgw log import --data DIR [--in FILE] [--node ID --role ROLE]

The logic lives in ``replication.ops``; this module is only the argparse wiring. Further
actions (e.g. ``status``) register on the same ``log`` sub-parser: add a function that
takes the ``actions`` sub-parsers to ``ACTIONS`` below.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fixgw.cli import CliError


def _data_dir(value: str) -> Path:
    return Path(value)


def _run_dump(args: argparse.Namespace) -> int:
    from replication import ops
    from replication.errors import ReplicationError

    try:
        ops.dump(args.data, sys.stdout, origin=args.origin, txn=args.txn, as_json=args.json)
    except ReplicationError as exc:
        raise CliError(str(exc)) from None
    except BrokenPipeError:  # `fixgw log dump ... | head`
        return 0
    return 0


def _run_verify(args: argparse.Namespace) -> int:
    from replication import ops
    from replication.errors import ReplicationError

    try:
        report = ops.verify(list(args.dirs))
    except ReplicationError as exc:
        raise CliError(str(exc)) from None
    for line in report.lines:
        print(line)
    print("logs agree" if report.ok else "logs DIFFER")
    return 0 if report.ok else 1


def _run_export(args: argparse.Namespace) -> int:
    from replication import ops
    from replication.errors import ReplicationError

    try:
        if args.out and args.out != "-":
            with open(args.out, "w", encoding="utf-8") as f:
                n = ops.export(args.data, f, origin=args.origin)
        else:
            n = ops.export(args.data, sys.stdout, origin=args.origin)
    except ReplicationError as exc:
        raise CliError(str(exc)) from None
    print(f"exported {n} records", file=sys.stderr)
    return 0


def _run_import(args: argparse.Namespace) -> int:
    from replication import ops
    from replication.errors import ReplicationError
    from replication.record import Role

    role = Role(args.role) if args.role else None
    try:
        if args.input and args.input != "-":
            with open(args.input, encoding="utf-8") as f:
                result = ops.import_lines(args.data, f, node_id=args.node, role=role)
        else:
            result = ops.import_lines(args.data, sys.stdin, node_id=args.node, role=role)
    except OSError as exc:
        raise CliError(f"cannot read {args.input}: {exc}") from None
    except (ReplicationError, ValueError) as exc:
        raise CliError(str(exc)) from None
    print(f"imported {result.inserted} new records, {result.duplicates} already present, "
          f"{result.not_held} not held by this node's role", file=sys.stderr)
    for problem in result.malformed[:20]:
        print(f"malformed: {problem}", file=sys.stderr)
    if result.malformed:
        print(f"{len(result.malformed)} malformed line(s) skipped", file=sys.stderr)
        return 1
    return 0


def _add_dump(actions: Any) -> None:
    p = actions.add_parser("dump", help="print a node's records (readable lines or JSON lines)")
    p.add_argument("--data", type=_data_dir, required=True, metavar="DIR", help="the node's data directory")
    p.add_argument("--origin", metavar="NODE", help="only records written by this node")
    p.add_argument("--txn", metavar="T", help="only the records of this order")
    p.add_argument("--json", action="store_true", help="JSON lines instead of readable lines")
    p.set_defaults(func=_run_dump)


def _add_verify(actions: Any) -> None:
    p = actions.add_parser("verify", help="check that nodes hold what the replication matrix says")
    p.add_argument("dirs", nargs="+", type=_data_dir, metavar="DIR", help="data directories of the nodes")
    p.set_defaults(func=_run_verify)


def _add_export(actions: Any) -> None:
    p = actions.add_parser("export", help="write a node's records as JSON lines")
    p.add_argument("--data", type=_data_dir, required=True, metavar="DIR")
    p.add_argument("--origin", metavar="NODE", help="only records written by this node")
    p.add_argument("--out", metavar="FILE", help="output file (default: standard output)")
    p.set_defaults(func=_run_export)


def _add_import(actions: Any) -> None:
    from replication.record import Role

    p = actions.add_parser("import", help="insert exported JSON lines into a (stopped) node's log, idempotently")
    p.add_argument("--data", type=_data_dir, required=True, metavar="DIR")
    p.add_argument("--in", dest="input", metavar="FILE", help="input file (default: standard input)")
    p.add_argument("--node", metavar="ID", help="node id, when DIR does not hold a log yet")
    p.add_argument("--role", choices=[r.value for r in Role], help="node role, when DIR does not hold a log yet")
    p.set_defaults(func=_run_import)


ACTIONS: list[Callable[[Any], None]] = [_add_dump, _add_verify, _add_export, _add_import]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("log", help="record log operations: dump, verify, export, import")
    actions = p.add_subparsers(dest="log_command", metavar="ACTION", required=True)
    for add in ACTIONS:
        add(actions)
