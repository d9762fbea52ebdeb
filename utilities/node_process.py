"""One node of the brokerage as a process: its record node, its role, heartbeats, commands,
readiness and status file (``fixgw node`` runs one).

A node process puts together what every role needs:

- the record node (``replication.node.ReplicationNode``: the LMDB log replicated over MQTT),
  subscribed as well to every node's heartbeat and, for a street utility, to its commands;
- the role: a customer utility (FIX acceptor for the customers), a street utility (FIX
  initiator to its venues) or the firm node, with the FIX engine the first two run on;
- heartbeats (``utilities.liveness``) every ``cluster.heartbeat_s``, with the venues a street
  is logged on to, so customer utilities route only to streets that reach the venue;
- the customer -> street command dispatch: a customer utility publishes commands on
  ``fixgw/<cluster>/cmd/<street>`` (``utilities.routing``), the street's node hands them to
  :meth:`StreetUtility.on_command`; every topic name comes from ``replication.wire.Topics``;
- readiness: a node says "ready" (status file, then ``fixgw up`` prints its ready line) once
  it can do its job: it holds the firm's records (accounts, limits), a customer utility hears
  a live street for every venue, a street is logged on to its venues; each wait is bounded,
  so a firm, street or venue that is down delays a node, never keeps it from starting;
- the status file (``utilities.node_status``), rewritten every second.

The CLI only loads the config and the venues' listings and calls :func:`run_node_process`
(``utilities`` does not import ``venues``). A role's assembly is one method
(:meth:`NodeProcess.start_customer`, ``start_street``, ``start_firm``) that returns what it
runs, so a role can grow parts (a session store, say) in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from pathlib import Path
from typing import Any

from fixgw import eventloop
from fixgw.config import SessionSettings
from fixgw.engine import Engine
from fixgw.metrics import EngineCollector, MetricsServer, serve_metrics
from replication.auth import AuthError, BusLogin
from replication.bus import listen_briefly
from replication.node import ReplicationNode
from replication.record import Role
from replication.wire import (
    COMMAND_KIND,
    HEARTBEAT_KIND,
    MD_INTEREST_KIND,
    QUOTE_KIND,
    SESSION_KIND,
    Topics,
)
from utilities.bus_access import node_login
from utilities.catalogue import VenueCatalogue
from utilities.cluster_config import BEGIN_STRINGS, ClusterConfig, ClusterConfigError, NodeConfig
from utilities.customer import CustomerUtility
from utilities.errors import UtilitiesError
from utilities.fencing import Fence
from utilities.firm import FirmNode
from utilities.liveness import Heartbeat, Liveness, another_run_of
from utilities.metrics import NodeCollector
from utilities.node_status import write_status
from utilities.quote_feed import QuoteFeed
from utilities.retention import Retention
from utilities.routing import TTL_FACTOR
from utilities.session_owner import SessionOwner
from utilities.session_store import SessionStoreFactory
from utilities.snapshot import FILE_NAME as SNAPSHOT_FILE
from utilities.street import StreetUtility
from utilities.street_snapshot import FILE_NAME as STREET_SNAPSHOT_FILE

log = logging.getLogger("fixgw.node")
FAREWELL_TIMEOUT_S = 0.5  # the last heartbeat (state "stopping") on the way out
STATUS_INTERVAL_S = 1.0   # how often the status file is rewritten
# How long a node's received records may wait for more before their synced commit, by role
# (replication.writer). Nothing waits on the firm's replicas, nor on a street's copy of its
# peer's records (read at a takeover, seconds later); a customer utility's replicas carry the
# fills its customers wait for, so they commit at once.
REPLICA_LINGER_S = {"firm": 0.02, "street": 0.02}
# Roles whose own records wait the publish linger (2 ms) for more even at a low rate, so that one
# MQTT message carries several. A street records an order's SENT, VENUE_ACK and FILL within a
# few ms of each other; every message costs each of its four receivers a read, a commit and a
# PUBACK. Nobody waits on the first of them: the customer's acknowledgement (PendingNew) comes
# from the customer utility's own record, only the fill report waits on a street's. Measured
# (fixgw bench --config, 2,000 orders at 100/s, a fresh cluster per run, alternated twice): a
# street's publishes per order 0.93 -> 0.54, a customer utility's commits per order 2.85 -> 2.1,
# broker CPU 580-605 -> 445-505 us an order, cluster CPU 8.62/8.99 -> 8.03/8.78 ms an order,
# fill p50 9.0/9.3 -> 7.2/7.6 ms (fewer messages queue behind each other), ack p50 unchanged.
PUBLISH_LINGER_IDLE_ROLES = frozenset({"street"})

RoleApp = CustomerUtility | StreetUtility | FirmNode


def customer_settings(cfg: ClusterConfig, me: NodeConfig, node_dir: Path) -> list[SessionSettings]:
    """A customer utility's FIX acceptor sessions: every configured customer, in FIX.4.2 and 4.4."""
    if me.port is None:
        raise ClusterConfigError(f"{cfg.source}: customer utility {me.name}: port: expected a port to accept FIX on")
    return [
        SessionSettings(
            begin_string=b, sender_comp_id=me.comp_id, target_comp_id=client, connection_type="acceptor",
            socket_accept_host=me.host, socket_accept_port=me.port, heart_bt_int=30,
            refresh_on_logon=True,  # the session may have moved here: numbers from utilities.session_store
            file_store_path=node_dir / "fixstore", file_store_sync=cfg.fix_store_sync,
            file_log_path=node_dir / "fixlog",
            file_log_keep_days=cfg.fix_log_keep_days,
        )
        for client in cfg.customers for b in BEGIN_STRINGS
    ]


