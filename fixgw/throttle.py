"""Per-session message-rate limits: a token bucket per session, refilled at the configured rate.

Real gateways throttle each session (CME iLink's messages per second, Eurex's per-session
transaction limits, QuickFIX/J's per-session queue capacity) so that one customer sending as
fast as it can does not take the capacity others trade with (issue 19). A bucket holds at most
one second's worth of messages (``burst`` = the rate), so a session may send its whole second's
allowance at once but never more than ``rate * t + rate`` messages in ``t`` seconds; one float
subtraction per message, no timer, no list of timestamps. What is over the limit is refused
with the protocol's reject (the customer utility: ExecutionReport Rejected for an order,
BusinessMessageReject for anything else), not queued: a queue would only hide the overload.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class RateLimit:
    """A token bucket: ``allow(now)`` is True while the session is within ``rate`` messages/s."""

    rate: float                       # messages per second, > 0
    burst: float = 0.0                # bucket size; 0: one second's worth (= rate)
    _tokens: float = field(default=-1.0, init=False)
    _at: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate must be > 0 messages/s, not {self.rate!r}")
        if self.burst <= 0:
            self.burst = max(1.0, self.rate)

    def allow(self, now: float) -> bool:
        """Take one message's token at monotonic time ``now``; False when none is left."""
        if self._tokens < 0:           # the first message: a full bucket
            self._tokens, self._at = self.burst, now
        elif now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def text(self) -> str:
        """The reject's text (58)."""
        return f"throttled: more than {self.rate:g} messages/s on this session"
