"""A real mosquitto process on a free loopback port, for integration tests.

Tests may ``kill()`` (SIGKILL) and ``start()`` it again on the same port; it runs without
persistence, so a restart loses every queued message, as the replication tests require.
"""

from __future__ import annotations

from replication.broker import LocalBroker, free_port

__all__ = ["Mosquitto", "free_port"]


class Mosquitto(LocalBroker):
    def __init__(self, port: int | None = None) -> None:
        # kind="mosquitto": an integration test needs the real broker, never a stand-in
        super().__init__(port, kind="mosquitto")
