"""The customer utility's per-session message-rate limits (issue 19 item 3): which sessions have
one (``max_messages_per_s`` of their ``[[customers]]`` entry), and the application handlers
wrapped so that a message over the limit is refused with the protocol's reject instead of
being worked: an order (NewOrderSingle) gets an ExecutionReport Rejected, anything else a
BusinessMessageReject, both with the text "throttled: more than N messages/s on this session".

A refused order writes no record: it was never accepted (nothing acknowledged, nothing to
lose), and the customer has its answer at once. The check is one dictionary look-up and one
token-bucket update per application message (:mod:`fixgw.throttle`), and nothing at all for
the handlers of a utility whose customers have no limit.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

from fixgw.config import SessionID
from fixgw.errors import BusinessReject
from fixgw.message import Message
from fixgw.throttle import RateLimit

Handler = Callable[[Message, SessionID], Awaitable[Awaitable[object] | None]]

BUSINESS_REJECT_OTHER = 0   # BusinessRejectReason (380) 0 = Other


class SessionThrottle:
    """``rates``: client CompID -> messages/s; each session (BeginString + client) its own bucket."""

    def __init__(self, rates: Mapping[str, float], clock: Callable[[], float] = time.monotonic) -> None:
        self.rates = dict(rates)
        self.clock = clock
        self.buckets: dict[SessionID, RateLimit] = {}
        self.refused = 0

    def over(self, sid: SessionID) -> RateLimit | None:
        """Count one message of ``sid``; its bucket when that message is over the limit."""
        bucket = self.buckets.get(sid)
        if bucket is None:
            rate = self.rates.get(sid.target_comp_id)
            if rate is None:
                return None
            bucket = self.buckets[sid] = RateLimit(rate)
        if bucket.allow(self.clock()):
            return None
        self.refused += 1
        return bucket

    def wrap(self, handlers: Mapping[bytes, Handler],
             reject_order: Callable[[Message, SessionID, str], None]) -> dict[bytes, Handler]:
        """The handlers, each checking the limit first; unchanged when no customer has one."""
        if not self.rates:
            return dict(handlers)
        return {mt: self._wrap_one(mt, h, reject_order) for mt, h in handlers.items()}

    def _wrap_one(self, mt: bytes, handler: Handler,
                  reject_order: Callable[[Message, SessionID, str], None]) -> Handler:
        async def throttled(msg: Message, sid: SessionID) -> Awaitable[object] | None:
            bucket = self.over(sid)
            if bucket is None:
                return await handler(msg, sid)   # what the handler says is pending (fixgw.application)
            if mt == b"D":
                reject_order(msg, sid, bucket.text())
                return None
            else:
                raise BusinessReject(BUSINESS_REJECT_OTHER, bucket.text())
        return throttled
