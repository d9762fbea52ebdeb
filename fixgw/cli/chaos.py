"""``fixgw chaos --config F --seconds N --seed S [--rate R] [--json]``: faults under load, checked.

Starts a FRESH cluster from F the way an operator does (``fixgw up --config F`` as a child
process, after deleting F's ``data_dir``), runs the end-to-end bench (``utilities.bench``, through
the config's first gateway when it has one, as customers connect) for N seconds at R orders/s
while ``utilities.chaos`` injects a seeded schedule of SIGKILL, SIGSTOP/SIGCONT and SIGTERM
(restart) into the broker, venues, nodes and gateways. ``fixgw up``'s supervision starts the
killed ones again (its back-off; nothing here restarts a process). Then it waits (bounded by
``--settle-timeout``) until every process runs, every node is ready and caught up, and every
acknowledged order is resting or final alike at every customer utility; checks that no process is
left dead; stops the cluster cleanly; and checks offline that the replicas converge
(``replication.ops.verify``, as ``fixgw log verify``), that no order reached a venue twice, that
the firm's books equal the venues' fills and that an order resting at the utilities is open at its
venue (the last three from the venues' journals: ``venues.audit``).
Prints the schedule, the figures and a verdict; exit 0 on pass, 1 on fail.

Why start the cluster rather than attach to a running one: the checks compare every record and
every venue command since the start, and the venues' journals and the nodes' logs must hold
nothing else; an attached run could not tell an old order from one of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fixgw import eventloop
from fixgw.cli import CliError
from fixgw.cli.cluster import DEFAULT_CONFIG, load_config, venue_catalogue

if TYPE_CHECKING:
    from utilities.chaos import Injected, Verdict
    from utilities.cluster_config import ClusterConfig

READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 90.0
ACK_WAIT_S = 30.0        # after the load: the bench waits this long at most for acks and fills,
ACK_QUIET_S = 2.0        # and stops once none came for this long (orders written into a dropped
                         # connection are never answered; the settle that follows waits for the rest)
SESSIONS = 4
RESTING_EVERY = 10       # every 10th order a passive limit that rests: a killed venue must keep it


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "chaos", help="faults (kill, stop/cont, restart) under load on a fresh cluster, then check nothing was lost")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="cluster config; its data_dir is DELETED first")
    p.add_argument("--seconds", type=float, required=True, help="seconds of load (faults happen within them)")
    p.add_argument("--seed", type=int, required=True, help="seed of the fault schedule")
    p.add_argument("--rate", type=float, default=50.0, help="orders per second offered (default 50)")
    p.add_argument("--settle-timeout", type=float, default=180.0,
                   help="longest wait after the load for the cluster to settle (default 180 s)")
    p.add_argument("--min-gap", type=float, default=3.0, help="least seconds between two faults (default 3)")
    p.add_argument("--max-gap", type=float, default=10.0, help="most seconds between two faults (default 10)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _say(args: argparse.Namespace, text: str) -> None:
    print(text, file=sys.stderr if args.json else sys.stdout, flush=True)


def _start_up(cfg: ClusterConfig, log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "fixgw", "up", "--config", str(cfg.source)],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if "fixgw: ready:" in text:
            return proc
        if proc.poll() is not None:
            tail = "\n".join(text.splitlines()[-10:])
            raise CliError(f"fixgw up --config {cfg.source} exited with code {proc.returncode}:\n{tail}")
        time.sleep(0.2)
    _stop_up(proc, cfg)
    raise CliError(f"fixgw up --config {cfg.source} was not ready within {READY_TIMEOUT_S:.0f} s; see {log_path}")


def _stop_up(proc: subprocess.Popen[bytes], cfg: ClusterConfig) -> None:
    """SIGTERM to fixgw up (it stops its children in order); should it not be done in time, every
    process of the cluster is killed."""
    from utilities.cluster_processes import cluster_processes

    left = cluster_processes(cfg)
    for _kind, pid in left.values():   # none may stay stopped (an interrupted run)
        try:
            os.kill(pid, signal.SIGCONT)
        except OSError:
            pass
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        for _kind, pid in left.values():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        proc.kill()
        proc.wait()


def _settle(cfg: ClusterConfig, expected: set[str], sent: set[str], acked: set[str], timeout: float
            ) -> tuple[bool, float]:
    """Wait until every process runs, every node is ready and caught up, and every acknowledged
    order is resting or final alike at every customer utility; (settled, seconds waited)."""
    from replication.errors import ReplicationError
    from utilities.chaos import check_orders, customer_view, orders_to_check, running_pids
    from utilities.node_status import cluster_status

    t0 = time.monotonic()
    cfus = [n.name for n in cfg.nodes_with_role("customer")]
    while True:
        waited = time.monotonic() - t0
        if waited > timeout:
            return False, waited
        if expected <= running_pids(cfg).keys():
            nodes = cluster_status(cfg)["nodes"]
            if all(n.get("state") == "ready" and sum(n.get("lag", {}).values()) == 0 for n in nodes):
                try:
                    views = {c: customer_view(cfg.node_data_dir(c) / "log", sent) for c in cfus}
                except ReplicationError:   # a log not there (yet): not settled
                    views = None
                if views is not None and check_orders(orders_to_check(acked, views), views).ok:
                    return True, time.monotonic() - t0
        time.sleep(1.0)


def _venue_facts(cfg: ClusterConfig) -> tuple[list[Any], list[Any], dict[str, Any]]:
    """Every venue's NewOrderSingles, fills and orders' final status (txn -> (OrdStatus, CumQty)),
    from its journal (the cluster stopped)."""
    from utilities.chaos import VenueFill, VenueNewOrder
    from utilities.street import txn_of
    from venues.audit import audit_journal
    from venues.errors import VenueConfigError
    from venues.venue_config import DEFAULT_VENUE_CONFIG, load_venue_config

    orders: list[VenueNewOrder] = []
    fills: list[VenueFill] = []
    final: dict[str, Any] = {}
    for v in cfg.venues.values():
        path = cfg.data_dir / v.name / "journal"
        if not path.exists():
            continue
        try:
            vc = load_venue_config(v.config) if v.config is not None else DEFAULT_VENUE_CONFIG
        except VenueConfigError as exc:
            raise CliError(f"{cfg.source}: venue {v.name}: {exc}") from None
        audit = audit_journal(path, "exchange" if v.kind == "exchange" else "fund", vc)
        orders += [VenueNewOrder(v.name, o.firm, o.cl_ord_id, o.possdup, o.accepted) for o in audit.new_orders]
        fills += [VenueFill(v.name, txn_of(f.cl_ord_id), f.exec_id, f.qty, f.px) for f in audit.fills]
        final.update({txn_of(cid): st for (_firm, cid), st in audit.final.items()})
    return orders, fills, final


def chaos(args: argparse.Namespace, cfg: ClusterConfig, phases: dict[str, float]) -> Verdict:
    """The run; ``phases`` receives the wall seconds of each phase (start, load, settle, stop, checks)."""
    from replication.ops import verify
    from utilities.bench import BenchError, OrderLedger
    from utilities.bench import run as run_bench
    from utilities.chaos import (
        NOT_TARGETS,
        Target,
        check_books,
        check_delivered,
        check_orders,
        check_processes,
        check_resting,
        check_venue_orders,
        customer_view,
        firm_fills,
        inject,
        make_schedule,
        orders_to_check,
        running_pids,
    )
    from utilities.chaos import Verdict as VerdictT
    from utilities.cluster_processes import cluster_processes

    prices = venue_catalogue(cfg).prices
    if cfg.data_dir.exists():
        shutil.rmtree(cfg.data_dir)
    cfg.data_dir.mkdir(parents=True)
    up_log = cfg.data_dir / "chaos-up.log"
    _say(args, f"fixgw chaos: starting a fresh cluster from {cfg.source} (data in {cfg.data_dir}; "
               f"fixgw up's output in {up_log})")
    mark = time.monotonic()

    def phase(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        phases[name] = round(now - mark, 2)
        mark = now

    up = _start_up(cfg, up_log)
    phase("start")
    try:
        procs = {name: kind for name, (kind, _pid) in cluster_processes(cfg).items() if name != "up"}
        schedule = make_schedule(args.seed, args.seconds, [Target(n, k) for n, k in procs.items()],
                                 min_gap_s=args.min_gap, max_gap_s=max(args.min_gap, args.max_gap))
        # fixgw up itself too: its supervision is what brings the others back
        expected = {n for n, k in procs.items() if k != "dashboard"} | {"up"}
        _say(args, f"fixgw chaos: seed {args.seed}: {len(schedule)} faults over {args.seconds:g} s of load at "
                   f"{args.rate:g} orders/s into {sum(k not in NOT_TARGETS for k in procs.values())} processes")
        for f in schedule:
            _say(args, "  " + f.describe())
        via = next(((g.host, g.port) for g in cfg.gateways.values()), None)
        ledger = OrderLedger()

        t0 = time.monotonic()

        async def load_and_faults() -> tuple[dict[str, Any], list[Injected]]:
            import asyncio

            injector = asyncio.create_task(inject(schedule, lambda: running_pids(cfg), t0,
                                                  lambda line: _say(args, line)))
            try:
                res = await run_bench(cfg, prices, sessions=SESSIONS, orders=int(args.rate * args.seconds) + 1,
                                      rate=args.rate, seconds=args.seconds, via=via, ack_wait_s=ACK_WAIT_S, quiet_s=ACK_QUIET_S,
                                      verify=False, ledger=ledger,
                                      resting_every=RESTING_EVERY)
            except BaseException:
                injector.cancel()
                raise
            return res, await injector

        try:
            load, injected = eventloop.run(load_and_faults())
        except BenchError as exc:
            raise CliError(str(exc)) from None
        phase("load")
        _say(args, f"fixgw chaos: load over: {load['orders']} orders sent, {len(ledger.acked)} acknowledged, "
                   f"{load['refused']} refused, {load['unacked']} unacknowledged, {load['skipped']} not sent "
                   f"(session away), {load['reconnects']} logons again; settling (at most "
                   f"{args.settle_timeout:g} s)...")
        # time to settle: from the end of the load (every fault is over by then) to the first
        # moment the checks held; the bench's own wait for the last acks and fills counts in it
        load_end = t0 + args.seconds
        settled, _waited = _settle(cfg, expected, ledger.sent, ledger.acked, args.settle_timeout)
        settle_s = time.monotonic() - load_end
        processes = check_processes(expected, running_pids(cfg).keys())
        phase("settle")
    finally:
        _stop_up(up, cfg)
    phase("stop")
    cfus = [n.name for n in cfg.nodes_with_role("customer")]
    views = {c: customer_view(cfg.node_data_dir(c) / "log", ledger.sent) for c in cfus}
    checked = orders_to_check(ledger.acked, views)
    orders = check_orders(checked, views)
    report = verify([cfg.node_data_dir(n) / "log" for n in cfg.nodes])
    venue_orders, venue_fills, venue_final = _venue_facts(cfg)
    booked: dict[str, Any] = {}
    for firm in cfg.nodes_with_role("firm"):
        booked.update(firm_fills(cfg.node_data_dir(firm.name) / "log"))
    verdict = VerdictT(orders=orders, venues=check_venue_orders(venue_orders), books=check_books(booked, venue_fills),
                       processes=processes, resting=check_resting(checked, views, venue_final),
                       delivery=check_delivered(ledger.acked, views, {o.cl_ord_id for o in venue_orders}), replicas_ok=report.ok, replica_lines=tuple(report.lines),
                       settled=settled, settle_s=settle_s, faults=tuple(injected), load=load)
    phase("checks")
    return verdict


def run(args: argparse.Namespace) -> int:
    from utilities.chaos import ChaosError, tracebacks_in_logs

    if args.seconds <= 0 or args.rate <= 0 or args.settle_timeout <= 0 or args.min_gap <= 0:
        raise CliError("--seconds, --rate, --settle-timeout and --min-gap must be > 0")
    cfg = load_config(args.config)
    if not cfg.restart_children:
        raise CliError(f"{cfg.source}: [cluster] restart_children = false: fixgw chaos needs fixgw up to start "
                       "killed processes again (true, the default)")
    try:
        phases: dict[str, float] = {}
        verdict = chaos(args, cfg, phases)
        tracebacks = tracebacks_in_logs(cfg.data_dir / "logs")
    except ChaosError as exc:
        raise CliError(f"{cfg.source}: {exc}") from None
    doc = verdict.to_json()
    doc.update({"config": str(cfg.source), "seed": args.seed, "seconds": args.seconds, "rate": args.rate,
                "data_dir": str(cfg.data_dir), "phases_s": phases,
                "tracebacks": {name: len(ends) for name, ends in tracebacks.items()},
                "traceback_examples": {name: sorted(set(ends))[:5] for name, ends in tracebacks.items()}})
    if args.json:
        print(json.dumps(doc))
        return 0 if verdict.ok else 1
    print(f"faults injected: {doc['faults_injected']} ({', '.join(f'{k} {v}' for k, v in doc['faults_by_action'].items())})"
          f", skipped {doc['faults_skipped']} (process not running at its time); by process: "
          + ", ".join(f"{k} {v}" for k, v in doc["faults_by_target"].items()))
    print(f"orders: {doc['orders']} sent, {doc['acked']} acknowledged, {doc['refused']} refused, {doc['unacked']} "
          f"unacknowledged, {doc['skipped']} not sent while their session was away")
    print(f"settled: {'yes' if verdict.settled else 'NO'} {doc['settle_s']:.1f} s after the end of the load")
    print("wall seconds: " + ", ".join(f"{k} {v:g}" for k, v in phases.items()))
    print(f"orders at every customer utility ({doc['orders_checked']} checked: acknowledged or stored): lost "
          f"{doc['lost']}, unsettled {doc['unsettled']}, disagree {doc['disagree']}")
    print(f"venues: {doc['venue_new_orders']} NewOrderSingles; duplicates {doc['duplicates']} (executed twice "
          f"{doc['executed_twice']}, sent twice without PossDup {doc['sent_twice']}); PossDup resends "
          f"{doc['possdup_resends']}")
    print(f"books: {doc['venue_fills']} venue fills; orders whose booked fills differ: {doc['books_differ']}")
    print(f"delivery: acknowledged orders ended canceled or rejected without reaching a venue: {doc['unsent']}")
    print(f"resting: {doc['resting']} acknowledged orders resting at the utilities; not so at their venue: "
          f"{doc['resting_venue_differs']}")
    print(f"replicas converge: {'yes' if verdict.replicas_ok else 'NO'}; dead processes: "
          f"{', '.join(doc['dead']) or 'none'}")
    for name, ends in tracebacks.items():
        print(f"tracebacks in {name}'s log: {len(ends)} (reported, not failed): " + "; ".join(sorted(set(ends))[:3]))
    for name, items in doc["examples"].items():
        for item in items:
            print(f"  {name}: {item}")
    print(f"verdict: {'PASS' if verdict.ok else 'FAIL: ' + '; '.join(verdict.failures)}")
    return 0 if verdict.ok else 1
