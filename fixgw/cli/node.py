"""Running one node of a cluster (``fixgw node``) and reading every node's state (``fixgw status``).

The wiring lives here, in the CLI, because a node needs all the packages: the replication
node (LMDB log + MQTT), the FIX engine, the role (customer / street / firm) and, to know
which venue lists which symbol, the venues' configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from fixgw import eventloop
from fixgw.config import SessionSettings
from fixgw.engine import Engine
from fixgw.metrics import MetricsServer
from replication.bus import listen_briefly
from replication.node import ReplicationNode
from replication.record import Role
from utilities.cluster_config import ClusterConfig, NodeConfig
from utilities.liveness import Heartbeat, Liveness, another_run_of

log = logging.getLogger("fixgw.node")
STATUS_FILE = "status.json"
FAREWELL_TIMEOUT_S = 0.5  # the last heartbeat (state "stopping") on the way out
BEGIN_STRINGS = ("FIX.4.2", "FIX.4.4")


def heartbeat_topic(cluster: str, role: str, node: str) -> str:
    return f"fixgw/{cluster}/alive/{role}/{node}"


def venue_catalogue(cfg: ClusterConfig) -> tuple[dict[str, str], dict[str, Decimal]]:
    """symbol -> venue name, and reference prices, from each venue's configuration."""
    from venues.venue_config import DEFAULT_VENUE_CONFIG, load_venue_config

    symbol_venue: dict[str, str] = {}
    prices: dict[str, Decimal] = {}
    for v in cfg.venues.values():
        vc = load_venue_config(v.config) if v.config is not None else DEFAULT_VENUE_CONFIG
        if v.kind == "exchange":
            for s in vc.exchange.symbols:
                symbol_venue.setdefault(s.symbol, v.name)
                prices.setdefault(s.symbol, s.reference_price)
        else:
            for f in vc.fund_company.funds:
                symbol_venue.setdefault(f.symbol, v.name)
                prices.setdefault(f.symbol, f.nav)
    return symbol_venue, prices


def customer_settings(cfg: ClusterConfig, me: NodeConfig, ndir: Path) -> list[SessionSettings]:
    assert me.port is not None
    return [
        SessionSettings(
            begin_string=b, sender_comp_id=me.comp_id, target_comp_id=client, connection_type="acceptor",
            socket_accept_host=me.host, socket_accept_port=me.port, heart_bt_int=30,
            file_store_path=ndir / "fixstore", file_store_sync=cfg.fix_store_sync, file_log_path=ndir / "fixlog",
        )
        for client in cfg.customers for b in BEGIN_STRINGS
    ]


def street_settings(cfg: ClusterConfig, me: NodeConfig, ndir: Path) -> dict[str, SessionSettings]:
    out = {}
    for vname in me.venues:
        v = cfg.venues[vname]
        out[vname] = SessionSettings(
            begin_string="FIX.4.4", sender_comp_id=me.comp_id, target_comp_id=v.comp_id,
            connection_type="initiator", socket_connect_host=v.host, socket_connect_port=v.port,
            heart_bt_int=5, reconnect_interval=1, max_reconnect_interval=2,
            file_store_path=ndir / "fixstore", file_store_sync=cfg.fix_store_sync, file_log_path=ndir / "fixlog",
        )
    return out


