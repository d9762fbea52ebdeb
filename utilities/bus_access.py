"""Who may publish what on a cluster's bus, and where each node's broker password lives.

The replication topics a node may publish come from :mod:`replication.auth`; this module
adds what each role addresses on top of replication: every node its own heartbeat, a
customer utility commands to the street utilities and the symbols it wants quotes of
(``mdwant/<itself>``), a street utility the quotes it serves (``quote/<itself>``): so only
a street can publish quotes, under its own name, and only a customer utility can ask for
them. Everything else is read-only. The amqtt broker gets the same grants
(:func:`replication.auth.amqtt_config`) as mosquitto.

Secrets live in ``<data_dir>/secrets/<node>.password`` (and ``monitor.password`` for
read-only clients: status probes, benches), 0600, made by ``fixgw up`` when missing and kept
afterwards, so that a node started by hand (``fixgw node``, on this machine or another one
given a copy of its file) logs on with the same password. A node's file may be named in the
config instead (``[[nodes]] password_file``); the broker's password and ACL files are made
from the same secrets at every ``fixgw up`` (into ``<data_dir>/broker/``).
"""

from __future__ import annotations

from pathlib import Path

from replication.auth import (
    MONITOR_USER,
    AuthError,
    BrokerAccess,
    BusLogin,
    Grant,
    ensure_secret,
    make_tls,
    monitor_grant,
    node_grant,
    read_secret,
)
from replication.record import Role
from replication.wire import Topics
from utilities.cluster_config import ClusterConfig, NodeConfig


def secrets_dir(cfg: ClusterConfig) -> Path:
    return cfg.data_dir / "secrets"


def password_file(cfg: ClusterConfig, node: NodeConfig) -> Path:
    return node.password_file or secrets_dir(cfg) / f"{node.name}.password"


def monitor_password_file(cfg: ClusterConfig) -> Path:
    return cfg.broker.monitor_password_file or secrets_dir(cfg) / f"{MONITOR_USER}.password"


def tls_dir(cfg: ClusterConfig) -> Path:
    return cfg.data_dir / "broker" / "tls"


def ca_file(cfg: ClusterConfig) -> Path | None:
    """The CA nodes trust for TLS to the broker (None: plain TCP)."""
    if cfg.broker.ca_file is not None:
        return cfg.broker.ca_file
    return tls_dir(cfg) / "ca.crt" if cfg.broker.tls else None


def role_publish_topics(cfg: ClusterConfig, node: NodeConfig) -> tuple[str, ...]:
    """What the node's role publishes besides replication: its heartbeat; a customer utility also
    commands to the streets, hand-over requests to its peers and its market-data interest; a
    street utility its quotes."""
    t = Topics(cfg.name)
    topics = [t.heartbeat(node.role, node.name)]
    if node.role == "customer":
        topics += [t.commands(s.name) for s in cfg.nodes_with_role("street")]
        # hand-over requests to the customer utility that owns a FIX session (utilities.session_owner)
        topics += [t.sessions(c.name) for c in cfg.nodes_with_role("customer") if c.name != node.name]
        topics.append(t.md_interest(node.name))
    elif node.role == "street":
        topics.append(t.quotes(node.name))
    return tuple(topics)


def cluster_access(cfg: ClusterConfig) -> BrokerAccess:
    """Every node's grant and the monitor's, making missing secrets (and TLS files when
    ``[broker] tls``): what ``fixgw up`` configures the broker with."""
    grants: list[Grant] = []
    for node in cfg.nodes.values():
        grants.append(node_grant(cfg.name, node.name, Role(node.role), ensure_secret(password_file(cfg, node)),
                                 role_publish_topics(cfg, node)))
    grants.append(monitor_grant(cfg.name, ensure_secret(monitor_password_file(cfg))))
    tls = make_tls(tls_dir(cfg), cfg.broker.host) if cfg.broker.tls and cfg.broker.ca_file is None else None
    return BrokerAccess(tuple(grants), tls)


def node_login(cfg: ClusterConfig, node: NodeConfig) -> BusLogin | None:
    """How ``node`` logs on to the broker; None when the config turns authentication off."""
    if not cfg.broker.auth:
        return None
    path = password_file(cfg, node)
    try:
        password = read_secret(path, f"node {node.name}'s broker password")
    except AuthError as exc:
        raise AuthError(f"{exc} (`fixgw up` makes it; for a node started by hand, copy it from the machine "
                        f"that ran `fixgw up` or name it with [[nodes]] password_file in {cfg.source})") from None
    return BusLogin(node.name, password, ca_file(cfg))


def monitor_login(cfg: ClusterConfig) -> BusLogin | None:
    """The read-only login for clients that only listen (None without authentication)."""
    if not cfg.broker.auth:
        return None
    return BusLogin(MONITOR_USER, read_secret(monitor_password_file(cfg), "the monitor's broker password"),
                    ca_file(cfg))
