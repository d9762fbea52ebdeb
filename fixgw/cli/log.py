"""``fixgw log ...``: operations on a node's record log (no broker needed).

    fixgw log dump (--data DIR [--archived] | --from FILE) [--origin NODE] [--txn T] [--json]
    fixgw log verify DIR DIR...
    fixgw log export --data DIR [--origin NODE] [--out FILE]
    fixgw log import --data DIR [--in FILE] [--node ID --role ROLE]
    fixgw log status --data DIR --txn T [--json]
    fixgw log replay (--data DIR [--archives] | --from FILE) [--until TIME] [--txn T | --account A] [--json]

A FILE of ``--from`` is an archive file of retention (``replication.archive``) or an export of
``fixgw log export``: told apart by the archive's first bytes (a zstd frame).

The logic lives in ``replication.ops`` (``replay``: ``utilities.replay``); this module is only the argparse wiring. Further
actions (e.g. ``status``) register on the same ``log`` sub-parser: add a function that
takes the ``actions`` sub-parsers to ``ACTIONS`` below.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from fixgw.cli import CliError


def _data_dir(value: str) -> Path:
    # a cluster node keeps its log in <node dir>/log: accept either directory
    path = Path(value)
    if not (path / "data.mdb").exists() and (path / "log" / "data.mdb").exists():
        return path / "log"
    return path


def _run_status(args: argparse.Namespace) -> int:
    import json

    from replication.archive import find_txn
    from replication.codec import record_to_json
    from replication.errors import ReplicationError
    from replication.log import RecordLog
    from replication.ops import format_record
    from utilities.status import fold

    archived = None
    try:
        with RecordLog(args.data, readonly=True) as log:
            records = log.records_for_txn(args.txn)
        if not records:     # retention may have moved it to an archive file
            found = find_txn(args.data, args.txn)
            if found is not None:
                archived, records = found
    except ReplicationError as exc:
        raise CliError(str(exc)) from None
    st = fold(records)
    if st is None:
        raise CliError(f"{args.data}: no records of order {args.txn!r} (in the live log or its archive files)")
    records.sort(key=lambda r: r.hlc)
    if args.json:
        print(json.dumps({
            "txn": st.txn, "ord_status": st.ord_status, "cum_qty": str(st.cum_qty), "leaves_qty": str(st.leaves_qty),
            "avg_px": str(st.avg_px), "order_qty": None if st.order_qty is None else str(st.order_qty),
            "cl_ord_id": st.cl_ord_id, "account": st.account, "symbol": st.symbol, "side": st.side,
            "street": st.street, "pending": [p.kind for p in st.pending],
            "archived": None if archived is None else str(archived),
            "records": [record_to_json(r) for r in records],
        }, default=str))
        return 0
    names = {"A": "PendingNew", "0": "New", "1": "PartiallyFilled", "2": "Filled", "4": "Canceled",
             "6": "PendingCancel", "8": "Rejected", "C": "Expired", "E": "PendingReplace"}
    qty = st.order_qty if st.order_qty is not None else f"cash {st.cash_order_qty}"
    print(f"order {st.txn}: {names.get(st.ord_status, st.ord_status)} (OrdStatus {st.ord_status})  "
          f"{st.account} {'BUY' if st.side == '1' else 'SELL'} {qty} {st.symbol} @ {st.price or 'MKT'}  "
          f"ClOrdID {st.cl_ord_id}")
    print(f"  CumQty {st.cum_qty}  LeavesQty {st.leaves_qty}  AvgPx {st.avg_px}  street {st.street or '-'}"
          + (f"  pending {', '.join(p.kind for p in st.pending)}" if st.pending else ""))
    where = "" if archived is None else f", archived in {archived}"
    print(f"  {len(records)} record(s){where}, by hybrid clock:")
    for r in records:
        print("    " + format_record(r))
    return 0


def _add_status(actions: Any) -> None:
    p = actions.add_parser("status", help="the folded status of one order and the records behind it")
    p.add_argument("--data", type=_data_dir, required=True, metavar="DIR", help="the node's data directory")
    p.add_argument("--txn", required=True, metavar="T", help="the order's transaction number (OrderID 37)")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=_run_status)


def _run_dump(args: argparse.Namespace) -> int:
    from replication import ops
    from replication.errors import ReplicationError

    if args.archived and args.source:
        raise CliError("--archived goes with --data (a node's archive files); --from reads one file")
    try:
        if args.source:
            ops.dump_file(Path(args.source), sys.stdout, origin=args.origin, txn=args.txn, as_json=args.json)
        else:
            ops.dump(args.data, sys.stdout, origin=args.origin, txn=args.txn, as_json=args.json,
                     archived=args.archived)
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
    if report.conflicts:
        print(f"{len(report.conflicts)} conflicting record(s): the same key holds other bytes on another node "
              "(a forged record, or an origin that reused its seqs)")
    print("logs agree" if report.ok else "logs DIFFER")
    return 0 if report.ok else 1


def _run_export(args: argparse.Namespace) -> int:
    from fixgw.progress import progress_bar
    from replication import ops
    from replication.errors import ReplicationError

    try:
        total = ops.count(args.data, origin=args.origin)
        with progress_bar(total, "export") as tick:
            if args.out and args.out != "-":
                with open(args.out, "w", encoding="utf-8") as f:
                    n = ops.export(args.data, f, origin=args.origin, progress=tick)
            else:
                n = ops.export(args.data, sys.stdout, origin=args.origin, progress=tick)
    except ReplicationError as exc:
        raise CliError(str(exc)) from None
    print(f"exported {n} records", file=sys.stderr)
    return 0


def _run_import(args: argparse.Namespace) -> int:
    from fixgw.progress import progress_bar
    from replication import ops
    from replication.errors import ReplicationError
    from replication.record import Role

    role = Role(args.role) if args.role else None
    try:
        if args.input and args.input != "-":
            size = os.path.getsize(args.input)
            with open(args.input, encoding="utf-8") as f, progress_bar(size, "import", unit="bytes") as tick:
                result = ops.import_lines(args.data, _counting(f, tick), node_id=args.node, role=role)
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


def _counting(lines: Iterable[str], tick: Callable[[int], None]) -> Iterator[str]:
    """The lines, advancing a progress bar by their size every few thousand lines."""
    done = 0
    for i, line in enumerate(lines, 1):
        done += len(line)
        if i % 4096 == 0:
            tick(done)
            done = 0
        yield line
    tick(done)


def _run_replay(args: argparse.Namespace) -> int:
    import json

    from fixgw.progress import progress_bar
    from replication.archive import is_archive
    from replication.errors import ReplicationError
    from utilities import replay

    if args.archives and args.source:
        raise CliError("--archives goes with --data (a node's archive files); --from reads one file")
    try:
        until = replay.parse_until(args.until) if args.until else None
        if args.source and is_archive(args.source):
            with progress_bar(os.path.getsize(args.source), "replay", unit="bytes", json_output=args.json) as tick:
                result = replay.replay_archive(Path(args.source), until_ns=until, txn=args.txn,
                                               account=args.account, progress=tick)
        elif args.source:
            with replay.read_export(args.source) as f, \
                    progress_bar(os.path.getsize(args.source), "replay", unit="bytes", json_output=args.json) as tick:
                result = replay.replay_export(_counting(f, tick), name=args.source, until_ns=until, txn=args.txn,
                                              account=args.account)
        else:
            total = None if args.archives else replay.count_records(args.data)  # archives: not counted first
            with progress_bar(total, "replay", json_output=args.json) as tick:
                result = replay.replay_log(args.data, until_ns=until, txn=args.txn, account=args.account,
                                           progress=tick, archives=args.archives)
    except (replay.ReplayError, ReplicationError) as exc:
        raise CliError(str(exc)) from None
    if args.txn is not None and not result.orders():
        raise CliError(f"{result.source}: no order {args.txn!r} as of "
                       f"{'the end' if result.as_of_ns is None else replay.iso_ns(result.as_of_ns)}")
    if args.json:
        print(json.dumps(replay.to_json(result)))
    else:
        sys.stdout.write(replay.format_text(result))
    return 0


def _add_replay(actions: Any) -> None:
    p = actions.add_parser("replay", help="rebuild what a node knew at a moment: every order's status and the books")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=_data_dir, metavar="DIR", help="the node's data directory (read-only; the node may run)")
    src.add_argument("--from", dest="source", metavar="FILE",
                     help="an archive file (DIR/archive/*.fxar) or an export of `fixgw log export` instead")
    p.add_argument("--archives", action="store_true",
                   help="with --data: the node's archive files too (a record in both counts once)")
    p.add_argument("--until", metavar="TIME",
                   help="ISO 8601 time, UTC unless it says otherwise (2026-12-04T16:00:00Z); default: the end")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--txn", metavar="T", help="only this order (and its account's books)")
    which.add_argument("--account", metavar="A", help="only this account's orders and books")
    p.add_argument("--json", action="store_true", help="one JSON object: as_of, orders, books")
    p.set_defaults(func=_run_replay)


def _add_dump(actions: Any) -> None:
    p = actions.add_parser("dump", help="print a node's records (readable lines or JSON lines)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=_data_dir, metavar="DIR", help="the node's data directory")
    src.add_argument("--from", dest="source", metavar="FILE",
                     help="an archive file (DIR/archive/*.fxar) or an export of `fixgw log export` instead")
    p.add_argument("--archived", action="store_true",
                   help="with --data: then the records of the node's archive files, marked [archived]")
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


ACTIONS: list[Callable[[Any], None]] = [_add_dump, _add_verify, _add_export, _add_import, _add_status, _add_replay]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("log", help="record log operations: dump, verify, export, import, status, replay")
    actions = p.add_subparsers(dest="log_command", metavar="ACTION", required=True)
    for add in ACTIONS:
        add(actions)
