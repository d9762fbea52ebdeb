"""A real mosquitto process on a free loopback port, for integration tests.

Tests may ``kill()`` (SIGKILL) and ``start()`` it again on the same port; it runs without
persistence, so a restart loses every queued message, as the replication tests require.

Like the cluster's broker it refuses anonymous clients and enforces an ACL
(:mod:`replication.auth`): a test asks for a node's login with ``login(node, role)`` (the
node may then publish only under its own name), for a read-only one with ``monitor``, or
for a user with topics of its own choosing with ``grant``.
"""

from __future__ import annotations

from fixgw.ports import free_port
from replication.auth import BrokerAccess, BusLogin, Grant, monitor_grant, new_password, node_grant
from replication.broker import LocalBroker
from replication.record import Role

__all__ = ["Mosquitto", "free_port"]


class Mosquitto(LocalBroker):
    def __init__(self, port: int | None = None, *, cluster: str = "t") -> None:
        # kind="mosquitto": an integration test needs the real broker, never a stand-in
        self.cluster = cluster
        super().__init__(port, kind="mosquitto",
                         access=BrokerAccess((monitor_grant(cluster, new_password()),)))

    @property
    def monitor(self) -> BusLogin:
        """Read-only: hears every topic of the cluster, publishes nothing."""
        assert self.access is not None
        return self.access.login("monitor")

    def login(self, node: str, role: Role, cluster: str | None = None, *extra_publish: str) -> BusLogin:
        """The login of a node (granted now if new): its own replication topics, plus ``extra_publish``."""
        assert self.access is not None
        for g in self.access.grants:
            if g.username == node:
                return self.access.login(node)
        return self.grant(node_grant(cluster or self.cluster, node, role, new_password(), extra_publish))[0]

    def user(self, name: str, publish: tuple[str, ...], subscribe: tuple[str, ...]) -> BusLogin:
        """A user with exactly these topic filters (for tests of the bus itself)."""
        return self.grant(Grant(name, new_password(), publish, subscribe))[0]
