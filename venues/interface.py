"""The one small interface every simulated venue implements.

Commands in, events out, time from an injected clock. Each call first brings the venue
up to the clock's time (expiring DAY orders at a session end, valuing funds at a cut-off,
moving the liquidity provider), so its answer starts with those time-driven events, then
the events the command caused. Events name their owner, so a caller (a FIX acceptor)
routes each to its session; a venue never calls back.

A driver calls :meth:`Venue.tick` on a timer (``next_timer()`` says when the next
time-driven event is due) so that time-driven events reach clients that send nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from venues.commands import CancelOrder, Command, QueryStatus, ReplaceOrder, SubmitOrder
from venues.events import VenueEvent


@runtime_checkable
class Venue(Protocol):
    @property
    def name(self) -> str:
        """The venue's name: prefix of its order and exec ids."""
        ...

    def submit(self, cmd: SubmitOrder) -> list[VenueEvent]:
        """OrderAccepted (then any fills/expiry) or OrderRejected."""
        ...

    def cancel(self, cmd: CancelOrder) -> list[VenueEvent]:
        """OrderCanceled or CancelRejected."""
        ...

    def replace(self, cmd: ReplaceOrder) -> list[VenueEvent]:
        """OrderReplaced (then any fills) or CancelRejected."""
        ...

    def status(self, cmd: QueryStatus) -> list[VenueEvent]:
        """OrderStatusReport (REJECTED status for an unknown order)."""
        ...

    def tick(self, now: datetime | None = None) -> list[VenueEvent]:
        """Time-driven events due by ``now`` (default: the clock's time)."""
        ...

    def next_timer(self) -> datetime | None:
        """When the next time-driven event is due (UTC), or None if none is pending."""
        ...


def dispatch(venue: Venue, cmd: Command) -> list[VenueEvent]:
    """Send any command to the venue method that handles it."""
    if isinstance(cmd, SubmitOrder):
        return venue.submit(cmd)
    if isinstance(cmd, CancelOrder):
        return venue.cancel(cmd)
    if isinstance(cmd, ReplaceOrder):
        return venue.replace(cmd)
    if isinstance(cmd, QueryStatus):
        return venue.status(cmd)
    raise TypeError(f"not a venue command: {cmd!r}")
