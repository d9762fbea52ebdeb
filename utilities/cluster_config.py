"""The cluster configuration: which nodes, venues, customers, accounts and broker.

One TOML file describes the whole brokerage (``configs/local.toml``). Every mistake names
the file, the key and what was expected, because operators edit this file by hand.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from replication.auth import MONITOR_USER
from replication.lag import DEFAULT_BEHIND_AFTER_S
from utilities.errors import UtilitiesError
from utilities.in_flight import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_IN_FLIGHT_PER_SESSION,
    POLICIES,
    InFlightLimits,
)
from utilities.retention import DEFAULT_KEEP_DAYS
from utilities.snapshot import DEFAULT_EVERY_RECORDS as DEFAULT_SNAPSHOT_EVERY

ROLES = ("customer", "street", "firm")
VENUE_KINDS = ("exchange", "fund")
BROKER_KINDS = ("auto", "mosquitto", "amqtt", "external")
BEGIN_STRINGS = ("FIX.4.2", "FIX.4.4")
# A node's LMDB record log: the map it opens with, and the most it grows to by itself
# (replication/mapsize.py). Address space, not disk: the file grows with the data.
DEFAULT_MAP_SIZE = 1 << 30
DEFAULT_MAP_LIMIT = 64 << 30
SIZE_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
_SIZE_EXPECTED = 'a size: bytes as an integer, or a string such as "512MiB", "4GiB" or "1TiB"'


class ClusterConfigError(UtilitiesError, ValueError):
    """A mistake in a cluster config file; the message names file, key and expectation."""


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    kind: str
    host: str
    port: int
    auth: bool = True                         # per-node logins and ACL; false: anonymous (never in production)
    tls: bool = False                         # TLS to the broker; `fixgw up` makes a local CA and certificate
    ca_file: Path | None = None               # the CA to trust instead (a broker you run, kind = "external")
    monitor_password_file: Path | None = None  # read-only login; default <data_dir>/secrets/monitor.password


@dataclass(frozen=True, slots=True)
class VenueConfig:
    name: str
    kind: str
    host: str
    port: int
    comp_id: str
    config: Path | None          # venue-specific file (symbols, funds); None = built-in set
    day_seconds: float | None    # fund only: a simulated business day of N seconds
    metrics_port: int | None = None  # Prometheus endpoint (http://host:port/metrics); None = none


@dataclass(frozen=True, slots=True)
class NodeConfig:
    name: str
    role: str
    host: str = "127.0.0.1"
    port: int | None = None              # customer: FIX acceptor port
    comp_id: str = ""                    # customer: our CompID towards clients; street: towards venues
    venues: tuple[str, ...] = ()         # street: venues it connects to
    map_size: int = DEFAULT_MAP_SIZE     # its record log's LMDB map at start (bytes) ...
    map_limit: int = DEFAULT_MAP_LIMIT   # ... and the most the log grows it to by itself
    password_file: Path | None = None    # its broker password; default <data_dir>/secrets/<name>.password
    metrics_port: int | None = None      # Prometheus endpoint (http://host:port/metrics); None = none

    @property
    def metrics_url(self) -> str | None:
        return None if self.metrics_port is None else f"http://{self.host}:{self.metrics_port}/metrics"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """A FIX-aware router in front of the customer utilities (``fixgw gateway``)."""

    name: str
    host: str
    port: int
    tls_cert: Path | None = None         # both or neither: TLS towards customers
    tls_key: Path | None = None
    logon_timeout_s: float = 10.0        # a connection with no Logon after this is closed
    max_logon_bytes: int = 4096          # a first message longer than this is closed
    metrics_port: int | None = None      # Prometheus endpoint (http://host:port/metrics); None = none

    @property
    def metrics_url(self) -> str | None:
        return None if self.metrics_port is None else f"http://{self.host}:{self.metrics_port}/metrics"


@dataclass(frozen=True, slots=True)
class CustomerConfig:
    comp_id: str
    accounts: tuple[str, ...]
    password: str = ""
    # messages per second each of its sessions may send (fixgw.throttle); None: no limit
    max_messages_per_s: float | None = None
    # orders in flight each of its sessions may have (utilities.in_flight); None: the cluster's
    max_in_flight: int | None = None
    in_flight_policy: str | None = None  # "pause" or "reject"; None: the cluster's


@dataclass(frozen=True, slots=True)
class AccountConfig:
    id: str
    cash: Decimal
    positions: Mapping[str, Decimal]
    active: bool = True
    max_order_qty: Decimal | None = None
    max_notional: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    source: Path
    name: str
    data_dir: Path
    broker: BrokerConfig
    venues: Mapping[str, VenueConfig]
    nodes: Mapping[str, NodeConfig]
    customers: Mapping[str, CustomerConfig]
    accounts: Mapping[str, AccountConfig]
    heartbeat_s: float = 1.0             # node liveness beacons
    dead_after_s: float = 3.0            # a peer silent this long is taken as dead
    # fsync each FIX session store commit (FileStoreSync) of the utilities and venues; off by
    # default: orders are durable in the record log, and the stores survive a killed process
    fix_store_sync: bool = False
    fix_log_keep_days: int = 7           # FIX message/event logs rotate daily; older days deleted (0: kept)
    settings: Mapping[str, Any] = field(default_factory=dict)
    dashboard_port: int | None = None    # the web dashboard `fixgw up` serves (None: not served)
    dashboard_host: str = "127.0.0.1"
    # `fixgw up` restarts a child that exits on its own (with back-off); off for tests that kill
    # processes on purpose and start them again by hand
    restart_children: bool = True
    # backpressure (utilities.in_flight): orders a customer utility has taken and a venue has
    # not answered yet, in all and per session; at the bound "pause" reading or "reject"
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    max_in_flight_per_session: int = DEFAULT_MAX_IN_FLIGHT_PER_SESSION
    in_flight_policy: str = "pause"
    # a node more than this many seconds behind an origin's records says so (replication.lag)
    behind_after_s: float = DEFAULT_BEHIND_AFTER_S
    # a customer or street utility's snapshot every this many records (utilities.snapshot,
    # utilities.street_snapshot; 0: at start and stop only)
    snapshot_every_records: int = DEFAULT_SNAPSHOT_EVERY
    # closed trading days whose finished orders stay in every node's live log (utilities.retention);
    # the firm carries the balances forward to the day before them
    retention_days: int = DEFAULT_KEEP_DAYS

    def in_flight_limits(self) -> InFlightLimits:
        return InFlightLimits(
            total=self.max_in_flight, per_session=self.max_in_flight_per_session, policy=self.in_flight_policy,
            customer_bounds={c.comp_id: c.max_in_flight for c in self.customers.values() if c.max_in_flight is not None},
            customer_policies={c.comp_id: c.in_flight_policy for c in self.customers.values()
                               if c.in_flight_policy is not None})

    @property
    def dashboard_url(self) -> str | None:
        return None if self.dashboard_port is None else f"http://{self.dashboard_host}:{self.dashboard_port}/"
    gateways: Mapping[str, GatewayConfig] = field(default_factory=dict)

    def gateway(self, name: str | None) -> GatewayConfig:
        """The gateway called ``name``; with None, the only one the config defines."""
        if name is None:
            if len(self.gateways) != 1:
                raise ClusterConfigError(
                    f"{self.source}: key 'gateways': expected exactly one [[gateways]] entry when no name is "
                    f"given, got {len(self.gateways)} ({', '.join(self.gateways) or 'none'})"
                )
            return next(iter(self.gateways.values()))
        try:
            return self.gateways[name]
        except KeyError:
            raise ClusterConfigError(
                f"{self.source}: no gateway named {name!r} (gateways: {', '.join(self.gateways) or 'none'})"
            ) from None

    def nodes_with_role(self, role: str) -> list[NodeConfig]:
        return [n for n in self.nodes.values() if n.role == role]

    def node(self, name: str) -> NodeConfig:
        try:
            return self.nodes[name]
        except KeyError:
            raise ClusterConfigError(
                f"{self.source}: no node named {name!r} (nodes: {', '.join(self.nodes)})"
            ) from None

    def node_data_dir(self, name: str) -> Path:
        return self.data_dir / name


class _Reader:
    def __init__(self, source: Path) -> None:
        self.source = source

    def fail(self, key: str, expected: str, got: Any = None) -> ClusterConfigError:
        tail = "" if got is None else f", got {got!r}"
        return ClusterConfigError(f"{self.source}: key '{key}': expected {expected}{tail}")

    def tables(self, data: Mapping[str, Any], key: str, non_empty: bool = False) -> list[tuple[str, dict[str, Any]]]:
        """An array of tables (``[[key]]``) as (``key[i].``, table) pairs, each checked to be a table."""
        raw = data.get(key, [])
        if not isinstance(raw, list) or (non_empty and not raw):
            kind = "a non-empty array of tables" if non_empty else "an array of tables"
            raise self.fail(key, f"{kind} ([[{key}]])", raw)
        out = []
        for i, t in enumerate(raw):
            if not isinstance(t, dict):
                raise self.fail(f"{key}[{i}]", "a table", t)
            out.append((f"{key}[{i}].", t))
        return out

    def table(self, data: Mapping[str, Any], key: str, where: str, required: bool = False) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(f"{where}{key}", "a table")
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"{where}{key}", "a table", value)
        return value

    def str_(self, data: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
        value = data.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(f"{where}{key}", "a non-empty string", value)
        return value

    def port(self, data: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int:
        value = data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
            raise self.fail(f"{where}{key}", "an integer port 1..65535", value)
        return value

    def decimal(self, value: Any, key: str) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.fail(key, "a decimal number written as a string or an integer (never a float)", value)
        try:
            d = Decimal(str(value))
        except InvalidOperation:
            raise self.fail(key, "a decimal number", value) from None
        if not d.is_finite():
            raise self.fail(key, "a finite decimal number", value)
        return d

    def size(self, data: Mapping[str, Any], key: str, where: str, default: int) -> int:
        value = data.get(key, default)
        if isinstance(value, str):
            number, unit = value.strip(), "B"
            for u in sorted(SIZE_UNITS, key=len, reverse=True):  # "KiB" before "B"
                if number.endswith(u):
                    number, unit = number[: -len(u)].strip(), u
                    break
            if number.isdigit():
                value = int(number) * SIZE_UNITS[unit]
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise self.fail(where + key, _SIZE_EXPECTED, data.get(key))
        return value

    def count(self, data: Mapping[str, Any], key: str, where: str, default: int | None, what: str) -> int | None:
        """A whole number >= 1 (``default`` when the key is absent)."""
        value = data.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(f"{where}{key}", f"a whole number of {what} >= 1", value)
        return value

    def policy(self, data: Mapping[str, Any], key: str, where: str) -> str | None:
        """An in-flight policy (utilities.in_flight.POLICIES), None when absent."""
        value = data.get(key)
        if value is not None and value not in POLICIES:
            raise self.fail(f"{where}{key}", "one of " + ", ".join(f'"{p}"' for p in POLICIES), value)
        return value

    def bool_(self, data: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{where}{key}", "true or false", value)
        return value

    def path(self, data: Mapping[str, Any], key: str, where: str) -> Path | None:
        """An optional file path, relative to the config file's directory."""
        if key not in data:
            return None
        p = Path(self.str_(data, key, where))
        return p if p.is_absolute() else self.source.resolve().parent / p

    def check_keys(self, data: Mapping[str, Any], allowed: set[str], where: str) -> None:
        for key in data:
            if key not in allowed:
                raise ClusterConfigError(
                    f"{self.source}: unknown key '{where}{key}' (expected one of: {', '.join(sorted(allowed))})"
                )


