"""``fixgw bench``: one front door for every benchmark.

    fixgw bench replication [--json]                   LMDB group commit + MQTT replication
    fixgw bench matching [--json]                      the exchange matching engine in process
    fixgw bench marketdata [--orders N] [--json]       the exchange's market data to 10 subscribers
    fixgw bench marketdata --config F                  book change at the venue -> customer's refresh (``fixgw up``)
    fixgw bench journal [--orders N] [--json]          the venue journal per order (and its replay)
    fixgw bench disk [--data DIR] [--json]             the synced-commit floor under every ack
    fixgw bench scale --records N [--tail N] [--json]  restart (from a snapshot), memory, status inquiry on a long history
    fixgw bench replay [--records N] [--json]          ``fixgw log replay`` over a built log
    fixgw bench --connect H:P --sender S --target T    FIX load client against any acceptor
    fixgw bench --config F                             end to end against ``fixgw up``
    fixgw bench gateway --config F                     the gateway's CPU and added latency (``fixgw up``)
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from fixgw import eventloop
from fixgw.cli import CliError

# which function runs each benchmark: "module:function", each taking the parsed args
TARGETS = {
    "replication": "replication.bench:main",
    "matching": "venues.bench:main",
    "marketdata": "venues.mdbench:main",
    "journal": "venues.journal_bench:main",
    "disk": "replication.diskbench:main",
    "scale": "utilities.scalebench:main",
    "replay": "utilities.replay_bench:main",
    "fix": "fixgw.loadclient:main",
    "e2e": "fixgw.cli.bench:run_e2e",
    "gateway": "fixgw.cli.bench:run_gateway",
    "marketdata-cluster": "fixgw.cli.bench:run_marketdata_cluster",
}


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("bench", help="benchmarks (throughput, latency percentiles)")
    p.add_argument("what", nargs="?", choices=["replication", "matching", "marketdata", "journal", "disk", "scale", "replay", "gateway"],
                   help="an in-process benchmark, or 'gateway' / 'marketdata' with --config (against fixgw up)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--connect", metavar="HOST:PORT", help="FIX load against this acceptor")
    p.add_argument("--sender", default="BENCH", help="our SenderCompID (FIX load)")
    p.add_argument("--target", default="ISLD", help="the acceptor's CompID (FIX load)")
    p.add_argument("--begin", default="FIX.4.4", help="BeginString (FIX load)")
    p.add_argument("--orders", type=int, default=None, help="orders to send")
    p.add_argument("--inflight", type=int, default=100, help="orders outstanding at once (FIX load)")
    p.add_argument("--config", help="cluster config: end-to-end bench against fixgw up")
    p.add_argument("--sessions", type=int, default=None, help="FIX sessions (end to end)")
    p.add_argument("--rate", type=float, default=None, help="orders/s to offer (end to end; 0 = as fast as possible), or syncs/s (disk)")
    p.add_argument("--window", type=int, default=None,
                   help="end to end at --rate 0: orders a session leaves unacknowledged at most (default 200)")
    p.add_argument("--seconds", type=float, default=None, help="upper bound on the run time")
    p.add_argument("--data", help="working directory for files the bench writes")
    p.add_argument("--records", type=int, default=None,
                   help="records: to grow the log to (scale), in the log to replay (replay); default 1,000,000")
    p.add_argument("--days", type=int, default=None, help="trading days the records span (scale; default 5)")
    p.add_argument("--open", type=int, default=None, help="orders left open (scale; default 1,000)")
    p.add_argument("--keep", action="store_true", help="keep the log the bench wrote (scale)")
    p.add_argument("--tail", type=int, default=None,
                   help="records written after the customer utility's snapshot, folded by its restart "
                        "(scale; default 100,000, the default snapshot_every_records: the worst case)")
    p.add_argument("--no-snapshot", action="store_true", help="no snapshot: the restart folds the whole log (scale)")
    p.add_argument("--rounds", type=int, default=3, help="gateway: runs through it and direct, alternately")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.what == "marketdata" and args.config:
        target = "marketdata-cluster"
    elif args.what:
        target = args.what
    elif args.connect:
        target = "fix"
    elif args.config:
        target = "e2e"
    else:
        raise CliError("say what to bench: 'replication', 'matching', 'marketdata', 'journal', 'disk', 'scale', 'replay', "
                       "--connect HOST:PORT or --config FILE")
    # the in-process benches run on the event loop the nodes run on (uvloop when installed)
    args.loop = "uvloop" if eventloop.loop_factory() is not None else "asyncio"
    module_name, func_name = TARGETS[target].split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    if target in ("replay", "scale"):  # progress of their own: they know how many records they have done
        return int(func(args) or 0)
    from fixgw.progress import working

    # the other benches are bounded by count and time: a spinner and the elapsed time, on a
    # terminal only (what they print goes above it)
    with working(f"fixgw bench {target}", json_output=args.json):
        return int(func(args) or 0)


def run_e2e(args: argparse.Namespace) -> int:
    """``fixgw bench --config F``: utilities.bench against a running ``fixgw up``."""
    import json

    from fixgw.cli.cluster import load_config, venue_catalogue
    from utilities.bench import BenchError
    from utilities.bench import run as run_bench

    cfg = load_config(args.config)
    prices = venue_catalogue(cfg).prices
    rate = 3000.0 if args.rate is None else args.rate
    try:
        res = eventloop.run(run_bench(cfg, prices, sessions=args.sessions or 4, orders=args.orders or 20000,
                                      rate=rate, seconds=args.seconds or 60.0, window=args.window or 200))
    except BenchError as exc:
        raise CliError(str(exc)) from None
    except (OSError, ConnectionError, TimeoutError) as exc:
        raise CliError(f"cannot bench the cluster of {cfg.source} (is 'fixgw up' running?): {exc}") from None
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{res['acked']} of {res['orders']} orders acknowledged over {res['sessions']} sessions: "
              f"{res['orders_per_s']:.0f} orders/s (offered {rate:g}/s); ack p50 {res['ack_p50_us']:.0f} us "
              f"p99 {res['ack_p99_us']:.0f} us; fill p50 {res['fill_p50_us']:.0f} us p99 {res['fill_p99_us']:.0f} us; "
              f"filled {res['filled']} ({res['filled_per_s']:.0f}/s), rejected {res['rejected']}, lost {res['lost']}")
        print(f"sustained over the run: {res['acked_per_s']:.0f} acknowledged/s, {res['sustained_fills_per_s']:.0f} "
              f"filled/s; at the end: pending {res['pending']}, unacknowledged {res['unacked']}, refused "
              f"{res['refused']} (throttled {res['throttled']}), no status answer {res['status_unanswered']}, "
              f"lost {res['lost']}")
        print(f"replication: largest lag {res['replication_lag_max']} records; replicas agree after the load: "
              f"{'yes' if res['replicas_agree'] else 'NO (not within 60 s)'}")
        rss = res["rss_kb_by_process"]
        if rss:
            print("resident memory (MB) start/peak/end: " + ", ".join(
                f"{name} {v['start'] / 1024:.0f}/{v['peak'] / 1024:.0f}/{v['end'] / 1024:.0f}" for name, v in rss.items()))
        if res["host_busy_pct"] is not None:
            print(f"machine during the load: {res['host_cpus']} CPUs, {res['host_busy_pct']:.0f}% busy, "
                  f"{res['host_steal_pct']:.0f}% stolen by the hypervisor")
        print(f"cluster CPU: {res['cluster_cpu_s']:.2f} s in {res['cluster_processes']} processes, "
              f"{res['cluster_cpu_ms_per_order']:.3f} ms per acknowledged order")
        by_proc = res["cpu_us_per_order_by_process"]
        if by_proc:
            print(f"CPU over the load, per process of the cluster ({res['acked']} orders acknowledged):")
            print(f"  {'process':<12} {'kind':<10} {'cpu s':>8} {'us/order':>10}")
            for name, us in by_proc.items():
                print(f"  {name:<12} {res['cpu_kind_by_process'][name]:<10} {res['cpu_s_by_process'][name]:>8.3f} {us:>10.1f}")
            print(f"  {'total':<12} {'':<10} {sum(res['cpu_s_by_process'].values()):>8.3f} {res['cpu_us_per_order']:>10.1f}")
    # pending at the end is reported, not failed: an overloaded cluster may still be working
    return 0 if res["lost"] == 0 and res["status_unanswered"] == 0 else 1


def run_marketdata_cluster(args: argparse.Namespace) -> int:
    """``fixgw bench marketdata --config F``: utilities.marketdata_bench against a running ``fixgw up``."""
    import json

    from fixgw.cli.cluster import load_config, venue_catalogue
    from utilities.marketdata_bench import MarketDataBenchError
    from utilities.marketdata_bench import run as run_bench

    cfg = load_config(args.config)
    catalogue = venue_catalogue(cfg)
    exchanges = {v.name for v in cfg.venues.values() if v.kind == "exchange"}
    symbol = next((s for s, v in catalogue.symbol_venue.items() if v in exchanges), None)
    if symbol is None:
        raise CliError(f"{cfg.source}: [venues.*] kind = \"exchange\": expected an exchange listing a symbol to bench")
    orders, seconds = args.orders or 200, args.seconds or 60.0
    if orders < 1 or seconds <= 0:
        raise CliError("fixgw bench marketdata: --orders must be >= 1 and --seconds > 0")
    try:
        res = eventloop.run(run_bench(cfg, symbol, catalogue.prices[symbol], orders=orders, seconds=seconds))
    except MarketDataBenchError as exc:
        raise CliError(str(exc)) from None
    except (OSError, ConnectionError) as exc:
        raise CliError(f"cannot bench the market data of {cfg.source} (is 'fixgw up' running?): {exc}") from None
    res["loop"] = args.loop
    if args.json:
        print(json.dumps(res))
        return 0 if res["complete"] else 1
    print(f"market data of {res['symbol']}: {res['changes']} book changes at the venue, each to "
          f"{res['subscribers']} customers on {res['utilities']} customer utilities ({res['complete']} reached all): "
          f"venue -> customer's refresh p50 {res['p50_us']} us, p99 {res['p99_us']} us; "
          f"a subscriber at the venue itself p50 {res['venue_direct_p50_us']} us, p99 {res['venue_direct_p99_us']} us")
    return 0 if res["complete"] else 1


def run_gateway(args: argparse.Namespace) -> int:
    """``fixgw bench gateway --config F``: utilities.gateway_bench against a running ``fixgw up``."""
    import json

    from fixgw.cli.cluster import load_config
    from utilities.gateway_bench import GatewayBenchError
    from utilities.gateway_bench import run as run_bench

    if not args.config:
        raise CliError("fixgw bench gateway: --config FILE (the cluster running under fixgw up) is required")
    cfg = load_config(args.config)
    if not cfg.gateways:
        raise CliError(f"{cfg.source}: no [[gateways]] entry to bench")
    gw = next(iter(cfg.gateways.values()))
    try:
        res = eventloop.run(run_bench(cfg, gw, orders=args.orders or 2000, inflight=args.inflight,
                                      rounds=args.rounds, seconds=args.seconds or 60.0))
    except GatewayBenchError as exc:
        raise CliError(str(exc)) from None
    except (OSError, ConnectionError, TimeoutError) as exc:
        raise CliError(f"cannot bench gateway {gw.name} of {cfg.source} (is 'fixgw up' running?): {exc}") from None
    res["loop"] = args.loop
    if args.json:
        print(json.dumps(res))
        return 0
    for i, r in enumerate(res["rounds"]):
        v, d = r["via_gateway"], r["direct"]
        print(f"round {i + 1} ({r['utility']}): through {gw.name} p50 {v['p50_us']:.0f} us p99 {v['p99_us']:.0f} us "
              f"{v['orders_per_s']:.0f}/s; direct p50 {d['p50_us']:.0f} us p99 {d['p99_us']:.0f} us "
              f"{d['orders_per_s']:.0f}/s; gateway CPU {r['relay_cpu_us_per_message']} us per message "
              f"({r['messages']} messages), {r['relay_cpu_us_per_order']} us per order")
    print(f"median over {len(res['rounds'])} rounds, {res['orders_per_run']} orders each, {res['inflight']} in flight: "
          f"gateway CPU {res['median_relay_cpu_us_per_message']} us per relayed message; added round trip "
          f"p50 {res['median_added_p50_us']} us, p99 {res['median_added_p99_us']} us")
    return 0
