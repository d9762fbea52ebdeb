"""Replay one side of a recorded FIX session and compare the answers: ``fixgw fix replay``.

An incident is reproduced against the simulators by sending again what one side sent, as a
FIX message log recorded it, and seeing whether the counterparty now answers the same way.

Logs read
    * ours (:mod:`fixgw.fixlog`): ``20260102-03:04:05.123456 OUT 8=FIX.4.4|9=...|10=123|``;
    * QuickFIX's ``FileLog`` ``.messages.log`` (``.messages.current.log`` in QuickFIX 1.15):
      ``20260102-03:04:05.123 : 8=FIX.4.4<SOH>...`` (seconds, milliseconds, or nanoseconds as
      1.15 writes them), or, from older QuickFIX versions, the bare message with no time at
      all. Without times nothing is paced.

    The side to replay is chosen by SenderCompID (49) and TargetCompID (56): the application
    messages from ``--sender`` to ``--target`` are sent again; those from ``--target`` to
    ``--sender`` are the recorded responses. Session-level messages (logon, heartbeats,
    resends, ...) are left to our engine, which runs its own session as the initiator.
    Retransmissions (PossDupFlag=Y) are not sent twice, and a retransmitted response already
    recorded counts once.

Sending
    Each message keeps its body; the header (sequence number, SendingTime, CompIDs, PossDup)
    is the new session's. Messages are paced as recorded: the gap between two recorded sends
    divided by ``speed`` (2: twice as fast; 0: no pauses). A counterparty that has seen the
    recorded ClOrdIDs (a running venue, a customer utility the same day) refuses them again:
    ``id_suffix`` makes them new (appended on the way out, taken off the answers).

Comparing
    Responses are paired with the recorded ones by ClOrdID (11; a response without one, such
    as a BusinessMessageReject, by its position among those), in order, and compared field by
    field on what matters to an order: MsgType, ExecType, OrdStatus, the quantities and the
    prices (as numbers: ``100`` equals ``100.00``). Identifiers the venue makes up (OrderID,
    ExecID) and times are not compared. A recorded response that never came is *missing*; a
    response that was not recorded is *extra*.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from fixgw.application import Application
from fixgw.config import SessionID, SessionSettings
from fixgw.engine import Engine
from fixgw.message import ADMIN_MSG_TYPES, Message

# tag -> name of what is compared, in report order; the numeric ones compare as Decimals
COMPARED: dict[int, str] = {
    35: "MsgType", 150: "ExecType", 39: "OrdStatus", 38: "OrderQty", 152: "CashOrderQty", 44: "Price",
    32: "LastQty", 31: "LastPx", 14: "CumQty", 151: "LeavesQty", 6: "AvgPx", 434: "CxlRejResponseTo",
    102: "CxlRejReason", 103: "OrdRejReason", 380: "BusinessRejectReason",
}
NUMERIC = frozenset({38, 152, 44, 32, 31, 14, 151, 6})

# the standard header and trailer: the new session writes its own
HEADER_TAGS = frozenset({8, 9, 10, 34, 35, 43, 49, 50, 52, 56, 57, 89, 90, 91, 93, 97, 115, 116, 122, 128,
                         129, 142, 143, 144, 145, 212, 213, 347, 369, 627, 628, 629, 630})
NO_CLORDID = "(no ClOrdID)"

_OURS = re.compile(r"^(\d{8}-\d{2}:\d{2}:\d{2}(?:\.\d+)?) (IN|OUT) (8=FIX.*)$")
_QUICKFIX = re.compile(r"^(\d{8}-\d{2}:\d{2}:\d{2}(?:\.\d+)?) : (8=FIX.*)$")


class FixReplayError(ValueError):
    """The log cannot be replayed (unreadable, nothing to send); the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Logged:
    """One message of a recorded session: when (None when the log has no times) and what."""

    time: datetime | None
    message: Message


