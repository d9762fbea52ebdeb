"""Orders in flight at a customer utility, bounded per session and in all (issue 19 item 1).

An order is *in flight* from the moment the customer utility takes it to record (before its
PendingNew) until a street utility's record shows the venue's answer (venue New, reject, fill,
cancel, expiry, a venue status), or the order is otherwise final; a cancel or replace request
likewise, until the venue answers it (canceled, replaced, cancel rejected) or the order ends. Without a bound, overload
turned into a backlog: measured on the default cluster (``fixgw bench --sessions 4 --rate 0
--orders 50000``), the customer utilities acknowledged 6,114 orders/s while the street side
filled 2,159/s, so every order waited behind tens of thousands of others: fill p50 15.3 s,
p99 19.6 s, replicas hundreds of thousands of records behind.

At the bound the customer utility pushes back, as the serious gateways do (QuickFIX/J's
per-session queue capacity, TCP flow control), in one of two ways (``in_flight_policy``):

- ``"pause"`` (the default): it stops reading the session's socket (``SessionRuntime.
  pause_reading``) until the count is back under the low-water mark (3/4 of the bound). The
  customer's engine sees slower acknowledgements and nothing is refused. When the utility's
  total is at its bound, every session is paused until the total is back under its low water.
- ``"reject"``: a new order at the bound gets an ExecutionReport Rejected, "throttled: N orders
  in flight", and no record (like the rate-limit reject, :mod:`utilities.session_throttle`).

This class only counts and decides: a dict insert per order taken and a dict pop per answer,
and a hold state that changes only at the marks (hysteresis: a pause is not undone by the very
next answer, so a paused session is not flipped back and forth per message).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from replication.record import RecordType

K = TypeVar("K")

# street records that show the venue's answer to the order (or that it is over): the order has
# left the cluster's queues. SENT and TAKEOVER do not: the venue has not answered yet.
ANSWERED = frozenset({
    RecordType.VENUE_ACK, RecordType.VENUE_REJECT, RecordType.FILL, RecordType.CANCELED,
    RecordType.EXPIRED, RecordType.VENUE_STATUS, RecordType.REPLACED,
})
# a cancel or replace request is answered by the venue's answer carrying its ClOrdID, or ended
# by the order ending (every request of the order with it)
REQUEST_ANSWERED = frozenset({RecordType.CANCELED, RecordType.REPLACED, RecordType.CANCEL_REJECTED})
REQUESTS_ENDED = frozenset({RecordType.CANCELED, RecordType.EXPIRED, RecordType.VENUE_REJECT})
POLICIES = ("pause", "reject")
LOW_WATER = 0.75   # resume reading below this share of the bound
DEFAULT_MAX_IN_FLIGHT = 500           # per customer utility, every session together
DEFAULT_MAX_IN_FLIGHT_PER_SESSION = 250


def low_water(bound: int) -> int:
    """The count at or under which a held session is read again (at least one order below)."""
    return min(bound - 1, int(bound * LOW_WATER))


@dataclass
class InFlight(Generic[K]):
    """Counts per session key ``K`` (the engine's SessionID) and in all; ``per_session``:
    a session's own bound (a customer's override), else ``default_per_session``."""

    total_bound: int
    default_per_session: int
    per_session: Callable[[K], int | None] = field(default=lambda _k: None)
    txns: dict[str, K] = field(default_factory=dict)      # txn -> the session that sent it
    counts: dict[K, int] = field(default_factory=dict)
    held: set[K] = field(default_factory=set)             # sessions held at their own bound
    all_held: bool = False                                # every session held: the total at its bound
    peak: int = 0
    times_held: int = 0

    def __post_init__(self) -> None:
        if self.total_bound < 1 or self.default_per_session < 1:
            raise ValueError("in-flight bounds must be >= 1")
        self._bounds: dict[K, int] = {}

    def bound(self, key: K) -> int:
        b = self._bounds.get(key)
        if b is None:
            own = self.per_session(key)
            b = self._bounds[key] = max(1, own) if own is not None else self.default_per_session
        return b

    @property
    def total(self) -> int:
        return len(self.txns)

    def count(self, key: K) -> int:
        return self.counts.get(key, 0)

    def full(self, key: K) -> bool:
        """Whether one more order of ``key`` would go over a bound (the reject policy's test)."""
        return self.count(key) >= self.bound(key) or self.total >= self.total_bound

    def is_held(self, key: K) -> bool:
        return self.all_held or key in self.held

    def add(self, txn: str, key: K) -> bool:
        """An order taken; True when it starts a hold (of its session, or of all)."""
        if txn in self.txns:
            return False
        self.txns[txn] = key
        n = self.counts[key] = self.counts.get(key, 0) + 1
        total = len(self.txns)
        self.peak = max(self.peak, total)
        started = False
        if n >= self.bound(key) and key not in self.held:
            self.held.add(key)
            started = True
        if total >= self.total_bound and not self.all_held:
            self.all_held = True
            started = True
        if started:
            self.times_held += 1
        return started

    def answered(self, txn: str) -> bool:
        """The order left flight (answered, final, or never accepted after all); True when a
        hold ends with it (of its session, or of all)."""
        key = self.txns.pop(txn, None)
        if key is None:
            return False
        n = self.counts[key] - 1
        if n:
            self.counts[key] = n
        else:
            del self.counts[key]
        ended = False
        if key in self.held and n <= low_water(self.bound(key)):
            self.held.discard(key)
            ended = True
        if self.all_held and len(self.txns) <= low_water(self.total_bound):
            self.all_held = False
            ended = True
        return ended

    def releasing(self, keys: Iterable[K]) -> list[K]:
        """Of ``keys``, those no longer held."""
        return [k for k in keys if not self.is_held(k)]


@dataclass(frozen=True, slots=True)
class InFlightLimits:
    """The bounds from the cluster config: ``[cluster] max_in_flight`` (the utility's total),
    ``max_in_flight_per_session`` and ``in_flight_policy``; a ``[[customers]]`` entry may set its
    sessions' own ``max_in_flight`` and ``in_flight_policy``."""

    total: int = DEFAULT_MAX_IN_FLIGHT
    per_session: int = DEFAULT_MAX_IN_FLIGHT_PER_SESSION
    policy: str = "pause"
    customer_bounds: Mapping[str, int] = field(default_factory=dict)     # client CompID -> per-session bound
    customer_policies: Mapping[str, str] = field(default_factory=dict)   # client CompID -> policy

    def __post_init__(self) -> None:
        if self.total < 1 or self.per_session < 1 or any(v < 1 for v in self.customer_bounds.values()):
            raise ValueError("in-flight bounds must be >= 1")
        for p in (self.policy, *self.customer_policies.values()):
            if p not in POLICIES:
                raise ValueError(f"in_flight_policy must be one of {', '.join(POLICIES)}, not {p!r}")

    def policy_of(self, client: str) -> str:
        return self.customer_policies.get(client, self.policy)