class NodeProcess:
    def __init__(self, cfg: ClusterConfig, me: NodeConfig) -> None:
        self.cfg = cfg
        self.me = me
        self.dir = cfg.node_data_dir(me.name)
        self.liveness = Liveness(cfg.dead_after_s)
        self.state = "starting"
        self.role_obj: Any = None
        self.engine: Engine | None = None
        self.node: ReplicationNode | None = None
        self.started_at = time.time()
        self._stop = asyncio.Event()
        self.instance = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"
        self.metrics_url: str | None = None

    def _on_extra(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if len(parts) >= 3 and parts[2] == "alive":
            try:
                hb = Heartbeat.decode(payload)
            except ValueError as exc:
                log.warning("%s: malformed heartbeat on %s set aside: %s", self.me.name, topic, exc)
                return
            if hb.node != self.me.name:
                self.liveness.saw(hb)
        elif len(parts) >= 3 and parts[2] == "cmd" and self.me.role == "street" and self.role_obj is not None:
            self.role_obj.on_command(topic, payload)

    async def _publish(self, topic: str, payload: bytes) -> None:
        assert self.node is not None
        await self.node.publish(topic, payload, qos=1)

    async def _running_elsewhere(self) -> Heartbeat | None:
        """A live heartbeat of this node id from another process, heard before connecting.

        Two processes under one node id would take the node's MQTT session from each other
        every few milliseconds (the broker keeps one connection per client id), after which
        neither can hear the other: so look before connecting, with a client id of our own.
        """
        me, cfg = self.me, self.cfg
        heard = await listen_briefly(cfg.broker.host, cfg.broker.port, heartbeat_topic(cfg.name, me.role, me.name),
                                     1.5 * cfg.heartbeat_s + 0.2)
        for payload in heard or ():
            try:
                hb = Heartbeat.decode(payload)
            except ValueError:
                continue
            if another_run_of(hb, me.name, self.instance) or (hb.node == me.name and not hb.instance
                                                              and hb.state != "stopping"):
                return hb
        return None

    async def run(self) -> int:
        me, cfg = self.me, self.cfg
        self.dir.mkdir(parents=True, exist_ok=True)
        other = await self._running_elsewhere()
        if other is not None:
            log.error("%s: this node already runs (pid %d, %s, %s): not starting a second one",
                      me.name, other.pid, other.instance or "an older fixgw", other.state)
            return 2
        extra_subs = [(f"fixgw/{cfg.name}/alive/#", 0)]
        if me.role == "street":
            extra_subs.append((f"fixgw/{cfg.name}/cmd/{me.name}", 1))
        self.node = ReplicationNode(
            node_id=me.name, role=Role(me.role), cluster=cfg.name, data_dir=self.dir / "log",
            broker_host=cfg.broker.host, broker_port=cfg.broker.port,
            digest_interval=max(0.2, cfg.heartbeat_s),
            extra_subscriptions=extra_subs, on_extra_message=self._on_extra,
        )
        eventloop.stop_on_signals(self._stop)
        background: list[asyncio.Task[Any]] = []
        metrics = self._serve_metrics()
        async with self.node as node:
            background.append(asyncio.create_task(self._heartbeats()))
            background.append(asyncio.create_task(self._status_writer()))
            if me.role != "firm":
                await self._catch_up_with_firm(node, timeout=max(5.0, 3 * cfg.dead_after_s))
            if me.role == "customer":
                background += await self._start_customer(node)
            elif me.role == "street":
                background += await self._start_street(node)
            else:
                background += await self._start_firm(node)
            eventloop.settle_gc()   # after replaying the log into the role's views
            self.state = "ready"
            self._write_status()
            log.info("%s (%s) ready", me.name, me.role)
            await self._stop.wait()
            self.state = "stopping"
            log.info("%s (%s) stopping", me.name, me.role)
            # a farewell heartbeat is a courtesy: never wait on a broker that is going away
            # (a QoS 0 publish caught by a dropped connection would wait the publish timeout)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._beat(), FAREWELL_TIMEOUT_S)
            if self.engine is not None:
                await self.engine.stop()
            for t in background:
                t.cancel()
            self._write_status()
        if metrics is not None:
            metrics.close()
        log.info("%s (%s) stopped", me.name, me.role)
        return 0

    def _serve_metrics(self) -> MetricsServer | None:
        """The node's Prometheus endpoint, when the config gives it a port (a port in use is
        logged and the node runs without metrics: metrics must never stop the trading)."""
        me = self.me
        if me.metrics_port is None:
            return None
        from fixgw.metrics import EngineCollector, serve_metrics
        from utilities.metrics import NodeCollector

        labels = {"node": me.name, "role": me.role}
        try:
            server = serve_metrics(me.host, me.metrics_port, [
                NodeCollector(me.name, me.role, lambda: self.node, lambda: self.role_obj),
                EngineCollector(lambda: self.engine, labels),
            ])
        except OSError as exc:
            log.error("%s: metrics not served on %s:%d: %s", me.name, me.host, me.metrics_port, exc)
            return None
        self.metrics_url = server.url
        log.info("%s: metrics on %s", me.name, server.url)
        return server

    async def _catch_up_with_firm(self, node: ReplicationNode, timeout: float) -> bool:
        """Before taking orders, hold what the firm has written (accounts, limits): an order
        checked against no account would be refused for nothing. Bounded: a firm that is
        down must not keep the node from starting (its orders are then refused clearly)."""
        firms = [n.name for n in self.cfg.nodes_with_role("firm")]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            digests = node.peer_digests()
            hwms = node.log.high_water_marks()
            if all(f in digests and hwms.get(f, 0) >= digests[f].head for f in firms):
                return True
            await asyncio.sleep(0.02)
        log.warning("%s: the firm's records are not all here after %.0fs: starting anyway", self.me.name, timeout)
        return False

    async def _start_customer(self, node: ReplicationNode) -> list[asyncio.Task[Any]]:
        from utilities.customer import CustomerUtility

        cfg, me = self.cfg, self.me
        symbol_venue, prices = venue_catalogue(cfg)
        app = CustomerUtility(
            node=node, node_name=me.name, comp_id=me.comp_id, cluster=cfg.name,
            customers={c.comp_id: c.accounts for c in cfg.customers.values()},
            passwords={c.comp_id: c.password for c in cfg.customers.values() if c.password},
            symbol_venues=symbol_venue,
            streets={n.name: n.venues for n in cfg.nodes_with_role("street")},
            liveness=self.liveness, publish=self._publish, reference_prices=prices,
        )
        app.load()
        self.role_obj = app
        # ready = able to route: a live street utility for every venue (bounded: streets may be down)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(2.0, 2 * cfg.dead_after_s)
        await asyncio.sleep(2 * cfg.heartbeat_s)      # hear every live street at least once
        while loop.time() < deadline and not all(
                any(app._can_reach(s, v) for s in app.streets) for v in cfg.venues):
            await asyncio.sleep(0.05)
        self.engine = Engine(customer_settings(cfg, me, self.dir), app)
        await self.engine.start()
        return [asyncio.create_task(app.run_router())]

    async def _start_street(self, node: ReplicationNode) -> list[asyncio.Task[Any]]:
        from utilities.street import StreetUtility

        cfg, me = self.cfg, self.me
        settings = street_settings(cfg, me, self.dir)
        app = StreetUtility(
            node=node, node_name=me.name,
            venues={v: s.session_id for v, s in settings.items()},
            peers=tuple(n.name for n in cfg.nodes_with_role("street") if n.name != me.name),
            liveness=self.liveness, startup_grace_s=cfg.dead_after_s,
        )
        app.load()
        self.role_obj = app
        self.engine = Engine(list(settings.values()), app)
        await self.engine.start()
        # ready = able to send orders: logged on to the venues (bounded: a venue may be down)
        try:
            await asyncio.wait_for(asyncio.gather(*(self.engine.wait_logged_on(s.session_id) for s in settings.values())),
                                   timeout=max(5.0, 3 * cfg.dead_after_s))
        except TimeoutError:
            log.warning("%s: not logged on to every venue yet (%s): starting anyway", me.name,
                        ", ".join(sorted(set(settings) - app.logged_on)))
        await self._beat()
        return [asyncio.create_task(app.run_takeover())]

    async def _start_firm(self, node: ReplicationNode) -> list[asyncio.Task[Any]]:
        from utilities.firm import FirmNode

        cfg, me = self.cfg, self.me
        _, prices = venue_catalogue(cfg)
        firm = FirmNode(node=node, node_name=me.name, accounts=cfg.accounts, eod_dir=self.dir / "eod",
                        reference_prices=prices)
        self.role_obj = firm
        await firm.open_accounts()
        return [asyncio.create_task(firm.run_daily())]

    def _heartbeat(self) -> Heartbeat:
        venues: tuple[str, ...] = ()
        if self.me.role == "street" and self.role_obj is not None:
            venues = tuple(sorted(self.role_obj.logged_on))
        return Heartbeat(self.me.name, self.me.role, self.state, venues, os.getpid(), self.instance)

    async def _beat(self) -> None:
        if self.node is None or not self.node.connected:
            return
        try:
            await self.node.publish(heartbeat_topic(self.cfg.name, self.me.role, self.me.name),
                                    self._heartbeat().encode(), qos=0)
        except Exception as exc:
            log.debug("heartbeat not sent: %s", exc)

    async def _heartbeats(self) -> None:
        while True:
            await self._beat()
            await asyncio.sleep(self.cfg.heartbeat_s)

    def _write_status(self) -> None:
        node = self.node
        st: dict[str, Any] = {"name": self.me.name, "role": self.me.role, "pid": os.getpid(), "state": self.state,
                              "started_at": self.started_at, "updated_at": time.time(), "instance": self.instance}
        if node is not None:
            try:
                s = node.stats
                st.update(connected=s.connected, own_seq=s.head, hwm=dict(s.hwms), malformed=s.malformed,
                          received=s.received, duplicates=s.duplicates, gaps_requested=s.gaps_requested,
                          published_upto=s.published_upto, published=s.published, publishes=s.publishes,
                          commits=s.commits)
                st["peer_heads"] = {n: d.head for n, d in node.peer_digests().items()}
            except Exception as exc:   # the log is closed while stopping
                st["error"] = str(exc)
        if self.metrics_url is not None:
            st["metrics_url"] = self.metrics_url
        if self.engine is not None:
            st["fix_sessions"] = {str(sid): rt.logged_on for sid, rt in self.engine.sessions.items()}
            st["fix_seqnums"] = {str(sid): [rt.session.next_sender, rt.session.next_target]
                                 for sid, rt in self.engine.sessions.items()}
        if self.role_obj is not None and hasattr(self.role_obj, "counters"):
            st["counters"] = dict(self.role_obj.counters)
        path = self.dir / STATUS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(st, sort_keys=True, default=str))
        tmp.replace(path)

    async def _status_writer(self) -> None:
        while True:
            try:
                self._write_status()
            except OSError as exc:
                log.warning("status file not written: %s", exc)
            await asyncio.sleep(1.0)