def _parse_time(text: str) -> datetime:
    whole, _, frac = text.partition(".")
    t = datetime.strptime(whole, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
    if frac:
        t = t.replace(microsecond=int((frac + "000000")[:6]))
    return t


def parse_log_line(line: str, where: str) -> Logged | None:
    """A line of our message log or of QuickFIX's; None for a blank line."""
    text = line.rstrip("\r\n")
    if not text.strip():
        return None
    stamp: str | None
    m = _OURS.match(text)
    if m is not None:
        stamp, msg = m.group(1), m.group(3)
        msg = msg.replace("\\n", "\n").replace("\\r", "\r")
    elif (q := _QUICKFIX.match(text)) is not None:
        stamp, msg = q.group(1), q.group(2)
    elif text.startswith("8=FIX"):
        stamp, msg = None, text
    else:
        raise FixReplayError(f"{where}: not a FIX message log line (ours: 'TIME IN|OUT 8=FIX...'; "
                             f"QuickFIX: 'TIME : 8=FIX...' or '8=FIX...'): {text[:60]!r}")
    if "\x01" not in msg:
        msg = msg.replace("|", "\x01")  # our log shows SOH as '|'
    try:
        message = Message.from_wire(msg.encode("latin-1"))
        when = _parse_time(stamp) if stamp is not None else None
    except ValueError as exc:
        raise FixReplayError(f"{where}: {exc}") from None
    return Logged(when, message)


def read_log(path: Path) -> list[Logged]:
    """Every message of a FIX message log, in order."""
    try:
        with open(path, encoding="latin-1") as f:
            out = []
            for lineno, line in enumerate(f, 1):
                got = parse_log_line(line, f"{path}:{lineno}")
                if got is not None:
                    out.append(got)
    except OSError as exc:
        raise FixReplayError(f"{path}: cannot read the FIX log: {exc.strerror or exc}") from None
    return out


@dataclass(frozen=True, slots=True)
class Recorded:
    """The side to replay: what it sent (application messages) and what it got back."""

    sent: list[Logged]
    responses: list[Message]
    begin_string: str


def split_session(logged: Sequence[Logged], sender: str, target: str, *, where: str = "the log") -> Recorded:
    """The application messages ``sender`` sent to ``target``, and those ``target`` sent back."""
    sent: list[Logged] = []
    responses: list[Message] = []
    seen: set[tuple[tuple[int, bytes], ...]] = set()
    begin = ""
    for item in logged:
        m = item.message
        if m.msg_type in ADMIN_MSG_TYPES:
            continue
        s, t = m.get_str(49), m.get_str(56)
        resent = m.get_str(43) == "Y"  # PossDupFlag: a retransmission (answering a ResendRequest)
        if s == sender and t == target:
            if resent:
                continue  # the original was logged when it was first sent
            sent.append(item)
            begin = begin or (m.get_str(8) or "")
        elif s == target and t == sender:
            body = tuple(body_of(m))
            if resent and body in seen:
                continue  # a copy of a response already recorded
            seen.add(body)
            responses.append(m)
    if not sent:
        pairs = sorted({f"{x.message.get_str(49)}->{x.message.get_str(56)}" for x in logged})
        raise FixReplayError(f"{where}: no application message from {sender} to {target} "
                             f"(the log has: {', '.join(pairs) or 'no messages'})")
    return Recorded(sent, responses, begin)


ID_TAGS = frozenset({11, 41})  # ClOrdID, OrigClOrdID: what --id-suffix makes new


def body_of(m: Message, id_suffix: str = "") -> list[tuple[int, bytes]]:
    """The message's fields without the standard header and trailer (``id_suffix`` appended
    to its ClOrdID and OrigClOrdID)."""
    if not id_suffix:
        return [(t, v) for t, v in m.fields if t not in HEADER_TAGS]
    extra = id_suffix.encode("latin-1")
    return [(t, v + extra if t in ID_TAGS else v) for t, v in m.fields if t not in HEADER_TAGS]


def without_suffix(m: Message, id_suffix: str) -> Message:
    """A response as if its ClOrdID and OrigClOrdID carried no ``id_suffix`` (for comparing)."""
    if not id_suffix:
        return m
    extra = id_suffix.encode("latin-1")
    return Message([(t, v[:-len(extra)] if t in ID_TAGS and v.endswith(extra) else v) for t, v in m.fields])


def delays(sent: Sequence[Logged], speed: float) -> list[float]:
    """Seconds to wait before each send: the recorded gaps / speed (0 when unknown or speed 0)."""
    out = []
    prev: datetime | None = None
    for item in sent:
        gap = 0.0
        if speed > 0 and item.time is not None and prev is not None:
            gap = max(0.0, (item.time - prev).total_seconds() / speed)
        out.append(gap)
        prev = item.time if item.time is not None else prev
    return out


# -- comparing ----------------------------------------------------------------------------


def _key(m: Message) -> str:
    return m.get_str(11) or NO_CLORDID


def group(responses: Iterable[Message]) -> dict[str, list[Message]]:
    out: dict[str, list[Message]] = {}
    for m in responses:
        out.setdefault(_key(m), []).append(m)
    return out


def _same(tag: int, a: str | None, b: str | None) -> bool:
    if a == b:
        return True
    if tag in NUMERIC and a is not None and b is not None:
        try:
            return Decimal(a) == Decimal(b)
        except InvalidOperation:
            return False
    return False


def describe(m: Message) -> str:
    """A response in a few words: its type and the compared fields it has."""
    parts = [f"{name} {m.get_str(tag)}" for tag, name in COMPARED.items() if m.get(tag) is not None]
    return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Difference:
    cl_ord_id: str
    index: int                     # 1-based position among the responses of that ClOrdID
    what: str                      # "field", "missing" or "extra"
    field: str = ""                # the field's name when what == "field"
    recorded: str | None = None
    replayed: str | None = None

    def text(self) -> str:
        where = f"ClOrdID {self.cl_ord_id}, response {self.index}"
        if self.what == "field":
            return f"{where}: {self.field} recorded {self.recorded}, replayed {self.replayed}"
        if self.what == "missing":
            return f"{where}: missing (recorded: {self.recorded})"
        return f"{where}: extra (replayed: {self.replayed})"


def compare(recorded: Iterable[Message], replayed: Iterable[Message]) -> list[Difference]:
    """How the replayed responses differ from the recorded ones (empty: the same)."""
    rec, rep = group(recorded), group(replayed)
    out: list[Difference] = []
    for key in list(dict.fromkeys([*rec, *rep])):
        a, b = rec.get(key, []), rep.get(key, [])
        for i in range(max(len(a), len(b))):
            if i >= len(b):
                out.append(Difference(key, i + 1, "missing", recorded=describe(a[i])))
            elif i >= len(a):
                out.append(Difference(key, i + 1, "extra", replayed=describe(b[i])))
            else:
                for tag, name in COMPARED.items():
                    x, y = a[i].get_str(tag), b[i].get_str(tag)
                    if not _same(tag, x, y):
                        out.append(Difference(key, i + 1, "field", name, x, y))
    return out


# -- replaying ----------------------------------------------------------------------------


@dataclass(slots=True)
class Result:
    sent: int
    recorded: list[Message]
    replayed: list[Message] = field(default_factory=list)
    send_seconds: float = 0.0

    @property
    def differences(self) -> list[Difference]:
        return compare(self.recorded, self.replayed)

    def to_json(self) -> dict[str, Any]:
        diffs = self.differences
        return {
            "sent": self.sent, "recorded_responses": len(self.recorded), "responses": len(self.replayed),
            "send_seconds": round(self.send_seconds, 3), "same": not diffs,
            "differences": [{"cl_ord_id": d.cl_ord_id, "index": d.index, "what": d.what, "field": d.field,
                             "recorded": d.recorded, "replayed": d.replayed} for d in diffs],
        }

    def text(self) -> str:
        diffs = self.differences
        lines = [(f"sent {self.sent} message(s) in {self.send_seconds:.2f} s; responses: "
                 f"{len(self.recorded)} recorded, {len(self.replayed)} now")]
        lines += [f"  {d.text()}" for d in diffs]
        lines.append("responses are the same as recorded" if not diffs
                     else f"{len(diffs)} difference(s) from the recording")
        return "\n".join(lines) + "\n"


class _Collector(Application):
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.arrived = asyncio.Event()
        self.refused = ""

    async def from_app(self, message: Message, session_id: SessionID) -> None:
        self.messages.append(message)
        self.arrived.set()

    async def from_admin(self, message: Message, session_id: SessionID) -> None:
        if message.msg_type == b"5" and message.get_str(58):
            self.refused = message.get_str(58) or ""


def _enough(recorded: dict[str, list[Message]], got: list[Message]) -> bool:
    have = group(got)
    return all(len(have.get(k, [])) >= len(v) for k, v in recorded.items())


async def replay(recorded: Recorded, *, host: str, port: int, sender: str, target: str, speed: float = 1.0,
                 begin_string: str | None = None, wait: float = 10.0, settle: float = 1.0,
                 logon_timeout: float = 10.0, id_suffix: str = "") -> Result:
    """Send the recorded messages again through our engine (initiator) and collect the answers.

    After the last send it waits until every ClOrdID has as many responses as recorded and
    ``settle`` seconds pass with none more (or ``settle`` seconds with nothing at all when
    fewer came), at most ``wait`` seconds. ``id_suffix`` is appended to every ClOrdID and
    OrigClOrdID sent (a counterparty that has seen the recorded ids refuses them again) and
    taken off the answers before they are compared.
    """
    if speed < 0:
        raise FixReplayError(f"--speed {speed}: expected 0 (no pauses) or more")
    settings = SessionSettings(begin_string=begin_string or recorded.begin_string, sender_comp_id=sender,
                               target_comp_id=target, connection_type="initiator", socket_connect_host=host,
                               socket_connect_port=port, heart_bt_int=30, reset_on_logon=True,
                               reconnect_interval=1)
    app = _Collector()
    engine = Engine([settings], app)
    result = Result(sent=0, recorded=list(recorded.responses))
    await engine.start()
    try:
        try:
            await engine.wait_logged_on(settings.session_id, timeout=logon_timeout)
        except TimeoutError:
            why = f": {app.refused}" if app.refused else ""
            raise FixReplayError(f"no logon to {host}:{port} as {sender} -> {target}{why}") from None
        loop = asyncio.get_running_loop()
        started = loop.time()
        for pause, item in zip(delays(recorded.sent, speed), recorded.sent, strict=True):
            if pause > 0:
                await asyncio.sleep(pause)
            engine.send_to_target(Message.new(item.message.msg_type, body_of(item.message, id_suffix)),
                                  settings.session_id)
            result.sent += 1
        result.send_seconds = loop.time() - started
        wanted = group(recorded.responses)
        deadline = loop.time() + wait
        while (remaining := deadline - loop.time()) > 0:
            app.arrived.clear()
            try:
                await asyncio.wait_for(app.arrived.wait(), min(settle, remaining))
            except TimeoutError:
                # quiet for `settle` seconds: done once every recorded answer has its counterpart,
                # else keep waiting (a fill may come later) until the deadline
                if _enough(wanted, [without_suffix(m, id_suffix) for m in app.messages]):
                    break
        result.replayed = [without_suffix(m, id_suffix) for m in app.messages]
        return result
    finally:
        await engine.stop()


def run(log: Path, *, host: str, port: int, sender: str, target: str, speed: float = 1.0,
        begin_string: str | None = None, wait: float = 10.0, id_suffix: str = "") -> Result:
    """Read ``log``, replay ``sender``'s side to ``host:port``, compare (blocking)."""
    recorded = split_session(read_log(log), sender, target, where=str(log))
    return asyncio.run(replay(recorded, host=host, port=port, sender=sender, target=target, speed=speed,
                              begin_string=begin_string, wait=wait, id_suffix=id_suffix))