def street_settings(cfg: ClusterConfig, me: NodeConfig, node_dir: Path) -> dict[str, SessionSettings]:
    """A street utility's FIX initiator session to each of its venues (venue name -> settings)."""
    out = {}
    for vname in me.venues:
        v = cfg.venues[vname]
        out[vname] = SessionSettings(
            begin_string="FIX.4.4", sender_comp_id=me.comp_id, target_comp_id=v.comp_id,
            connection_type="initiator", socket_connect_host=v.host, socket_connect_port=v.port,
            heart_bt_int=5, reconnect_interval=1, max_reconnect_interval=2,
            reset_when_peer_forgot=True,  # a venue restarted empty: log on again with 141=Y (fixgw.session)
            file_store_path=node_dir / "fixstore", file_store_sync=cfg.fix_store_sync,
            file_log_path=node_dir / "fixlog",
            file_log_keep_days=cfg.fix_log_keep_days,
        )
    return out


class NodeProcess:
    """One node: ``await NodeProcess(cfg, me, catalogue).run()`` until SIGINT / SIGTERM."""

    def __init__(self, cfg: ClusterConfig, me: NodeConfig, catalogue: VenueCatalogue) -> None:
        self.cfg = cfg
        self.me = me
        self.catalogue = catalogue
        self.dir = cfg.node_data_dir(me.name)
        self.topics = Topics(cfg.name)
        self.liveness = Liveness(cfg.dead_after_s)
        self.state = "starting"
        self.app: RoleApp | None = None
        self.sessions: SessionOwner | None = None  # customer: who owns which customer FIX session
        self.retention: Retention | None = None     # every role: old finished orders leave the live log
        self.fence: Fence | None = None            # customer and street: the stall detector
        self.engine: Engine | None = None
        self.node: ReplicationNode | None = None
        self.started_at = time.time()
        self.stop_requested = asyncio.Event()
        self.instance = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"
        self.metrics_url: str | None = None
        self.login: BusLogin | None = None

    # ------------------------------------------------------------------ the bus
    def on_bus_message(self, topic: str, payload: bytes) -> None:
        """What the record node does not handle itself: heartbeats and commands."""
        kind = self.topics.kind_of(topic)
        if kind == HEARTBEAT_KIND:
            try:
                hb = Heartbeat.decode(payload)
            except ValueError as exc:
                log.warning("%s: malformed heartbeat on %s set aside: %s", self.me.name, topic, exc)
                return
            if topic != self.topics.heartbeat(hb.role, hb.node):  # the topic names the sender (broker ACL)
                log.warning("%s: heartbeat of %s %s on %s set aside", self.me.name, hb.role, hb.node, topic)
                return
            if hb.node != self.me.name:
                self.liveness.saw(hb)
        elif kind == COMMAND_KIND and isinstance(self.app, StreetUtility):
            self.app.on_command(topic, payload)
        elif kind == SESSION_KIND and self.sessions is not None:
            self.sessions.on_handover_message(payload)
        elif kind == QUOTE_KIND and isinstance(self.app, CustomerUtility):
            self.app.market_data.on_quotes(topic, payload)
        elif kind == MD_INTEREST_KIND and isinstance(self.app, StreetUtility) and self.app.quotes is not None:
            self.app.quotes.on_interest(topic, payload)

    async def publish(self, topic: str, payload: bytes) -> None:
        if self.node is None:
            raise UtilitiesError(f"{self.me.name}: the record node is not started yet")
        await self.node.publish(topic, payload, qos=1)

    async def publish_quotes(self, topic: str, payload: bytes) -> None:
        """Market data and market-data interest: QoS 0 (utilities.quote_wire says why)."""
        if self.node is None:
            raise UtilitiesError(f"{self.me.name}: the record node is not started yet")
        await self.node.publish(topic, payload, qos=0)

    def subscriptions(self) -> list[tuple[str, int]]:
        subs = [(self.topics.heartbeats(), 0)]
        if self.me.role == "street":
            subs.append((self.topics.commands(self.me.name), 1))
            subs.append((self.topics.all_md_interest(), 0))
        if self.me.role == "customer":
            subs.append((self.topics.sessions(self.me.name), 1))
            subs.append((self.topics.all_quotes(), 0))
        return subs

    async def running_elsewhere(self) -> Heartbeat | None:
        """A live heartbeat of this node id from another process, heard before connecting.

        Two processes under one node id would take the node's MQTT session from each other
        every few milliseconds (the broker keeps one connection per client id), after which
        neither can hear the other: so look before connecting, with a client id of our own.
        """
        me, cfg = self.me, self.cfg
        heard = await listen_briefly(cfg.broker.host, cfg.broker.port, self.topics.heartbeat(me.role, me.name),
                                     1.5 * cfg.heartbeat_s + 0.2, login=self.login)
        for payload in heard or ():
            try:
                hb = Heartbeat.decode(payload)
            except ValueError:
                continue
            if another_run_of(hb, me.name, self.instance) or (hb.node == me.name and not hb.instance
                                                              and hb.state != "stopping"):
                return hb
        return None

    # ------------------------------------------------------------------ the process
    async def run(self) -> int:
        """Run until asked to stop; 0, or 2 when this node already runs elsewhere."""
        me, cfg = self.me, self.cfg
        try:
            self.login = node_login(cfg, me)
        except AuthError as exc:
            log.error("%s: %s", me.name, exc)
            return 2
        self.dir.mkdir(parents=True, exist_ok=True)
        other = await self.running_elsewhere()
        if other is not None:
            log.error("%s: this node already runs (pid %d, %s, %s): not starting a second one",
                      me.name, other.pid, other.instance or "an older fixgw", other.state)
            return 2
        self.node = ReplicationNode(
            node_id=me.name, role=Role(me.role), cluster=cfg.name, data_dir=self.dir / "log",
            broker_host=cfg.broker.host, broker_port=cfg.broker.port, login=self.login,
            map_size=me.map_size, map_limit=me.map_limit,
            digest_interval=max(0.2, cfg.heartbeat_s),
            extra_subscriptions=self.subscriptions(), on_extra_message=self.on_bus_message,
            behind_after_s=cfg.behind_after_s,
            insert_linger_s=REPLICA_LINGER_S.get(me.role, 0.0),
            publish_linger_idle=me.role in PUBLISH_LINGER_IDLE_ROLES,
        )
        eventloop.stop_on_signals(self.stop_requested)
        background: list[asyncio.Task[Any]] = []
        metrics = self.serve_metrics()
        async with self.node as node:
            background.append(asyncio.create_task(self._heartbeats()))
            background.append(asyncio.create_task(self._status_writer()))
            if me.role != "firm":
                await self.catch_up_with_firm(node, timeout=max(5.0, 3 * cfg.dead_after_s))
            if me.role == "customer":
                background += await self.start_customer(node)
            elif me.role == "street":
                background += await self.start_street(node)
            else:
                background += await self.start_firm(node)
            self.retention = Retention(node.log, keep_days=cfg.retention_days)
            node.add_listener(self.retention.heard)
            background.append(asyncio.create_task(self.retention.run()))
            eventloop.settle_gc()   # after replaying the log into the role's views
            self.state = "ready"
            self.write_status()
            log.info("%s (%s) ready", me.name, me.role)
            await self.stop_requested.wait()
            self.state = "stopping"
            log.info("%s (%s) stopping", me.name, me.role)
            # a farewell heartbeat is a courtesy: never wait on a broker that is going away
            # (a QoS 0 publish caught by a dropped connection would wait the publish timeout)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.beat(), FAREWELL_TIMEOUT_S)
            if self.engine is not None:
                await self.engine.stop()
            if isinstance(self.app, CustomerUtility | StreetUtility):
                await self.app.write_snapshot()   # a clean stop: the next start folds nothing
            for t in background:
                t.cancel()
            self.write_status()
        if metrics is not None:
            metrics.close()
        log.info("%s (%s) stopped", me.name, me.role)
        return 0

    def role_counters(self) -> dict[str, int]:
        """The role's counters with those of its parts (a customer utility's market data, a
        street's quote feed, the fence): what status.json and the metrics both show."""
        app = self.app
        if app is None:
            return {}
        out = dict(app.counters)
        if isinstance(app, CustomerUtility):
            out.update(app.market_data.counters)
        elif isinstance(app, StreetUtility) and app.quotes is not None:
            out.update(app.quotes.counters)
        if self.fence is not None:
            out.update({f"fence_{k}": v for k, v in self.fence.counters.items()})
        if self.retention is not None:
            out.update(self.retention.counters)
        return out

    def serve_metrics(self) -> MetricsServer | None:
        """The node's Prometheus endpoint, when the config gives it a port (a port in use is
        logged and the node runs without metrics: metrics must never stop the trading)."""
        me = self.me
        if me.metrics_port is None:
            return None
        labels = {"node": me.name, "role": me.role}
        try:
            server = serve_metrics(me.host, me.metrics_port, [
                NodeCollector(me.name, me.role, lambda: self.node, lambda: self.app, self.role_counters),
                EngineCollector(lambda: self.engine, labels),
            ])
        except OSError as exc:
            log.error("%s: metrics not served on %s:%d: %s", me.name, me.host, me.metrics_port, exc)
            return None
        self.metrics_url = server.url
        log.info("%s: metrics on %s", me.name, server.url)
        return server

    async def catch_up_with_firm(self, node: ReplicationNode, timeout: float) -> bool:
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

    # ------------------------------------------------------------------ the roles
    async def start_customer(self, node: ReplicationNode) -> list[asyncio.Task[Any]]:
        cfg, me = self.cfg, self.me
        # the stall detector (utilities.fencing), the street utilities' own: a paused customer
        # utility drops its sessions and takes none, routes nothing, until caught up
        self.fence = fence = Fence(me.name, node, dead_after_s=cfg.dead_after_s, heartbeat_s=cfg.heartbeat_s)
        watchdog = asyncio.create_task(fence.run())
        self.sessions = sessions = SessionOwner(
            node=node, me=me.name, peers=[n.name for n in cfg.nodes_with_role("customer")], liveness=self.liveness,
            dead_after_s=cfg.dead_after_s, heartbeat_s=cfg.heartbeat_s, cluster=cfg.name, publish=self.publish,
            fence=fence)
        app = CustomerUtility(
            sessions=sessions, fence=fence,
            node=node, node_name=me.name, comp_id=me.comp_id, cluster=cfg.name,
            customers={c.comp_id: c.accounts for c in cfg.customers.values()},
            passwords={c.comp_id: c.password for c in cfg.customers.values() if c.password},
            symbol_venues=self.catalogue.symbol_venue,
            streets={n.name: n.venues for n in cfg.nodes_with_role("street")},
            liveness=self.liveness, publish=self.publish, reference_prices=self.catalogue.prices,
            rate_limits={c.comp_id: c.max_messages_per_s for c in cfg.customers.values()
                         if c.max_messages_per_s is not None},
            in_flight=cfg.in_flight_limits(),
            snapshot_path=self.dir / "snapshot" / SNAPSHOT_FILE, snapshot_every=cfg.snapshot_every_records,
            peers=tuple(n.name for n in cfg.nodes_with_role("customer") if n.name != me.name),
        )
        app.market_data.publish = self.publish_quotes
        app.load()
        self.app = app
        # ready = able to route: a live street utility for every venue (bounded: streets may be down)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(2.0, 2 * cfg.dead_after_s)
        await asyncio.sleep(2 * cfg.heartbeat_s)      # hear every live street at least once
        while loop.time() < deadline and not all(app.can_route(v) for v in cfg.venues):
            await asyncio.sleep(0.05)
        stores = SessionStoreFactory(str(self.dir / "fixstore"), sessions, sync=cfg.fix_store_sync,
                                     health=node.storage)
        self.engine = Engine(customer_settings(cfg, me, self.dir), app, store_factory=stores)
        await self.engine.start()
        return [watchdog, asyncio.create_task(app.run_router()), asyncio.create_task(self._retry_spilled(stores)),
                asyncio.create_task(app.market_data.run(cfg.heartbeat_s))]

    async def _retry_spilled(self, stores: SessionStoreFactory) -> None:
        """A full disk: the FIX message stores hold messages in memory until they can write."""
        while True:
            await asyncio.sleep(0.5)
            if not self.node or self.node.storage.ok:
                continue
            try:
                await asyncio.to_thread(stores.retry_spilled)
            except Exception:
                log.exception("%s: writing held FIX messages failed", self.me.name)

    async def start_street(self, node: ReplicationNode) -> list[asyncio.Task[Any]]:
        cfg, me = self.cfg, self.me
        settings = street_settings(cfg, me, self.dir)
        # the stall detector (utilities.fencing): a paused street sends nothing until caught up
        self.fence = fence = Fence(me.name, node, dead_after_s=cfg.dead_after_s, heartbeat_s=cfg.heartbeat_s)
        watchdog = asyncio.create_task(fence.run())
        app = StreetUtility(
            node=node, node_name=me.name,
            venues={v: s.session_id for v, s in settings.items()},
            peers=tuple(n.name for n in cfg.nodes_with_role("street") if n.name != me.name),
            liveness=self.liveness, startup_grace_s=cfg.dead_after_s, fence=fence,
            command_ttl_s=TTL_FACTOR * cfg.dead_after_s,
            snapshot_path=self.dir / "snapshot" / STREET_SNAPSHOT_FILE, snapshot_every=cfg.snapshot_every_records,
        )
        app.quotes = quotes = QuoteFeed(
            name=me.name, cluster=cfg.name, symbol_venues=self.catalogue.symbol_venue, peers=app.peers,
            liveness=self.liveness, logged_on=app.logged_on, send=app.send_to_venue, publish=self.publish_quotes,
            interest_ttl_s=cfg.dead_after_s)
        app.load()
        self.app = app
        self.engine = engine = Engine(list(settings.values()), app)
        await engine.start()
        # ready = able to send orders: logged on to the venues (bounded: a venue may be down)
        try:
            await asyncio.wait_for(asyncio.gather(*(engine.wait_logged_on(s.session_id) for s in settings.values())),
                                   timeout=max(5.0, 3 * cfg.dead_after_s))
        except TimeoutError:
            log.warning("%s: not logged on to every venue yet (%s): starting anyway", me.name,
                        ", ".join(sorted(set(settings) - app.logged_on)))
        await self.beat()   # tell the customer utilities at once which venues we reach
        return [watchdog, asyncio.create_task(app.run_takeover()), asyncio.create_task(quotes.run())]

    async def start_firm(self, node: ReplicationNode) -> list[asyncio.Task[Any]]:
        others = [n for n in self.cfg.nodes if n != self.me.name]

        def caught_up() -> bool:
            digests, hwms = node.peer_digests(), node.log.high_water_marks()
            return all(n in digests and hwms.get(n, 0) >= digests[n].head for n in others)

        firm = FirmNode(node=node, node_name=self.me.name, accounts=self.cfg.accounts, eod_dir=self.dir / "eod",
                        reference_prices=self.catalogue.prices, retention_days=self.cfg.retention_days,
                        caught_up=caught_up)
        self.app = firm
        await firm.open_accounts()
        return [asyncio.create_task(firm.run_daily())]

    # ------------------------------------------------------------------ heartbeats
    def heartbeat(self) -> Heartbeat:
        venues: tuple[str, ...] = ()
        if isinstance(self.app, StreetUtility):
            venues = tuple(sorted(self.app.logged_on))
        sessions = self.sessions.owned_clients() if self.sessions is not None else ()
        # a node that cannot store (a full disk or map) says so: gateways route no new Logon to
        # it (utilities.gateway: only "ready" is routable) and keep the connections it has
        state = "degraded" if self.state == "ready" and self.node is not None and not self.node.storage.ok \
            else self.state
        return Heartbeat(self.me.name, self.me.role, state, venues, os.getpid(), self.instance, sessions)

    async def beat(self) -> None:
        """Publish one heartbeat (QoS 0; nothing when the broker is away)."""
        if self.node is None or not self.node.connected:
            return
        try:
            await self.node.publish(self.topics.heartbeat(self.me.role, self.me.name), self.heartbeat().encode(), qos=0)
        except Exception as exc:  # noqa: BLE001 - whatever the MQTT client raises, the next beat tries again
            log.debug("heartbeat not sent: %s", exc)

    async def _heartbeats(self) -> None:
        while True:
            await self.beat()
            await asyncio.sleep(self.cfg.heartbeat_s)

    # ------------------------------------------------------------------ status file
    def status(self) -> dict[str, Any]:
        """What the status file says now (``utilities.node_status``)."""
        node = self.node
        st: dict[str, Any] = {"name": self.me.name, "role": self.me.role, "pid": os.getpid(), "state": self.state,
                              "started_at": self.started_at, "updated_at": time.time(), "instance": self.instance}
        if node is not None:
            try:
                s = node.stats
                st.update(connected=s.connected, own_seq=s.head, hwm=dict(s.hwms), malformed=s.malformed,
                          received=s.received, duplicates=s.duplicates, gaps_requested=s.gaps_requested,
                          published_upto=s.published_upto, published=s.published, publishes=s.publishes,
                          commits=s.commits, conflicts=s.conflicts, resends_limited=s.resends_limited,
                          recent_conflicts=[c.as_dict() for c in s.recent_conflicts])
                st["peer_heads"] = {n: d.head for n, d in node.peer_digests().items()}
                # per origin: records and seconds behind; those over cluster.behind_after_s
                st["replication_lag"] = {o: lag.as_dict() for o, lag in sorted(node.replication_lag().items())}
                st["behind"] = sorted(node.lag.behind)
                st["map"] = node.log.map_usage().as_dict()  # near_limit: at 80% of map_limit
                st["not_stored"] = s.not_stored
            except Exception as exc:  # noqa: BLE001 - the log is closed while stopping (LMDB's own errors)
                st["error"] = str(exc)
            # a full disk or map (replication.storage_health): "degraded" says why, or is None
            st["storage"] = node.storage.as_dict()
            st["degraded"] = st["storage"]["degraded"]
        if self.metrics_url is not None:
            st["metrics_url"] = self.metrics_url
        if self.engine is not None:
            st["fix_sessions"] = {str(sid): rt.logged_on for sid, rt in self.engine.sessions.items()}
            st["fix_seqnums"] = {str(sid): [rt.session.next_sender, rt.session.next_target]
                                 for sid, rt in self.engine.sessions.items()}
        if self.app is not None:
            st["counters"] = self.role_counters()
            if self.fence is not None:
                st["fenced"] = self.fence.fenced
        if isinstance(self.app, CustomerUtility):
            st["in_flight"] = self.app.in_flight_report()
            st["startup"] = dict(self.app.startup)   # snapshot used or not, records folded (utilities.snapshot)
        elif isinstance(self.app, StreetUtility):
            st["startup"] = dict(self.app.startup)   # the same of the street's (utilities.street_snapshot)
        if self.sessions is not None and isinstance(self.app, CustomerUtility):
            st["sessions"] = self.app.session_report()
            st["session_counters"] = dict(self.sessions.counters)
        return st

    def write_status(self) -> None:
        write_status(self.dir, self.status())

    def check_lag(self) -> None:
        """Say it in the log when this node falls more than ``cluster.behind_after_s`` behind an
        origin's records, and when it has caught up again (replication.lag)."""
        node = self.node
        if node is None:
            return
        try:
            lags = node.replication_lag()
        except Exception:  # noqa: BLE001 - the log is closed while stopping (LMDB's own errors)
            return
        fell, caught = node.lag.update_behind(lags)
        for origin in fell:
            lag = lags[origin]
            log.warning("%s: BEHIND %s: %d records, %.1f s behind (cluster.behind_after_s = %g)",
                        self.me.name, origin, lag.records, lag.seconds, self.cfg.behind_after_s)
        for origin in caught:
            log.info("%s: caught up with %s (%d records, %.1f s behind)", self.me.name, origin,
                     lags[origin].records, lags[origin].seconds)

    async def _status_writer(self) -> None:
        while True:
            self.check_lag()
            try:
                self.write_status()
            except OSError as exc:
                log.warning("status file not written: %s", exc)
            await asyncio.sleep(STATUS_INTERVAL_S)


def run_node_process(cfg: ClusterConfig, me: NodeConfig, catalogue: VenueCatalogue) -> int:
    """Run node ``me`` of ``cfg`` in this process until SIGINT / SIGTERM; its exit code."""
    logging.basicConfig(level=os.environ.get("FIXGW_LOG", "INFO"),
                        format=f"%(asctime)s {me.name} %(levelname)s %(name)s: %(message)s")
    return eventloop.run(NodeProcess(cfg, me, catalogue).run())