def run_node_process(cfg: ClusterConfig, me: NodeConfig) -> int:
    logging.basicConfig(level=os.environ.get("FIXGW_LOG", "INFO"),
                        format=f"%(asctime)s {me.name} %(levelname)s %(name)s: %(message)s")
    return eventloop.run(NodeProcess(cfg, me).run())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cluster_status(cfg: ClusterConfig) -> dict[str, Any]:
    from replication.matrix import holding
    from replication.record import Role as R

    nodes = []
    heads: dict[str, int] = {}
    raw: dict[str, dict[str, Any]] = {}
    for n in cfg.nodes.values():
        path = cfg.node_data_dir(n.name) / STATUS_FILE
        try:
            st = json.loads(path.read_text())
        except (OSError, ValueError):
            st = {"state": "never started"}
        pid = st.get("pid")
        if st.get("state") not in ("never started",) and (not isinstance(pid, int) or not _pid_alive(pid)):
            st["state"] = "down"
        raw[n.name] = st
        heads[n.name] = int(st.get("own_seq", 0) or 0)
    for n in cfg.nodes.values():
        st = raw[n.name]
        hwm = {k: int(v) for k, v in (st.get("hwm") or {}).items()}
        lag = {}
        for other in cfg.nodes.values():
            if other.name == n.name or holding(R(n.role), R(other.role)) is None:
                continue
            lag[other.name] = max(0, heads.get(other.name, 0) - hwm.get(other.name, 0))
        nodes.append({"name": n.name, "role": n.role, "state": st.get("state"), "pid": st.get("pid"),
                      "own_seq": heads[n.name], "hwm": hwm, "lag": lag, "connected": st.get("connected", False),
                      "fix_sessions": st.get("fix_sessions", {}), "fix_seqnums": st.get("fix_seqnums", {}),
                      "counters": st.get("counters", {}), "metrics_url": n.metrics_url})
    entry = [{"name": n.name, "host": n.host, "port": n.port, "comp_id": n.comp_id}
             for n in cfg.nodes_with_role("customer")]
    entry += [{"name": v.name, "host": v.host, "port": v.port, "comp_id": v.comp_id} for v in cfg.venues.values()]
    venues = [{"name": v.name, "kind": v.kind, "host": v.host, "port": v.port,
               "metrics_url": None if v.metrics_port is None else f"http://{v.host}:{v.metrics_port}/metrics"}
              for v in cfg.venues.values()]
    return {"cluster": cfg.name, "nodes": nodes, "venues": venues, "entry_points": entry,
            "dashboard_url": cfg.dashboard_url}