def load_cluster_config(path: str | Path) -> ClusterConfig:
    source = Path(path)
    try:
        text = source.read_text()
    except OSError as exc:
        raise ClusterConfigError(f"{source}: cannot read the cluster config: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ClusterConfigError(f"{source}: not valid TOML: {exc}") from None
    return parse_cluster_config(data, source)


def parse_cluster_config(data: Mapping[str, Any], source: Path) -> ClusterConfig:
    r = _Reader(source)
    r.check_keys(data, {"cluster", "broker", "venues", "nodes", "customers", "accounts", "settings", "gateways"}, "")
    cluster = r.table(data, "cluster", "", required=True)
    r.check_keys(cluster, {"name", "data_dir", "heartbeat_s", "dead_after_s", "fix_store_sync", "map_size",
                           "map_limit", "fix_log_keep_days", "dashboard_port", "dashboard_host",
                           "restart_children", "max_in_flight", "max_in_flight_per_session", "in_flight_policy",
                           "behind_after_s", "snapshot_every_records", "retention_days"}, "cluster.")
    name = r.str_(cluster, "name", "cluster.")
    data_dir = Path(r.str_(cluster, "data_dir", "cluster.", "var/" + name))
    if not data_dir.is_absolute():
        # relative to the project root when the config sits in configs/, else to the file
        base = source.resolve().parent
        data_dir = (base.parent if base.name == "configs" else base) / data_dir
    heartbeat_s = _positive_number(r, cluster, "heartbeat_s", "cluster.", 1.0)
    dead_after_s = _positive_number(r, cluster, "dead_after_s", "cluster.", 3.0)
    fix_store_sync = cluster.get("fix_store_sync", False)
    if not isinstance(fix_store_sync, bool):
        raise r.fail("cluster.fix_store_sync", "true or false", fix_store_sync)
    restart_children = cluster.get("restart_children", True)
    if not isinstance(restart_children, bool):
        raise r.fail("cluster.restart_children", "true or false", restart_children)
    fix_log_keep_days = cluster.get("fix_log_keep_days", 7)
    if isinstance(fix_log_keep_days, bool) or not isinstance(fix_log_keep_days, int) or fix_log_keep_days < 0:
        raise r.fail("cluster.fix_log_keep_days", "a whole number of days >= 0 (0: keep every day)", fix_log_keep_days)
    # every node's default, which a node may override with its own map_size / map_limit
    map_size = r.size(cluster, "map_size", "cluster.", DEFAULT_MAP_SIZE)
    map_limit = r.size(cluster, "map_limit", "cluster.", max(DEFAULT_MAP_LIMIT, map_size))
    if map_limit < map_size:
        raise r.fail("cluster.map_limit", f"at least cluster.map_size ({map_size} bytes)", cluster["map_limit"])
    dashboard_port = r.port(cluster, "dashboard_port", "cluster.") if "dashboard_port" in cluster else None
    dashboard_host = r.str_(cluster, "dashboard_host", "cluster.", "127.0.0.1")
    max_in_flight = r.count(cluster, "max_in_flight", "cluster.", DEFAULT_MAX_IN_FLIGHT, "orders") \
        or DEFAULT_MAX_IN_FLIGHT
    max_in_flight_per_session = r.count(cluster, "max_in_flight_per_session", "cluster.",
                                        DEFAULT_MAX_IN_FLIGHT_PER_SESSION, "orders") or DEFAULT_MAX_IN_FLIGHT_PER_SESSION
    in_flight_policy = r.policy(cluster, "in_flight_policy", "cluster.") or "pause"
    snapshot_every = cluster.get("snapshot_every_records", DEFAULT_SNAPSHOT_EVERY)
    if isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int) or snapshot_every < 0:
        raise r.fail("cluster.snapshot_every_records", "a whole number of records >= 0 (0: a snapshot only at "
                     "start-up and at a clean stop)", snapshot_every)
    retention_days = cluster.get("retention_days", DEFAULT_KEEP_DAYS)
    if isinstance(retention_days, bool) or not isinstance(retention_days, int) or not 0 <= retention_days <= 366:
        raise r.fail("cluster.retention_days", "a whole number of closed trading days from 0 to 366", retention_days)
    behind_after_s = cluster.get("behind_after_s", DEFAULT_BEHIND_AFTER_S)
    if isinstance(behind_after_s, bool) or not isinstance(behind_after_s, (int, float)) or not behind_after_s > 0:
        raise r.fail("cluster.behind_after_s", "a number of seconds > 0", behind_after_s)

    b = r.table(data, "broker", "")
    r.check_keys(b, {"kind", "host", "port", "auth", "tls", "ca_file", "monitor_password_file"}, "broker.")
    kind = b.get("kind", "auto")
    if kind not in BROKER_KINDS:
        raise r.fail("broker.kind", "one of " + ", ".join(BROKER_KINDS), kind)
    auth, tls = r.bool_(b, "auth", "broker.", True), r.bool_(b, "tls", "broker.", False)
    if tls and not auth:
        raise r.fail("broker.auth", "true when broker.tls = true (TLS without logins would still let anyone publish)",
                      auth)
    broker = BrokerConfig(kind=kind, host=r.str_(b, "host", "broker.", "127.0.0.1"), port=r.port(b, "port", "broker.", 1883),
                          auth=auth, tls=tls, ca_file=r.path(b, "ca_file", "broker."),
                          monitor_password_file=r.path(b, "monitor_password_file", "broker."))

    venues: dict[str, VenueConfig] = {}
    for vname, v in r.table(data, "venues", "").items():
        where = f"venues.{vname}."
        if not isinstance(v, dict):
            raise r.fail(f"venues.{vname}", "a table", v)
        r.check_keys(v, {"kind", "host", "port", "comp_id", "config", "day_seconds", "metrics_port"}, where)
        vkind = v.get("kind")
        if vkind not in VENUE_KINDS:
            raise r.fail(where + "kind", "one of " + ", ".join(VENUE_KINDS), vkind)
        vconf = v.get("config")
        venues[vname] = VenueConfig(
            name=vname,
            kind=vkind,
            host=r.str_(v, "host", where, "127.0.0.1"),
            port=r.port(v, "port", where),
            comp_id=r.str_(v, "comp_id", where, "EXCH" if vkind == "exchange" else "FUND"),
            config=None if vconf is None else (source.resolve().parent / r.str_(v, "config", where)),
            day_seconds=None if "day_seconds" not in v else _positive_number(r, v, "day_seconds", where, 0.0),
            metrics_port=r.port(v, "metrics_port", where) if "metrics_port" in v else None,
        )

    nodes: dict[str, NodeConfig] = {}
    for where, n in r.tables(data, "nodes", non_empty=True):
        r.check_keys(n, {"name", "role", "host", "port", "comp_id", "venues", "map_size", "map_limit", "password_file",
                         "metrics_port"}, where)
        nname = r.str_(n, "name", where)
        if nname in nodes:
            raise r.fail(where + "name", "a unique node name", nname)
        if nname == MONITOR_USER:
            raise r.fail(where + "name", f"a name other than {MONITOR_USER!r} (the broker's read-only user)", nname)
        if "/" in nname or "-" in nname or "+" in nname or "#" in nname:
            raise r.fail(where + "name", "a name without '/', '-', '+' or '#'", nname)
        role = n.get("role")
        if role not in ROLES:
            raise r.fail(where + "role", "one of " + ", ".join(ROLES), role)
        port = r.port(n, "port", where) if role == "customer" else None
        nvenues = n.get("venues", list(venues) if role == "street" else [])
        if not isinstance(nvenues, list) or not all(isinstance(x, str) for x in nvenues):
            raise r.fail(where + "venues", "an array of venue names", nvenues)
        for vn in nvenues:
            if vn not in venues:
                raise r.fail(where + "venues", f"names of venues defined under [venues] ({', '.join(venues)})", vn)
        default_comp = {"customer": "FIXGW", "street": "FIXGW-" + nname.upper(), "firm": ""}[role]
        comp_id = n.get("comp_id", default_comp)
        if not isinstance(comp_id, str):
            raise r.fail(where + "comp_id", "a string", comp_id)
        node_map_size = r.size(n, "map_size", where, map_size)
        node_map_limit = r.size(n, "map_limit", where, max(map_limit, node_map_size))
        if node_map_limit < node_map_size:
            raise r.fail(where + "map_limit", f"at least the node's map_size ({node_map_size} bytes)",
                         n.get("map_limit", map_limit))
        nodes[nname] = NodeConfig(
            name=nname, role=role, host=r.str_(n, "host", where, "127.0.0.1"), port=port,
            comp_id=comp_id, venues=tuple(nvenues), map_size=node_map_size, map_limit=node_map_limit,
            password_file=r.path(n, "password_file", where),
            metrics_port=r.port(n, "metrics_port", where) if "metrics_port" in n else None,
        )
    firms = [n for n in nodes.values() if n.role == "firm"]
    if len(firms) != 1:
        raise r.fail("nodes", "exactly one node with role = \"firm\"", len(firms))

    customers: dict[str, CustomerConfig] = {}
    for where, c in r.tables(data, "customers"):
        r.check_keys(c, {"comp_id", "accounts", "password", "max_messages_per_s", "max_in_flight",
                         "in_flight_policy"}, where)
        comp = r.str_(c, "comp_id", where)
        accts = c.get("accounts")
        if not isinstance(accts, list) or not accts or not all(isinstance(a, str) for a in accts):
            raise r.fail(where + "accounts", "a non-empty array of account ids", accts)
        pw = c.get("password", "")
        if not isinstance(pw, str):
            raise r.fail(where + "password", "a string", pw)
        rate = c.get("max_messages_per_s")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0):
            raise r.fail(where + "max_messages_per_s", "a number of messages per second > 0", rate)
        customers[comp] = CustomerConfig(comp_id=comp, accounts=tuple(accts), password=pw,
                                         max_messages_per_s=float(rate) if rate is not None else None,
                                         max_in_flight=r.count(c, "max_in_flight", where, None, "orders"),
                                         in_flight_policy=r.policy(c, "in_flight_policy", where))

    accounts: dict[str, AccountConfig] = {}
    for where, a in r.tables(data, "accounts"):
        r.check_keys(a, {"id", "cash", "positions", "active", "max_order_qty", "max_notional"}, where)
        aid = r.str_(a, "id", where)
        pos_raw = a.get("positions", {})
        if not isinstance(pos_raw, dict):
            raise r.fail(where + "positions", "a table of symbol = quantity", pos_raw)
        positions = {sym: r.decimal(q, f"{where}positions.{sym}") for sym, q in pos_raw.items()}
        active = a.get("active", True)
        if not isinstance(active, bool):
            raise r.fail(where + "active", "true or false", active)
        accounts[aid] = AccountConfig(
            id=aid,
            cash=r.decimal(a.get("cash", 0), where + "cash"),
            positions=positions,
            active=active,
            max_order_qty=None if "max_order_qty" not in a else r.decimal(a["max_order_qty"], where + "max_order_qty"),
            max_notional=None if "max_notional" not in a else r.decimal(a["max_notional"], where + "max_notional"),
        )
    for comp, cust in customers.items():
        for acct in cust.accounts:
            if acct not in accounts:
                raise ClusterConfigError(
                    f"{source}: customer {comp!r} may trade account {acct!r}, which no [[accounts]] entry defines"
                )
    settings = r.table(data, "settings", "")
    gateways = _gateways(r, data, taken=set(nodes) | set(venues))
    if gateways and not any(n.role == "customer" for n in nodes.values()):
        raise r.fail("gateways", "customer utilities to route to: a [[nodes]] entry with role = \"customer\"")
    return ClusterConfig(
        source=source, name=name, data_dir=data_dir, broker=broker, venues=venues, nodes=nodes,
        customers=customers, accounts=accounts, heartbeat_s=heartbeat_s, dead_after_s=dead_after_s,
        fix_store_sync=fix_store_sync, fix_log_keep_days=fix_log_keep_days, settings=settings, gateways=gateways,
        dashboard_port=dashboard_port, dashboard_host=dashboard_host, restart_children=restart_children,
        max_in_flight=max_in_flight, max_in_flight_per_session=max_in_flight_per_session,
        in_flight_policy=in_flight_policy, behind_after_s=float(behind_after_s),
        snapshot_every_records=snapshot_every, retention_days=retention_days,
    )


