"""``fixgw up``, ``fixgw node`` and ``fixgw status``: running the cluster.

``up`` starts every part of ``configs/local.toml`` (or ``--config``) as its own process: the
broker, the venues, the firm node, the street and the customer utilities, then the gateways,
and the web dashboard when the config gives ``dashboard_port``; prints where FIX clients
connect (the gateways first: the one address customers need) and one ready line; on Ctrl-C
(or SIGTERM) stops everything cleanly, the gateways and the dashboard first. While running it
supervises: a child that exits on its own is started again after a back-off (``fixgw.backoff``),
and the restart is logged; ``[cluster] restart_children = false`` turns that off.
``node`` runs one node (so nodes can live on several machines against one broker).
``status`` shows each node's state, replication high-water marks and lag.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, cast

from fixgw.backoff import Backoff
from fixgw.cli import CliError
from fixgw.cli.cluster import DEFAULT_CONFIG, load_config


def register(sub: Any) -> None:
    p = sub.add_parser("up", help="start the whole system (broker, venues, nodes)")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="cluster config (default: configs/local.toml)")
    p.add_argument("--fresh", action="store_true", help="delete the cluster's data directory first")
    p.set_defaults(func=run_up)

    n = sub.add_parser("node", help="run one node of a cluster")
    n.add_argument("--config", default=str(DEFAULT_CONFIG))
    n.add_argument("--name", required=True, help="node name from the config ([[nodes]] name)")
    n.set_defaults(func=run_node)

    s = sub.add_parser("status", help="each node's state, replication high-water marks and lag")
    s.add_argument("--config", default=str(DEFAULT_CONFIG))
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=run_status)


@dataclass
class Child:
    name: str
    kind: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    reported: bool = False
    # how to start it again (None: it is not restarted), and the supervision's state
    restart: Callable[[], subprocess.Popen[bytes]] | None = None
    backoff: Backoff = field(default_factory=Backoff)
    started_at: float = field(default_factory=time.monotonic)
    restart_at: float | None = None


def _popen(argv: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # the child writes to its own copy of the descriptor: ours is closed once it is started
    with open(log_path, "ab") as log:
        # each child in its own process group: Ctrl-C reaches only us, and we stop them in order
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _spawn(name: str, kind: str, argv: list[str], log_dir: Path) -> Child:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    return Child(name, kind, _popen(argv, log_path), log_path, restart=lambda: _popen(argv, log_path))


def _supervise(children: list[Child], restart: bool, out: TextIO) -> bool:
    """One pass over the children: note the ones that exited and start again those whose back-off
    is over. Returns True when a child was started again (the process list changed)."""
    now = time.monotonic()
    changed = False
    for child in children:
        if child.restart_at is None:
            if child.reported or child.proc.poll() is None:
                continue
            code = child.proc.returncode
            if not restart or child.restart is None:
                print(f"fixgw: {child.name} exited with code {code}; see {child.log_path}", file=out, flush=True)
                child.reported = True
                continue
            wait = child.backoff.delay(ran_s=now - child.started_at)
            child.restart_at = now + wait
            print(f"fixgw: {child.name} exited with code {code}; restarting it in {wait:g} s "
                  f"(restart {child.backoff.restarts}); see {child.log_path}", file=out, flush=True)
        elif now >= child.restart_at:
            assert child.restart is not None
            child.started_at = now
            try:
                child.proc = child.restart()
            except Exception as exc:  # noqa: BLE001 - a start that fails is retried after the next back-off
                child.restart_at = now + child.backoff.delay(ran_s=0.0)
                print(f"fixgw: {child.name} could not be restarted ({exc}); trying again in "
                      f"{child.restart_at - now:g} s", file=out, flush=True)
                continue
            child.restart_at = None
            changed = True
            print(f"fixgw: {child.name} restarted (pid {child.proc.pid})", file=out, flush=True)
    return changed


def _wait_port(host: str, port: int, child: Child, timeout: float) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise CliError(f"{child.name} exited with code {child.proc.returncode}; see {child.log_path}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise CliError(f"{child.name} did not listen on {host}:{port} within {timeout:.0f}s; see {child.log_path}")


def _wait_ready(cfg: Any, child: Child, timeout: float) -> None:
    from utilities.node_status import read_status

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise CliError(f"{child.name} exited with code {child.proc.returncode}; see {child.log_path}")
        st = read_status(cfg.node_data_dir(child.name))
        if st is not None and st.get("pid") == child.proc.pid and st.get("state") == "ready":
            return
        time.sleep(0.05)
    raise CliError(f"{child.name} did not report ready within {timeout:.0f}s; see {child.log_path}")


# the order of a clean stop: gateways, then customers (no new orders), then the streets and the firm,
# then the venues, and the broker last, once every node has gone (a node stopping still
# publishes what it has committed, and says goodbye on the bus)
STOP_ORDER = (("gateway", "dashboard"), ("customer",), ("street", "firm"), ("venue",), ("broker",))
STOP_TIMEOUT_S = 10.0  # per step; a process still running then is killed


def _stop_all(children: list[Child], out: TextIO, timeout: float = STOP_TIMEOUT_S) -> None:
    steps = [[c for c in children if c.kind in kinds] for kinds in STOP_ORDER]
    steps.append([c for c in children if not any(c.kind in kinds for kinds in STOP_ORDER)])
    for step in steps:
        for child in step:
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in step:
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"fixgw: {child.name} did not stop in time: killed", file=out)
                child.proc.kill()
                child.proc.wait()


def _check_ports_free(cfg: Any) -> None:
    """Every port of the config must be free: a process found there would pass for ours."""
    import socket

    wanted = [("broker", cfg.broker.host, cfg.broker.port)] if cfg.broker.kind != "external" else []
    wanted += [(f"venue {v.name}", v.host, v.port) for v in cfg.venues.values()]
    wanted += [(f"node {n.name}", n.host, n.port) for n in cfg.nodes.values() if n.port]
    wanted += [(f"metrics of {n.name}", n.host, n.metrics_port) for n in cfg.nodes.values() if n.metrics_port]
    wanted += [(f"metrics of venue {v.name}", v.host, v.metrics_port) for v in cfg.venues.values() if v.metrics_port]
    wanted += [(f"metrics of gateway {g.name}", g.host, g.metrics_port) for g in cfg.gateways.values() if g.metrics_port]
    if cfg.dashboard_port:
        wanted.append(("dashboard", cfg.dashboard_host, cfg.dashboard_port))
    wanted += [(f"gateway {g.name}", g.host, g.port) for g in cfg.gateways.values()]
    for what, host, port in wanted:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                raise CliError(f"{cfg.source}: {what} port {host}:{port} is already in use "
                               "(is another fixgw up running?)")
        except OSError:
            pass


def run_up(args: argparse.Namespace) -> int:
    from replication.broker import BrokerError, Kind, LocalBroker
    from utilities.cluster_processes import remove_processes, write_processes

    cfg = load_config(args.config)
    _check_ports_free(cfg)
    if args.fresh and cfg.data_dir.exists():
        import shutil

        shutil.rmtree(cfg.data_dir)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    log_dir = cfg.data_dir / "logs"
    py = [sys.executable, "-m", "fixgw"]
    children: list[Child] = []
    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    out = sys.stdout
    try:
        access = _bus_access(cfg)
        security = "anonymous (broker.auth = false)" if access is None else \
            f"logins and ACL in {cfg.data_dir / 'broker'}" + (", TLS" if cfg.broker.tls else "")
        if cfg.broker.kind != "external":
            try:
                kind = cast("Kind", cfg.broker.kind)   # one of BROKER_KINDS but "external": checked on load
                broker = LocalBroker(cfg.broker.port, host=cfg.broker.host, kind=kind,
                                     data_dir=cfg.data_dir / "broker", persistence=True, access=access)
                broker.start()
            except BrokerError as exc:
                raise CliError(f"{cfg.source}: [broker]: {exc}") from None
            assert broker.proc is not None

            def restart_broker(broker: LocalBroker = broker) -> subprocess.Popen[bytes]:
                broker.start()
                assert broker.proc is not None
                return broker.proc

            children.append(Child("broker", broker.kind, broker.proc, broker.log_path, restart=restart_broker))
            print(f"fixgw: broker {broker.kind} on {cfg.broker.host}:{cfg.broker.port}, {security}", file=out, flush=True)
        elif access is not None:
            from replication.auth import mosquitto_access_lines

            lines = mosquitto_access_lines(access, cfg.data_dir / "broker")
            print(f"fixgw: external broker {cfg.broker.host}:{cfg.broker.port}: configure it with "
                  + "; ".join(lines), file=out, flush=True)
        for venue in cfg.venues.values():
            argv = py + ["venue", venue.kind, "--host", venue.host, "--port", str(venue.port), "--comp-id", venue.comp_id,
                         "--data", str(cfg.data_dir / venue.name)]
            if venue.config is not None:
                argv += ["--config", str(venue.config)]
            if venue.day_seconds:
                argv += ["--day-seconds", str(venue.day_seconds)]
            if not cfg.fix_store_sync:
                argv += ["--no-store-sync"]
            if venue.metrics_port is not None:
                argv += ["--metrics-port", str(venue.metrics_port)]
            children.append(_spawn(venue.name, "venue", argv, log_dir))
        for venue, child in zip(cfg.venues.values(), [c for c in children if c.kind == "venue"]):
            _wait_port(venue.host, venue.port, child, 30)
        order = ["firm", "street", "customer"]
        for role in order:
            for node in cfg.nodes_with_role(role):
                children.append(_spawn(node.name, role, py + ["node", "--config", str(cfg.source), "--name", node.name], log_dir))
        for child in children:
            if child.kind in order:
                _wait_ready(cfg, child, 60)
        # gateways once the customer utilities are ready: they route only to utilities heard alive
        for gw in cfg.gateways.values():
            child = _spawn(gw.name, "gateway", py + ["gateway", "--config", str(cfg.source), "--name", gw.name], log_dir)
            children.append(child)
            _wait_port(gw.host, gw.port, child, 30)
        print("fixgw: FIX entry points for clients:", file=out)
        begin = "FIX.4.2 or FIX.4.4"
        utility_comps = ", ".join(sorted({n.comp_id for n in cfg.nodes_with_role("customer")}))
        for gw in cfg.gateways.values():
            tls = " TLS" if gw.tls_cert is not None else ""
            print(f"  {gw.name}: {gw.host}:{gw.port}{tls}  {begin}  TargetCompID={utility_comps}  the entry point for "
                  f"customers: routes each to a live customer utility", file=out)
        for node in cfg.nodes_with_role("customer"):
            comps = ", ".join(cfg.customers) or "(none configured)"
            print(f"  {node.name}: {node.host}:{node.port}  {begin}  TargetCompID={node.comp_id}  SenderCompID one of: {comps}", file=out)
        for venue in cfg.venues.values():
            print(f"  venue {venue.name} ({venue.kind}): {venue.host}:{venue.port}  {begin}  TargetCompID={venue.comp_id}  any SenderCompID", file=out)
        if cfg.dashboard_port is not None:
            dash = _spawn("dashboard", "dashboard", py + ["dashboard", "--config", str(cfg.source)], log_dir)
            children.append(dash)
            _wait_port(cfg.dashboard_host, cfg.dashboard_port, dash, 30)
            print(f"fixgw: dashboard on {cfg.dashboard_url}", file=out)
        # which processes are ours (for fixgw bench's CPU per process): removed on a clean stop
        write_processes(cfg.data_dir, os.getpid(), [(c.name, c.kind, c.proc.pid) for c in children])
        print(f"fixgw: ready: {len(children)} processes, data in {cfg.data_dir}, logs in {log_dir} (Ctrl-C stops)", file=out, flush=True)
        while not stopping:
            if _supervise(children, cfg.restart_children, out):
                write_processes(cfg.data_dir, os.getpid(), [(c.name, c.kind, c.proc.pid) for c in children])
            time.sleep(0.2)
        print("fixgw: stopping...", file=out, flush=True)
        return 0
    finally:
        _stop_all(children, out)
        remove_processes(cfg.data_dir)
        if stopping:
            print("fixgw: stopped", file=out, flush=True)


def _bus_access(cfg: Any) -> Any:
    """Node logins and the ACL (secrets made when missing), or None when auth is off."""
    from replication.auth import AuthError
    from utilities.bus_access import cluster_access

    if not cfg.broker.auth:
        return None
    try:
        return cluster_access(cfg)
    except (AuthError, OSError) as exc:
        raise CliError(f"{cfg.source}: [broker]: {exc}") from None


def run_node(args: argparse.Namespace) -> int:
    from fixgw.cli.cluster import venue_catalogue
    from utilities.cluster_config import ClusterConfigError
    from utilities.node_process import run_node_process

    cfg = load_config(args.config)
    try:
        me = cfg.node(args.name)
    except ClusterConfigError as exc:
        raise CliError(str(exc)) from None
    return run_node_process(cfg, me, venue_catalogue(cfg))


def run_status(args: argparse.Namespace) -> int:
    from utilities.node_status import cluster_status

    cfg = load_config(args.config)
    report = cluster_status(cfg)
    if args.json:
        print(json.dumps(report, indent=None, sort_keys=True))
        return 0
    for node in report["nodes"]:
        lag = node.get("lag", {})
        total = sum(lag.values()) if lag else 0
        state = "degraded" if node.get("degraded") and node["state"] == "ready" else node["state"]
        print(f"{node['name']:<8} {node['role']:<9} {state:<8} pid={node.get('pid', '-')}  own_seq={node.get('own_seq', 0)}"
              f"  lag={total}  broker={'up' if node.get('connected') else 'down'}"
              + (f"  BEHIND {','.join(node['behind'])}" if node.get("behind") else "")
              + (f"  CONFLICTS={node['conflicts']}" if node.get("conflicts") else "")
              + (f"  malformed={node['malformed']}" if node.get("malformed") else ""))
        if node.get("degraded"):
            print(f"    DEGRADED, cannot store: {node['degraded']}")
        m = node.get("map")
        if m:
            print(f"    log map: {m['used'] >> 20} MiB used of a {m['size'] >> 20} MiB map, limit {m['limit'] >> 20} MiB"
                  f" ({100 * m['of_limit']:.0f}%)" + ("  WARNING: near map_limit" if m["near_limit"] else ""))
        secs = node.get("lag_seconds", {})
        for origin, hwm in sorted(node.get("hwm", {}).items()):
            print(f"    {origin:<8} hwm={hwm:<8} behind={lag.get(origin, 0)}"
                  + (f" ({secs[origin]:.1f}s)" if origin in secs else "")
                  + ("  BEHIND" if origin in node.get("behind", ()) else ""))
        flight = node.get("in_flight")
        if flight:
            print(f"    orders in flight: {flight['total']} of {flight['bound']} (peak {flight['peak']}, "
                  f"held {flight['holds']} times, policy {flight['policy']})"
                  + (f"  HELD: {', '.join(flight['held'])}" if flight.get("held") else "")
                  + ("  HELD: all sessions" if flight.get("all_held") else ""))
        for c in node.get("recent_conflicts", []):
            what = "FOREIGN version of its own record" if c.get("own") else "conflict"
            print(f"    {what} {c['origin']}#{c['seq']}: kept {c['kept']}; refused {c['received']}")
    for gw in report.get("gateways", []):
        conns = ", ".join(f"{n}={k}" for n, k in gw.get("connections", {}).items()) or "none"
        refused = sum(v for k, v in gw.get("counters", {}).items() if k.startswith("refused_"))
        print(f"{gw['name']:<8} {'gateway':<9} {gw['state']:<8} pid={gw.get('pid', '-')}  connections: {conns}"
              f"  refused={refused}")
    for ep in report["entry_points"]:
        print(f"entry {ep['name']} ({ep['kind']}): {ep['host']}:{ep['port']} TargetCompID={ep['comp_id']}")
    for s in report["sessions"]:
        print(f"session {s['begin']}:{s['client']:<10} owner={s['owner']:<6} {s['state']:<13} "
              f"next_sender_seq={s['next_sender_seq']} next_target_seq={s['next_target_seq']}")
    for part in report["nodes"] + report["venues"] + report.get("gateways", []):
        if part.get("metrics_url"):
            print(f"metrics {part['name']}: {part['metrics_url']}")
    if report.get("dashboard_url"):
        print(f"dashboard: {report['dashboard_url']}")
    return 0
