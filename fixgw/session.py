"""The FIX session layer as a state machine, testable without sockets.

A :class:`Session` consumes framed messages, garbled-input notices and timer ticks, each with
the current time passed in (``now``: epoch seconds), and produces:

- wire bytes in ``outbox`` (plus a :class:`Close` marker when the connection must be closed
  after what precedes it has been written);
- ``(seq, raw)`` application messages to persist (``take_batch``), which the engine stores in
  one durable transaction per event-loop turn before it writes the outbox (group commit);
- actions returned to the caller: :class:`Deliver` (hand a message to the application),
  :class:`VerifyLogon` (let the application accept or reject a Logon, then call
  ``logon_accepted`` / ``logon_rejected``), :class:`LoggedOn`, :class:`LoggedOut`.

Which handler runs for an event in a state is given by ``session_state.TRANSITIONS``.

The protocol follows the FIX 4.2/4.4 session rules and, where the rules leave a choice,
QuickFIX's behaviour (the acceptance scripts compare against it): validation (dictionary)
first, then SendingTime, CompIDs, PossDup/OrigSendingTime, then the sequence number;
ResendRequest and Logout are served whatever their sequence number; a message that is too
high is queued (bounded) and a ResendRequest is sent once for the gap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol

from fixgw.errors import (
    BusinessReject,
    FieldNotFound,
    IncorrectDataFormat,
    IncorrectTagValue,
    RejectLogon,
    UnsupportedMessageType,
)
from fixgw.message import HEADER_TAGS, Message, encode_after, parse_fields
from fixgw.session_state import TRANSITIONS, Event, State
from fixgw.store import MessageStore
from fixgw.validation import REJECT_TEXTS, SessionReject, check_sending_time, parse_utc_timestamp

__all__ = [
    "Close",
    "Deliver",
    "LoggedOn",
    "LoggedOut",
    "Session",
    "SessionConfig",
    "VerifyLogon",
    "noop_hook",
    "utc_timestamp",
]

_ADMIN: Final = frozenset({b"0", b"1", b"2", b"3", b"4", b"5", b"A"})
BUSINESS_REJECT_TEXTS: Final[dict[int, str]] = {
    0: "Other",
    1: "Unknown ID",
    2: "Unknown Security",
    3: "Unsupported Message Type",
    4: "Application not available",
    5: "Conditionally Required Field Missing",
    6: "Not authorized",
    7: "DeliverTo firm not available at this time",
}
# header tags an application may set on a message it sends (the session writes the others)
_APP_HEADER: Final = HEADER_TAGS - {8, 9, 35, 49, 56, 34, 52, 43, 122}
_NOT_BODY: Final = HEADER_TAGS | {10}
# reverse routing on rejects: OnBehalfOf* <-> DeliverTo*
_REVERSE_ROUTE: Final = ((115, 128), (128, 115), (116, 129), (129, 116), (144, 145), (145, 144))


# ---------------------------------------------------------------------------------------------
# time


class _TsCache:
    # (epoch second, its "YYYYMMDD-HH:MM:SS") and (epoch millisecond, its full stamp): each a
    # tuple replaced whole, so that a thread never pairs one's key with another's value
    sec: tuple[int, bytes] = (-1, b"")
    ms: tuple[int, bytes] = (-1, b"")


def utc_timestamp(now: float, millis: bool = True) -> bytes:
    """FIX UTCTimestamp ``YYYYMMDD-HH:MM:SS.sss`` for an epoch time (cached per millisecond)."""
    s = int(now)
    if millis:
        frac = int((now - s) * 1000)
        ms = s * 1000 + frac
        last = _TsCache.ms
        if last[0] == ms:
            return last[1]
    sec = _TsCache.sec
    if sec[0] != s:
        sec = _TsCache.sec = (s, time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(s)).encode())
    if not millis:
        return sec[1]
    stamp = b"%s.%03d" % (sec[1], frac)
    _TsCache.ms = (ms, stamp)
    return stamp


class _SecCache:
    # (the "YYYYMMDD-HH:MM:SS" part of a stamp, its epoch seconds) and (the last whole stamp,
    # its epoch seconds): tuples replaced whole (threads)
    last: tuple[bytes, float] = (b"", 0.0)
    whole: tuple[bytes, float | None] = (b"", None)


def _fast_ts(value: bytes) -> float | None:
    """Epoch seconds of a UTCTimestamp; the seconds part is parsed once per distinct second,
    and a stamp equal to the previous one (a burst sent in the same millisecond) not at all."""
    whole = _SecCache.whole
    if value == whole[0]:
        return whole[1]
    t = _ts_seconds(value)
    _SecCache.whole = (value, t)
    return t


def _ts_seconds(value: bytes) -> float | None:
    n = len(value)
    if n != 17 and n != 21:
        return None
    head = value[:17]
    last = _SecCache.last
    if head == last[0]:
        epoch = last[1]
    else:
        t = parse_utc_timestamp(head)
        if t is None:
            return None
        epoch = t.timestamp()
        _SecCache.last = (head, epoch)
    if n == 21:
        frac = value[18:]
        if value[17:18] != b"." or not frac.isdigit():
            return None
        return epoch + int(frac) / 1000.0
    return epoch


def _parse_ts(value: bytes | None) -> float | None:
    if value is None:
        return None
    t = parse_utc_timestamp(value)
    return None if t is None else t.timestamp()


# ---------------------------------------------------------------------------------------------
# configuration, actions


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """What the state machine needs to know about one session (built from SessionSettings)."""

    begin_string: str
    sender_comp_id: str
    target_comp_id: str
    initiator: bool = False
    heartbeat_int: int = 30  # initiator: sent in Logon; acceptor: taken from the Logon
    reset_on_logon: bool = False
    reset_on_logout: bool = False
    reset_on_disconnect: bool = False
    reset_when_peer_forgot: bool = False  # initiator: a Logon answered "too low" -> next Logon resets
    check_latency: bool = True
    max_latency: int = 120
    logon_timeout: float = 10.0
    logout_timeout: float = 2.0
    resend_request_chunk_size: int = 0
    max_queued: int = 10000  # messages with a too-high MsgSeqNum kept while a gap is filled
    username: str | None = None
    password: str | None = None
    sender_sub_id: str | None = None
    target_sub_id: str | None = None
    sender_location_id: str | None = None
    target_location_id: str | None = None
    validate_fields_out_of_order: bool = True
    validate_fields_have_values: bool = True
    validate_user_defined_fields: bool = True
    allow_unknown_msg_fields: bool = False
    millis_in_timestamp: bool = True

    def __post_init__(self) -> None:
        if not self.begin_string.startswith("FIX"):
            raise ValueError(f"BeginString must start with FIX, got {self.begin_string!r}")
        for name in ("sender_comp_id", "target_comp_id"):
            v = getattr(self, name)
            if not v or "\x01" in v:
                raise ValueError(f"{name} must be a non-empty CompID, got {v!r}")
        if self.heartbeat_int < 0:
            raise ValueError(f"HeartBtInt must be >= 0, got {self.heartbeat_int}")
        if self.max_latency <= 0:
            raise ValueError(f"MaxLatency must be > 0, got {self.max_latency}")
        if self.max_queued < 1:
            raise ValueError("max_queued must be >= 1")


@dataclass(frozen=True, slots=True)
class Close:
    """Outbox marker: close the connection once everything before it has been written."""

    reason: str


@dataclass(slots=True)  # not frozen: built for every message, and a frozen __init__ is slower
class Deliver:
    """Hand a received message to the application (``from_admin`` / ``from_app``)."""

    message: Message
    admin: bool


@dataclass(frozen=True, slots=True)
class VerifyLogon:
    """The session layer accepted a Logon; the application may still reject it (from_admin)."""

    message: Message


@dataclass(frozen=True, slots=True)
class LoggedOn:
    pass


@dataclass(frozen=True, slots=True)
class LoggedOut:
    reason: str


Action = Deliver | VerifyLogon | LoggedOn | LoggedOut


class Validator(Protocol):
    def __call__(self, fields: Sequence[tuple[int, bytes]]) -> object | None: ...


@dataclass(slots=True)
class _PendingLogon:
    message: Message
    seq: int
    reset: bool
    heartbeat_int: int
    too_high: bool


@dataclass(slots=True)
class Batch:
    """What must be made durable before the outbox is written."""

    reset: bool
    messages: list[tuple[int, bytes]] = field(default_factory=list)
    next_sender_seq: int = 1
    next_target_seq: int = 1


def noop_hook(msg: Message) -> None:
    """The to_admin / to_app hook of an application that has none (the session skips it)."""


# ---------------------------------------------------------------------------------------------


class Session:
    """One FIX session (one pair of CompIDs), independent of sockets and clocks."""

    def __init__(
        self,
        config: SessionConfig,
        *,
        next_sender_seq: int = 1,
        next_target_seq: int = 1,
        store: MessageStore | None = None,
        validator: Callable[[Sequence[tuple[int, bytes]]], object | None] | None = None,
        supports: Callable[[bytes], bool] | None = None,
        is_app_type: Callable[[bytes], bool] | None = None,
        to_admin: Callable[[Message], None] = noop_hook,
        to_app: Callable[[Message], None] = noop_hook,
        event: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.state = State.DISCONNECTED
        self.next_sender = next_sender_seq
        self.next_target = next_target_seq
        self._store = store
        self._validator = validator
        self._supports = supports
        self._is_app_type = is_app_type
        # MsgType -> "the application does not handle it" (answered by BMR, body not validated)
        self._unsupported: dict[bytes, bool] = {}
        self._supported: dict[bytes, bool] = {}  # MsgType -> the application handles it
        self.to_admin = to_admin
        self.to_app = to_app
        self._event = event
        self.outbox: list[bytes | Close] = []
        self._to_store: list[tuple[int, bytes]] = []
        self._recent: dict[int, bytes] = {}
        self._reset_pending = False
        self._store_stale = False
        self._dirty = False
        self.heartbeat_int = config.heartbeat_int
        self.last_sent = 0.0
        self.last_received = 0.0
        self.connected_at = 0.0
        self.logout_sent_at = 0.0
        self.test_requests = 0
        self._queue: dict[int, Message] = {}
        self._resend_range: tuple[int, int] | None = None
        self._pending_logon: _PendingLogon | None = None
        self._sent_reset = False
        self._reset_next_logon = False  # the counterparty forgot the session: reset at the next Logon
        self._was_logged_on = False
        self._b_begin = config.begin_string.encode()
        self._b_sender = config.sender_comp_id.encode()
        self._b_target = config.target_comp_id.encode()
        self._fix42_plus = config.begin_string >= "FIX.4.2"
        self._fix42 = config.begin_string == "FIX.4.2"
        extra: list[tuple[int, bytes]] = []
        for tag, v in (
            (50, config.sender_sub_id),
            (57, config.target_sub_id),
            (142, config.sender_location_id),
            (143, config.target_location_id),
        ):
            if v:
                extra.append((tag, v.encode()))
        self._static_header = extra
        # pre-encoded pieces of every header we write (see _seal)
        self._head_begin = b"8=" + self._b_begin + b"\x019="
        self._head_ids = b"\x0149=" + self._b_sender + b"\x0156=" + self._b_target + b"\x0134="
        self._head_static = b"".join(b"\x01%d=%s" % f for f in extra)
        self._by_type: dict[bytes, Callable[[Message, float], list[Action]]] = {
            b"0": self._on_heartbeat,
            b"1": self._on_test_request,
            b"2": self._on_resend_request,
            b"3": self._on_reject,
            b"4": self._on_sequence_reset,
            b"5": self._on_logout,
            b"A": self._on_logon_while_logged_on,
        }
        self.stats = {"rejects": 0, "business_rejects": 0, "garbled": 0, "resend_requests_sent": 0}

    # ----------------------------------------------------------------- public interface
    @property
    def session_key(self) -> tuple[str, str, str]:
        c = self.config
        return (c.begin_string, c.sender_comp_id, c.target_comp_id)

    @property
    def logged_on(self) -> bool:
        return self.state in (State.LOGGED_ON, State.LOGOUT_SENT)

    def dispatch(self, event: Event, now: float, message: Message | None = None, text: str = "") -> list[Action]:
        """Run the handler the transition table names for (state, event)."""
        name = TRANSITIONS.get((self.state, event))
        if name is None:
            self._log(f"ignored {event.value} in state {self.state.value}")
            return []
        handler = getattr(self, name)
        return handler(message, now, text)  # type: ignore[no-any-return]

    def connected(self, now: float) -> list[Action]:
        return self.dispatch(Event.CONNECTED, now)

    def on_message(self, msg: Message, now: float) -> list[Action]:
        # hot path: skip the generic dispatch when logged on
        if self.state is State.LOGGED_ON:
            if msg.validated and self.accept_usual(msg, now):
                return [Deliver(msg, False)]
            return self._on_session_message(msg, now, "")
        mt = msg.msg_type
        if mt == b"A":
            ev = Event.LOGON
        elif mt == b"5":
            ev = Event.LOGOUT
        else:
            ev = Event.MESSAGE
        return self.dispatch(ev, now, msg)

    def accept_usual(self, msg: Message, now: float) -> bool:
        """The usual case in one step: True when ``msg`` is a valid application message
        (``validated``), logged on, in sequence, right CompIDs and SendingTime, not a PossDup,
        no resend pending, of a type the application handles: it is then accepted (as
        on_message would) and is to be delivered to the application (from_app). False: nothing
        changed, on_message decides. For engines that deliver without building actions."""
        if self.state is not State.LOGGED_ON or not msg.validated:
            return False
        mt = msg.msg_type
        if mt in _ADMIN or self._resend_range is not None:
            return False
        f0 = msg.fields[0]
        if f0[0] != 8 or f0[1] != self._b_begin:
            return False
        m = msg._map
        if m is None:
            m = msg._index()
        config = self.config
        if config.check_latency:
            st = m.get(52)
            t = _fast_ts(st) if st is not None else None
            if t is None or abs(now - t) > config.max_latency:
                return False
        if m.get(49) != self._b_target or m.get(56) != self._b_sender or m.get(43) == b"Y":
            return False
        seq_b = m.get(34)
        if seq_b is None or not seq_b.isdigit() or int(seq_b) != self.next_target:
            return False
        if self._supports is not None and not self._supported.get(mt, False):
            return False  # unknown yet or not handled: the general path decides and remembers
        self.last_received = now
        self.test_requests = 0
        self.next_target += 1
        self._dirty = True
        return True

    def on_garbled(self, raw: bytes, reason: str, now: float) -> list[Action]:
        self.stats["garbled"] += 1
        self._log(f"garbled message ignored ({reason}): {raw[:120]!r}")
        return self.dispatch(Event.GARBLED, now, None, reason)

    def reading_held(self, now: float) -> None:
        """The engine is not reading this peer (the application's backpressure, up to now):
        what the peer sent meanwhile waits unread in the socket, so its silence is ours and
        does not count towards the heartbeat timeout or a TestRequest. Reading again, the
        usual timers start from here: a peer that died during the pause is noticed then."""
        self.last_received = max(self.last_received, now)
        self.test_requests = 0

    def on_timer(self, now: float) -> list[Action]:
        return self.dispatch(Event.TIMER, now)

    def logon_accepted(self, now: float) -> list[Action]:
        return self.dispatch(Event.APP_ACCEPTED_LOGON, now)

    def logon_rejected(self, text: str, now: float) -> list[Action]:
        return self.dispatch(Event.APP_REJECTED_LOGON, now, None, text)

    def logout(self, now: float, text: str = "") -> list[Action]:
        return self.dispatch(Event.LOGOUT_REQUESTED, now, None, text)

    def disconnected(self, now: float) -> list[Action]:
        return self.dispatch(Event.DISCONNECTED, now)

    def next_queued(self, now: float) -> list[Action] | None:
        """Process the next queued message if its turn has come; None when there is none."""
        q = self._queue
        if not q or not self.logged_on:
            return None
        while q:
            low = min(q)
            if low < self.next_target:
                del q[low]  # superseded (a gap fill or reset jumped over it)
                continue
            if low > self.next_target:
                if self._resend_range is None:
                    self._send_resend_request(self.next_target, low, now)
                return None
            msg = q.pop(low)
            mt = msg.msg_type
            if mt in (b"A", b"2"):
                # already acted upon when it arrived (logon / resend request): only count it
                self.next_target += 1
                self._dirty = True
                return []
            return self._on_session_message(msg, now, "")
        return None

    def send(self, msg: Message, now: float) -> bool:
        """Send an application (or admin) message; returns False when not sent now.

        Application messages are given a sequence number and stored even when the session is
        not logged on (the counterparty gets them by ResendRequest), as QuickFIX does. The
        ``to_app`` hook may raise ``DoNotSend`` to drop the message.
        """
        mt = msg.msg_type
        if not mt:
            raise ValueError("a message to send needs MsgType (35)")
        if mt in _ADMIN:
            self.to_admin(msg)
            header_extra, body = self._split(msg)
            self._seal(mt, body, now, header_extra=header_extra)
            return self.logged_on
        if self.to_app is not noop_hook:
            self.to_app(msg)
        fields = msg.fields  # _split, inlined: this runs for every message sent
        return self._seal(
            mt, [f for f in fields if f[0] not in _NOT_BODY], now,
            header_extra=[f for f in fields if f[0] in _APP_HEADER], store=True,
        )

    def restore(self, next_sender_seq: int, next_target_seq: int) -> None:
        """Take these sequence numbers (reloaded from the store, RefreshOnLogon) while no
        connection runs; what was produced and not committed is dropped."""
        if self.state is not State.DISCONNECTED:
            raise RuntimeError(f"restore() while {self.state.value}")
        self.next_sender = next_sender_seq
        self.next_target = next_target_seq
        self._to_store = []
        self._recent = {}
        self._dirty = False
        self._store_stale = False
        self.outbox = []

    def take_batch(self) -> Batch | None:
        """Messages and sequence numbers to make durable (None when nothing changed)."""
        if not self._dirty and not self._to_store and not self._reset_pending:
            return None
        b = Batch(self._reset_pending, self._to_store, self.next_sender, self.next_target)
        self._to_store = []
        self._reset_pending = False
        self._dirty = False
        return b

    def batch_committed(self, batch: Batch) -> None:
        recent = self._recent
        for seq, raw in batch.messages:
            if recent.get(seq) is raw:
                del recent[seq]
        if batch.reset and not self._reset_pending:
            self._store_stale = False

    def take_outbox(self) -> list[bytes | Close]:
        out = self.outbox
        self.outbox = []
        return out

    # ----------------------------------------------------------------- helpers
    def _log(self, text: str) -> None:
        if self._event is not None:
            self._event(text)

    @staticmethod
    def _split(msg: Message) -> tuple[list[tuple[int, bytes]], list[tuple[int, bytes]]]:
        """(header fields the application set, body fields); the session writes the rest."""
        fields = msg.fields
        # two C-level passes over the fields are cheaper than one loop with branches
        return [f for f in fields if f[0] in _APP_HEADER], [f for f in fields if f[0] not in _NOT_BODY]

    def _seal(
        self,
        msg_type: bytes,
        body: Sequence[tuple[int, bytes]],
        now: float,
        *,
        header_extra: Sequence[tuple[int, bytes]] = (),
        store: bool = False,
        seq: int | None = None,
        orig_sending_time: bytes | None = None,
    ) -> bool:
        """Encode with the next sequence number (or ``seq`` for a resend / gap fill)."""
        ts = utc_timestamp(now, self.config.millis_in_timestamp)
        new = seq is None
        if seq is None:
            seq = self.next_sender
            self.next_sender = seq + 1
            self._dirty = True
        # the session's header, encoded once per message from pre-encoded parts:
        # 35, 49, 56, 34, [43=Y], 52, [122], static sub/location IDs, then the application's
        if orig_sending_time is None:
            head = b"35=%s%s%d\x0152=%s%s" % (msg_type, self._head_ids, seq, ts, self._head_static)
        else:
            head = b"35=%s%s%d\x0143=Y\x0152=%s\x01122=%s%s" % (
                msg_type, self._head_ids, seq, ts, orig_sending_time, self._head_static
            )
        raw = encode_after(self._head_begin, head, [*header_extra, *body] if header_extra else body)
        if store and new:
            self._to_store.append((seq, raw))
            self._recent[seq] = raw
        if self.state in (State.LOGGED_ON, State.LOGOUT_SENT) or msg_type in (b"A", b"5"):
            self.outbox.append(raw)
            self.last_sent = now
            return True
        return False

    def _send_admin(
        self,
        msg_type: bytes,
        body: list[tuple[int, bytes]],
        now: float,
        header_extra: Sequence[tuple[int, bytes]] = (),
    ) -> None:
        if self.to_admin is not noop_hook:
            m = Message([(35, msg_type), *header_extra, *body])
            self.to_admin(m)
            header_extra, body = self._split(m)
        self._seal(msg_type, body, now, header_extra=header_extra)

    def _close(self, reason: str) -> None:
        self._log(f"disconnecting: {reason}")
        self.outbox.append(Close(reason))
        self.state = State.DISCONNECTING

    def _send_logout(self, now: float, text: str = "") -> None:
        body = [(58, text.encode())] if text else []
        self._send_admin(b"5", body, now)
        self.logout_sent_at = now
        if self.state is State.LOGGED_ON:
            self.state = State.LOGOUT_SENT

    def _reset_seqnums(self, now: float) -> None:
        self._log("resetting sequence numbers to 1")
        self.next_sender = 1
        self.next_target = 1
        self._to_store = []
        self._recent = {}
        self._reset_pending = True
        self._store_stale = True
        self._dirty = True
        self._queue.clear()
        self._resend_range = None

    def _reject(
        self,
        msg: Message,
        reason: int,
        ref_tag: int | None,
        now: float,
        text: str | None = None,
        count: bool = True,
    ) -> None:
        """Session-level Reject (35=3), reverse-routed, QuickFIX's fields and texts."""
        self.stats["rejects"] += 1
        seq_b = msg.get(34)
        mt = msg.get(35) or b""
        body: list[tuple[int, bytes]] = []
        if seq_b:
            body.append((45, seq_b))
        body.append((58, (text or REJECT_TEXTS.get(reason, "Other")).encode()))
        if self._fix42_plus:
            if ref_tag is not None or reason == 0:
                body.append((371, b"%d" % (ref_tag or 0)))
            if mt:
                body.append((372, mt))
            if not self._fix42 or reason <= 11:
                body.append((373, b"%d" % reason))
        elif ref_tag is not None:
            body[-1] = (58, body[-1][1] + b" (%d)" % ref_tag)
        if count and mt not in (b"A", b"4") and seq_b is not None and seq_b.isdigit() and int(seq_b) == self.next_target:
            self.next_target += 1
            self._dirty = True
        self._log(f"message {seq_b!r} rejected: reason {reason} tag {ref_tag}")
        self._send_admin(b"3", body, now, self._reverse_route(msg))

    def _business_reject(self, msg: Message, reason: int, now: float, text: str | None = None) -> None:
        self.stats["business_rejects"] += 1
        if not self._fix42_plus:
            self._reject(msg, 11, None, now, count=False)
            return
        body: list[tuple[int, bytes]] = []
        seq_b = msg.get(34)
        if seq_b:
            body.append((45, seq_b))
        body.append((58, (text or BUSINESS_REJECT_TEXTS.get(reason, "Other")).encode()))
        body.append((372, msg.get(35) or b""))
        body.append((380, b"%d" % reason))
        self._send_admin(b"j", body, now, self._reverse_route(msg))

    @staticmethod
    def _reverse_route(msg: Message) -> list[tuple[int, bytes]]:
        out = []
        for src, dst in _REVERSE_ROUTE:
            v = msg.get(src)
            if v:
                out.append((dst, v))
        return out

    def _send_resend_request(self, begin: int, received: int, now: float) -> None:
        chunk = self.config.resend_request_chunk_size
        end = received - 1
        if chunk and end >= begin + chunk:
            end = begin + chunk - 1
            wire_end = end
        else:
            wire_end = 0
        self._resend_range = (begin, end)
        self.stats["resend_requests_sent"] += 1
        self._log(f"sending ResendRequest {begin}..{wire_end or 'infinity'}")
        self._send_admin(b"2", [(7, b"%d" % begin), (16, b"%d" % wire_end)], now)

    def _queue_too_high(self, msg: Message, seq: int, now: float) -> None:
        if len(self._queue) < self.config.max_queued or seq in self._queue:
            self._queue[seq] = msg
        else:
            self._log(f"queue full ({self.config.max_queued}): message {seq} dropped until resent")
        rr = self._resend_range
        if rr is not None and seq >= rr[0]:
            return  # a ResendRequest for this gap is already out
        self._send_resend_request(self.next_target, seq, now)

    def _sending_time_ok(self, msg: Message, now: float) -> bool:
        if not self.config.check_latency:
            return True
        st = msg.get(52)
        if st is None:
            return False
        t = _fast_ts(st)
        if t is not None:
            return abs(now - t) <= self.config.max_latency
        return check_sending_time(st, datetime.fromtimestamp(now, UTC), self.config.max_latency)

    def _validate(self, msg: Message) -> object | None:
        """The dictionary's first problem (a SessionReject) or None; minimal checks without one."""
        v = self._validator
        if v is not None:
            if msg.validated:
                return None  # parsed by a learned shape of the dictionary: known valid
            mt = msg.msg_type
            unsupported = self._unsupported.get(mt)
            if unsupported is None:
                unsupported = self._unsupported[mt] = bool(
                    self._supports is not None
                    and self._is_app_type is not None
                    and self._is_app_type(mt)
                    and not self._supports(mt)
                )
            if not unsupported:
                return v(msg.fields)
        # no dictionary (or an unsupported type, answered by BusinessMessageReject):
        # the header fields the session itself needs
        for tag in (49, 56, 34, 52):
            val = msg.get(tag)
            if val is None:
                return SessionReject(1, tag, REJECT_TEXTS[1])
            if val == b"":
                return SessionReject(4, tag, REJECT_TEXTS[4])
        if not msg[34].isdigit():
            return SessionReject(6, 34, REJECT_TEXTS[6])
        return None

    def _verify(self, msg: Message, now: float, check_high: bool = True, check_low: bool = True) -> bool:
        """SendingTime, CompIDs, PossDup rules, sequence number. False: handled, stop here."""
        if not self._sending_time_ok(msg, now):
            self._reject(msg, 10, None, now)
            self._send_logout(now)
            return False
        if msg.get(49) != self._b_target or msg.get(56) != self._b_sender:
            self._reject(msg, 9, None, now)
            self._send_logout(now)
            return False
        seq = int(msg.get(34) or b"0")
        possdup = msg.get(43) == b"Y"
        if possdup and msg.msg_type != b"4":
            orig = msg.get(122)
            if orig is None:
                if seq <= self.next_target:
                    self._reject(msg, 1, 122, now)
                    return False
            else:
                o, s = _parse_ts(orig), _parse_ts(msg.get(52))
                if o is not None and s is not None and o > s:
                    self._reject(msg, 10, None, now)
                    self._send_logout(now)
                    return False
        expected = self.next_target
        if check_high and seq > expected:
            self._queue_too_high(msg, seq, now)
            return False
        if check_low and seq < expected:
            if not possdup:
                text = f"MsgSeqNum too low, expecting {expected} but received {seq}"
                self._send_logout(now, text)
                self._close(text)
            return False
        rr = self._resend_range
        if rr is not None and (check_high or check_low) and seq >= rr[1]:
            self._log(f"ResendRequest {rr[0]}..{rr[1]} satisfied")
            self._resend_range = None
        self.test_requests = 0
        return True

    def _incr_target(self) -> None:
        self.next_target += 1
        self._dirty = True

    # ----------------------------------------------------------------- transition handlers
    def _on_nothing(self, msg: Message | None, now: float, text: str) -> list[Action]:
        return []

    def _on_close_now(self, msg: Message | None, now: float, text: str) -> list[Action]:
        self._close(text or "closed before logon")
        return []

    def _on_connected(self, msg: Message | None, now: float, text: str) -> list[Action]:
        self.connected_at = now
        self.last_received = now
        self.last_sent = now
        self.test_requests = 0
        self._queue.clear()
        self._resend_range = None
        self._sent_reset = False
        if not self.config.initiator:
            self.state = State.AWAITING_LOGON
            return []
        # initiator: send the Logon
        self.state = State.LOGON_SENT
        body: list[tuple[int, bytes]] = [(98, b"0"), (108, b"%d" % self.config.heartbeat_int)]
        if self.config.reset_on_logon or self._reset_next_logon:
            self._reset_next_logon = False
            self._reset_seqnums(now)
            self._sent_reset = True
            body.append((141, b"Y"))
        if self.config.username:
            body.append((553, self.config.username.encode()))
        if self.config.password:
            body.append((554, self.config.password.encode()))
        self.heartbeat_int = self.config.heartbeat_int
        self._send_admin(b"A", body, now)
        return []

    def _on_first_not_logon(self, msg: Message | None, now: float, text: str) -> list[Action]:
        mt = msg.msg_type if msg is not None else b"?"
        self._close(f"first message is not a Logon (35={mt.decode('latin-1')})")
        return []

    def _on_garbled_before_logon(self, msg: Message | None, now: float, text: str) -> list[Action]:
        self._close(f"garbled message before logon: {text}")
        return []

    def _on_logon_timer(self, msg: Message | None, now: float, text: str) -> list[Action]:
        if now - self.connected_at >= self.config.logon_timeout:
            self._close("timed out waiting for Logon")
        return []

    def _on_logout_before_logon(self, msg: Message | None, now: float, text: str) -> list[Action]:
        assert msg is not None
        self._close(f"Logout instead of Logon: {msg.get_str(58, '')}")
        return []

    def _check_logon(self, msg: Message, now: float) -> str | None:
        """Why a Logon cannot be accepted (no Reject is possible before logon), or None."""
        if msg.get(8) != self._b_begin:
            return "wrong BeginString in Logon"
        rej = self._validate(msg)
        if rej is not None:
            return f"invalid Logon: {getattr(rej, 'text', rej)} (tag {getattr(rej, 'ref_tag', None)})"
        if not self._sending_time_ok(msg, now):
            return "Logon SendingTime accuracy problem"
        if msg.get(49) != self._b_target or msg.get(56) != self._b_sender:
            return "Logon CompID problem"
        hb = msg.get(108)
        if hb is None or not hb.isdigit():
            return "Logon HeartBtInt missing or not a positive number"
        return None

    def _on_acceptor_logon(self, msg: Message | None, now: float, text: str) -> list[Action]:
        assert msg is not None
        why = self._check_logon(msg, now)
        if why is not None:
            self._close(why)
            return []
        seq = int(msg[34])
        reset = self.config.reset_on_logon or msg.get(141) == b"Y"
        expected = 1 if reset else self.next_target
        if seq < expected:
            text = f"MsgSeqNum too low, expecting {expected} but received {seq}"
            self._send_logout(now, text)
            self._close(text)
            return []
        self.last_received = now
        self._pending_logon = _PendingLogon(msg, seq, reset, int(msg[108]), seq > expected)
        self.state = State.LOGON_PENDING_APP
        return [VerifyLogon(msg)]

    def _on_initiator_logon(self, msg: Message | None, now: float, text: str) -> list[Action]:
        assert msg is not None
        why = self._check_logon(msg, now)
        if why is not None:
            self._close(why)
            return []
        seq = int(msg[34])
        reset = msg.get(141) == b"Y" and not self._sent_reset
        if reset:
            self.next_target = 1
            self._dirty = True
        if seq < self.next_target and msg.get(43) != b"Y":
            text = f"MsgSeqNum too low, expecting {self.next_target} but received {seq}"
            if self.config.reset_when_peer_forgot and not self._sent_reset:
                # its numbers went back: it restarted empty, and would answer "too low" for ever
                self._reset_next_logon = True
                text += "; the counterparty lost the session: the next Logon resets both sides (141=Y)"
            self._send_logout(now, text)
            self._close(text)
            return []
        self.last_received = now
        self._pending_logon = _PendingLogon(msg, seq, False, self.heartbeat_int, seq > self.next_target)
        self.state = State.LOGON_PENDING_APP
        return [VerifyLogon(msg)]

    def _on_logon_accepted(self, msg: Message | None, now: float, text: str) -> list[Action]:
        p = self._pending_logon
        assert p is not None
        self._pending_logon = None
        if not self.config.initiator:
            if p.reset:
                self._reset_seqnums(now)
            self.heartbeat_int = p.heartbeat_int
            self.state = State.LOGGED_ON
            body: list[tuple[int, bytes]] = [(98, b"0"), (108, b"%d" % p.heartbeat_int)]
            if p.message.get(141) == b"Y":
                body.append((141, b"Y"))
            self._send_admin(b"A", body, now)
        else:
            self.state = State.LOGGED_ON
        self.test_requests = 0
        self._was_logged_on = True
        self._log("logged on")
        if p.seq > self.next_target:
            self._queue_too_high(p.message, p.seq, now)
        else:
            self._incr_target()
        return [LoggedOn()]

    def _on_logon_rejected(self, msg: Message | None, now: float, text: str) -> list[Action]:
        self._pending_logon = None
        self.state = State.AWAITING_LOGON if not self.config.initiator else State.LOGON_SENT
        self._log(f"Logon rejected by the application: {text}")
        self._send_logout(now, text)
        self._close(f"Logon rejected: {text}")
        return []

    def _on_garbled_ignored(self, msg: Message | None, now: float, text: str) -> list[Action]:
        return []

    def _on_heartbeat_timer(self, msg: Message | None, now: float, text: str) -> list[Action]:
        hb = self.heartbeat_int
        if hb <= 0:
            return []
        idle_rx = now - self.last_received
        if idle_rx >= 2.4 * hb:
            self._close("timed out waiting for heartbeat")
            return []
        if idle_rx >= 1.2 * (self.test_requests + 1) * hb:
            self._send_admin(b"1", [(112, b"TEST")], now)
            self.test_requests += 1
            self._log("sent TestRequest")
        elif now - self.last_sent >= hb and self.test_requests == 0:
            self._send_admin(b"0", [], now)
        return []

    def _on_logout_timer(self, msg: Message | None, now: float, text: str) -> list[Action]:
        if now - self.logout_sent_at >= self.config.logout_timeout:
            self._close("timed out waiting for Logout answer")
        return []

    def _on_logout_requested(self, msg: Message | None, now: float, text: str) -> list[Action]:
        self._send_logout(now, text)
        return []

    def _on_disconnected(self, msg: Message | None, now: float, text: str) -> list[Action]:
        if self.state is not State.DISCONNECTED:
            self._log("disconnected")
        self.state = State.DISCONNECTED
        self._queue.clear()
        self._resend_range = None
        self._pending_logon = None
        self.outbox = []
        if self.config.reset_on_disconnect:
            self._reset_seqnums(now)
        if self._was_logged_on:
            self._was_logged_on = False
            return [LoggedOut(text or "disconnected")]
        return []

    # ----------------------------------------------------------------- logged-on messages
    def _on_session_message(self, msg: Message | None, now: float, text: str) -> list[Action]:
        assert msg is not None
        self.last_received = now
        mt = msg.msg_type
        f0 = msg.fields[0] if msg.fields else (0, b"")
        if f0[0] != 8 or f0[1] != self._b_begin:
            if mt == b"5":
                return self._on_logout(msg, now)
            self._send_logout(now, "Incorrect BeginString")
            self._incr_target()
            return []
        rej = self._validate(msg)
        if rej is not None:
            self._reject(msg, rej.reason, rej.ref_tag, now, rej.text)  # type: ignore[attr-defined]
            return []
        handler = self._by_type.get(mt)
        if handler is not None:
            return handler(msg, now)
        return self._on_app_message(msg, now)

    def _on_app_message(self, msg: Message, now: float) -> list[Action]:
        if not self._verify(msg, now):
            return []
        self.next_target += 1
        self._dirty = True
        if self._supports is not None:
            mt = msg.msg_type
            ok = self._supported.get(mt)
            if ok is None:
                ok = self._supported[mt] = self._supports(mt)
            if not ok:
                self._business_reject(msg, 3, now)
                return []
        return [Deliver(msg, False)]

    def _on_heartbeat(self, msg: Message, now: float) -> list[Action]:
        if not self._verify(msg, now):
            return []
        self._incr_target()
        return [Deliver(msg, True)]

    def _on_test_request(self, msg: Message, now: float) -> list[Action]:
        if not self._verify(msg, now):
            return []
        self._send_admin(b"0", [(112, msg.get(112) or b"")], now)
        self._incr_target()
        return [Deliver(msg, True)]

    def _on_reject(self, msg: Message, now: float) -> list[Action]:
        if not self._verify(msg, now):
            return []
        self._incr_target()
        return [Deliver(msg, True)]

    def _on_resend_request(self, msg: Message, now: float) -> list[Action]:
        if not self._verify(msg, now, False, False):
            return []
        begin = int(msg.get(7) or b"0")
        end = int(msg.get(16) or b"0")
        self._service_resend(begin, end, now)
        seq = int(msg[34])
        if seq == self.next_target:
            self._incr_target()
        elif seq > self.next_target:
            self._queue_too_high(msg, seq, now)
        return [Deliver(msg, True)]

    def _get_range(self, begin: int, end: int) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        if self._store is not None and not self._store_stale:
            for seq, raw in self._store.get_range(begin, end):
                out[seq] = raw
        for seq, raw in self._recent.items():
            if begin <= seq <= end:
                out[seq] = raw
        return out

    def _service_resend(self, begin: int, end: int, now: float) -> None:
        last = self.next_sender - 1
        if end == 0 or end > last:
            end = last
        if begin < 1 or begin > end:
            self._log(f"ResendRequest {begin}..{end} asks for nothing we sent (last {last})")
            if begin >= 1 and begin <= last + 1 and begin > end:
                return
            return
        self._log(f"servicing ResendRequest {begin}..{end}")
        cursor = begin
        chunk = 1000  # read the store in bounded chunks
        lo = begin
        while lo <= end:
            hi = min(end, lo + chunk - 1)
            stored = self._get_range(lo, hi)
            for seq in sorted(stored):
                fields = parse_fields(stored[seq])
                if fields is None:
                    continue
                m = Message(fields)
                mt = m.msg_type
                if mt in _ADMIN:
                    continue
                resend = Message([(t, v) for t, v in fields if t not in (8, 9, 10)])
                try:
                    resend.set(43, b"Y")
                    self.to_app(resend)
                except Exception as exc:  # noqa: BLE001 - DoNotSend or an app error: gap-fill it
                    self._log(f"message {seq} not resent: {exc!r}")
                    continue
                if cursor < seq:
                    self._gap_fill(cursor, seq, now)
                header_extra, body = self._split(resend)
                self._seal(mt, body, now, header_extra=header_extra, seq=seq,
                           orig_sending_time=m.get(52) or utc_timestamp(now))
                cursor = seq + 1
            lo = hi + 1
        if cursor <= end:
            self._gap_fill(cursor, end + 1, now)

    def _gap_fill(self, seq: int, new_seq: int, now: float) -> None:
        ts = utc_timestamp(now, self.config.millis_in_timestamp)
        self._seal(b"4", [(123, b"Y"), (36, b"%d" % new_seq)], now, seq=seq, orig_sending_time=ts)

    def _on_sequence_reset(self, msg: Message, now: float) -> list[Action]:
        gap_fill = msg.get(123) == b"Y"
        if not self._verify(msg, now, gap_fill, gap_fill):
            return []
        new_b = msg.get(36)
        if new_b is not None and new_b.isdigit():
            new = int(new_b)
            if new > self.next_target:
                self._log(f"SequenceReset: next expected {self.next_target} -> {new}")
                self.next_target = new
                self._dirty = True
                rr = self._resend_range
                if rr is not None and new > rr[1]:
                    self._resend_range = None
            elif new < self.next_target:
                self._reject(msg, 5, None, now)
        return [Deliver(msg, True)]

    def _on_logout(self, msg: Message, now: float) -> list[Action]:
        if not self._verify(msg, now, False, False):
            return []
        if self.state is not State.LOGOUT_SENT:
            self._log(f"received Logout: {msg.get_str(58, '')}")
            self._send_logout(now)
        seq = int(msg[34])
        if seq == self.next_target:
            self._incr_target()
        if self.config.reset_on_logout:
            self._reset_seqnums(now)
        self._close("logout")
        return [Deliver(msg, True)]

    def _on_logon_while_logged_on(self, msg: Message, now: float) -> list[Action]:
        if msg.get(141) == b"Y" and msg.get(34) == b"1":
            if not self._sending_time_ok(msg, now):
                self._reject(msg, 10, None, now)
                self._send_logout(now)
                return []
            self._log("Logon with ResetSeqNumFlag=Y while logged on: resetting")
            self._reset_seqnums(now)
            hb = msg.get(108)
            if hb is not None and hb.isdigit():
                self.heartbeat_int = int(hb)
            self._send_admin(b"A", [(98, b"0"), (108, b"%d" % self.heartbeat_int), (141, b"Y")], now)
            self._incr_target()
            return [Deliver(msg, True)]
        self._close("Logon received while already logged on")
        return []

    # ----------------------------------------------------------------- application errors
    def app_error(self, msg: Message, exc: BaseException, now: float) -> list[Action]:
        """The application raised while handling ``msg``: answer as QuickFIX does."""

        admin = msg.msg_type in _ADMIN
        if isinstance(exc, UnsupportedMessageType):
            self._business_reject(msg, 3, now)
        elif isinstance(exc, BusinessReject):
            self._business_reject(msg, exc.reason, now, exc.text)
        elif isinstance(exc, FieldNotFound):
            if self._fix42_plus and not admin:
                self._business_reject(msg, 5, now, f"Conditionally Required Field Missing ({exc.tag})")
            else:
                self._reject(msg, 1, exc.tag, now, count=False)
        elif isinstance(exc, IncorrectTagValue):
            self._reject(msg, 5, exc.tag, now, count=False)
        elif isinstance(exc, IncorrectDataFormat):
            self._reject(msg, 6, exc.tag, now, count=False)
        elif isinstance(exc, RejectLogon):
            self._send_logout(now, str(exc))
            self._close(f"RejectLogon: {exc}")
        else:
            self._log(f"application error on message {msg.get(34)!r}: {exc!r}")
        return []


def seal_batch_order(items: Iterable[bytes | Close]) -> tuple[list[bytes], Close | None]:
    """Split an outbox into the bytes to write and the first Close marker (what follows is dropped)."""
    data: list[bytes] = []
    for it in items:
        if isinstance(it, Close):
            return data, it
        data.append(it)
    return data, None
