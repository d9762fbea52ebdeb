"""Which nodes are alive, from the heartbeats they publish.

Every node publishes a small heartbeat (QoS 0, not retained: a retained one would make a
dead node look alive to a newcomer) every ``cluster.heartbeat_s``; a node not heard from for
``dead_after_s`` is taken as dead. Street utilities also say which venues they are logged on
to, so customer utilities route only to streets that can reach the venue. Customer utilities
say which customers' FIX sessions they own right now (``sessions``: the clients' CompIDs), so
that a gateway (``utilities/gateway.py``) sends a customer's Logon to its session's owner.
Fields are appended, never reordered: a heartbeat of an older build decodes with defaults.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import msgpack

from utilities.errors import MalformedMessage

HEARTBEAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Heartbeat:
    node: str
    role: str
    state: str                     # "starting" | "ready" | "degraded" (cannot store) | "stopping"
    venues: tuple[str, ...] = ()   # street: venues whose FIX session is logged on
    pid: int = 0
    instance: str = ""             # this run of the node (host/pid/random): tells two runs apart
    sessions: tuple[str, ...] = ()  # customer: client CompIDs whose FIX sessions it owns right now

    def encode(self) -> bytes:
        return bytes(msgpack.packb([HEARTBEAT_VERSION, self.node, self.role, self.state, list(self.venues), self.pid,
                                    self.instance, list(self.sessions)]))

    @staticmethod
    def decode(data: bytes) -> Heartbeat:
        try:
            v = msgpack.unpackb(data)
            if not isinstance(v, list) or len(v) < 6 or v[0] != HEARTBEAT_VERSION:
                raise MalformedMessage("not a heartbeat")
            node, role, state, venues, pid = v[1], v[2], v[3], v[4], v[5]
            if not all(isinstance(x, str) for x in (node, role, state)) or not isinstance(venues, list):
                raise MalformedMessage("bad heartbeat fields")
            instance = v[6] if len(v) > 6 and isinstance(v[6], str) else ""  # absent before it existed
            sessions = v[7] if len(v) > 7 else []                              # likewise
            if not isinstance(sessions, list) or not all(isinstance(x, str) for x in sessions):
                raise MalformedMessage("bad heartbeat sessions: expected an array of CompIDs")
            return Heartbeat(node, role, state, tuple(str(x) for x in venues), int(pid), instance, tuple(sessions))
        except MalformedMessage:
            raise
        except Exception as exc:  # noqa: BLE001 - msgpack and the fields raise many types; all mean malformed
            raise MalformedMessage(f"malformed heartbeat: {exc}") from None


def another_run_of(hb: Heartbeat, node: str, instance: str) -> bool:
    """Whether ``hb`` comes from a second live process running as ``node`` (not this run of it).

    Two processes under one node id take the node's MQTT session from each other over and over
    (the broker keeps one connection per client id) and claim one origin's sequence numbers:
    an operator has to stop one of them.
    """
    return hb.node == node and bool(hb.instance) and hb.instance != instance and hb.state != "stopping"


class Liveness:
    def __init__(self, dead_after_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.dead_after_s = dead_after_s
        self._monotonic = monotonic
        self._seen: dict[str, tuple[float, Heartbeat]] = {}

    def saw(self, hb: Heartbeat) -> None:
        self._seen[hb.node] = (self._monotonic(), hb)

    def alive(self, node: str) -> bool:
        entry = self._seen.get(node)
        if entry is None:
            return False
        at, hb = entry
        return hb.state != "stopping" and self._monotonic() - at <= self.dead_after_s

    def ever_seen(self, node: str) -> bool:
        return node in self._seen

    def heartbeat(self, node: str) -> Heartbeat | None:
        entry = self._seen.get(node)
        return entry[1] if entry else None

    def silent_for(self, node: str) -> float | None:
        entry = self._seen.get(node)
        return None if entry is None else self._monotonic() - entry[0]