MIN_LOGON_BYTES = 64  # the framer's floor; a real Logon is 80-300 bytes


def _gateways(r: _Reader, data: Mapping[str, Any], taken: set[str]) -> dict[str, GatewayConfig]:
    gateways: dict[str, GatewayConfig] = {}
    for where, g in r.tables(data, "gateways"):
        r.check_keys(g, {"name", "host", "port", "tls_cert", "tls_key", "logon_timeout_s", "max_logon_bytes",
                         "metrics_port"}, where)
        gname = r.str_(g, "name", where)
        if gname in gateways or gname in taken:
            raise r.fail(where + "name", "a name used by no other gateway, node or venue", gname)
        if "/" in gname or "+" in gname or "#" in gname:
            raise r.fail(where + "name", "a name without '/', '+' or '#'", gname)
        paths: dict[str, Path | None] = {}
        for key in ("tls_cert", "tls_key"):
            paths[key] = None if key not in g else r.source.resolve().parent / r.str_(g, key, where)
        if (paths["tls_cert"] is None) != (paths["tls_key"] is None):
            missing = "tls_key" if paths["tls_key"] is None else "tls_cert"
            raise r.fail(where + missing, "a file path: tls_cert and tls_key go together (TLS needs both)")
        timeout = _positive_number(r, g, "logon_timeout_s", where, 10.0)
        if timeout <= 0:
            raise r.fail(where + "logon_timeout_s", "a number of seconds above 0", g.get("logon_timeout_s"))
        cap = g.get("max_logon_bytes", 4096)
        if not isinstance(cap, int) or isinstance(cap, bool) or not MIN_LOGON_BYTES <= cap <= 1 << 20:
            raise r.fail(where + "max_logon_bytes", f"an integer number of bytes {MIN_LOGON_BYTES}..{1 << 20}", cap)
        gateways[gname] = GatewayConfig(
            name=gname, host=r.str_(g, "host", where, "127.0.0.1"), port=r.port(g, "port", where),
            tls_cert=paths["tls_cert"], tls_key=paths["tls_key"], logon_timeout_s=timeout, max_logon_bytes=cap,
            metrics_port=r.port(g, "metrics_port", where) if "metrics_port" in g else None,
        )
    return gateways


def _positive_number(r: _Reader, data: Mapping[str, Any], key: str, where: str, default: float) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise r.fail(where + key, "a non-negative number", value)
    return float(value)
