"""FIX framing: cut a byte stream into messages, verify BodyLength and CheckSum.

Why our own framer: simplefix parses ~17k msg/s and slows down on large buffers; this one
uses ``bytes.find`` over one buffer and a plain split on SOH (~10x faster), and it follows
the rules the FIX session test cases (and QuickFIX) use:

- a message starts with ``8=`` at the start of the stream or right after an SOH; bytes before
  it are skipped;
- ``9=`` (BodyLength) must be the second field and ``35=`` (MsgType) the third;
- the trailer ``10=`` is searched from where BodyLength says the body ends, so that a wrong
  BodyLength still has a known extent: the message (and, when the length is too long, the
  one that follows it and was swallowed) is reported as *garbled* and the session ignores
  it, exactly as a counterparty expects (it will resend after a ResendRequest);
- a frame that can never complete (no trailer within ``max_message_size``) is dropped, so a
  parser can never be stuck on bad input.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from fixgw.message import Message, checksum, parse_fields

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "Framer", "Garbled", "checksum"]

SOH: Final = b"\x01"

# what a next_known matcher returns: a tuple whose first item is the frame's bytes
_K = TypeVar("_K", bound=tuple[Any, ...])
_TRAILER: Final = b"\x0110="
DEFAULT_MAX_MESSAGE_SIZE: Final = 1 << 20
# a BeginString / BodyLength field longer than this is garbage, not a partial frame
_MAX_HEAD_FIELD: Final = 32


@dataclass(frozen=True, slots=True)
class Garbled:
    """Bytes that are not a valid FIX message; ``reason`` says why (for the event log)."""

    raw: bytes
    reason: str
    # MsgType as far as it could be read (b"" when unknown): an acceptor drops a connection
    # whose first message is a garbled Logon, a logged-on session ignores garbled messages
    msg_type: bytes = b""


# The usual frame, as one C-level match: "8=" BeginString (1-32 bytes), "9=" BodyLength, and
# MsgType (non-empty) third; next_raw then only has to look at the trailer where BodyLength says.
_USUAL_HEAD: Final = re.compile(rb"8=[^\x01]{1,32}\x019=(\d{1,9})\x0135=[^\x01]").match
# sum of the bytes "10=" and the final SOH, taken off a whole frame's sum
_TRAILER_SUM: Final = sum(b"10=\x01")
_adler32: Final = zlib.adler32


class Framer:
    """Incremental framer: ``feed(bytes)``, then ``next()`` until it returns ``None``.

    ``next()`` returns a parsed :class:`Message` (its ``raw`` is the exact wire bytes) or a
    :class:`Garbled` record. It never raises on bad input.
    """

    __slots__ = ("_buf", "_pos", "max_message_size", "skipped_bytes")

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        if max_message_size < 64:
            raise ValueError(f"max_message_size must be >= 64, got {max_message_size}")
        self._buf = b""
        self._pos = 0
        self.max_message_size = max_message_size
        # bytes dropped because they were not part of any frame (counted for tests/stats)
        self.skipped_bytes = 0

    def feed(self, data: bytes) -> None:
        if self._pos:
            self._buf = self._buf[self._pos :] + data
            self._pos = 0
        elif self._buf:
            self._buf += data
        else:
            self._buf = bytes(data)

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def _resync(self, frm: int) -> None:
        """Drop bytes up to the next ``8=FIX`` at or after ``frm``."""
        buf = self._buf
        i = buf.find(b"8=FIX", frm)
        if i < 0:
            # keep a tail that may be the beginning of "8=FIX" split across reads
            i = len(buf)
            for k in (4, 3, 2, 1):
                if len(buf) - k >= frm and b"8=FIX".startswith(buf[len(buf) - k :]):
                    i = len(buf) - k
                    break
        i = max(i, self._pos)
        self.skipped_bytes += i - self._pos
        self._pos = i

    def next(self) -> Message | Garbled | None:
        item = self.next_raw()
        if item is None or type(item) is Garbled:
            return item
        fields = parse_fields(item)  # type: ignore[arg-type]
        if fields is None:
            return Garbled(item, "a field is not tag=value with a numeric tag")  # type: ignore[arg-type]
        return Message(fields, item)  # type: ignore[arg-type]

    def next_known(self, match: Callable[[bytes, int, int], _K | None]) -> _K | None:
        """A shortcut for readers that recognise their usual frames: ``match(buffer, position,
        max_message_size)`` returns something whose first item is the whole frame at that
        position (then the framer moves past it, and it is returned), or None (nothing is
        consumed: use next_raw). The matcher must only accept what next_raw would return."""
        r = match(self._buf, self._pos, self.max_message_size)
        if r is not None:
            self._pos += len(r[0])
        return r

    def next_raw(self) -> bytes | Garbled | None:
        """Like next() but a valid frame comes back as its bytes, unparsed (fast readers)."""
        buf = self._buf
        while True:
            p = self._pos
            m = _USUAL_HEAD(buf, p)
            if m is not None:
                # the common case: a well-formed frame with its trailer where BodyLength says;
                # anything else (incomplete, wrong length or checksum) takes the full path below
                t = m.end(1) + int(m.group(1))  # the SOH before "10="
                if buf[t + 7 : t + 8] == SOH and buf.startswith(b"\x0110=", t):
                    cs_b = buf[t + 4 : t + 7]
                    if cs_b.isdigit() and int(m.group(1)) <= self.max_message_size:
                        raw = buf[p : t + 8]
                        # CheckSum: see message.checksum (adler32's low half is 1 + the sum)
                        cs = _adler32(raw) - 1 if len(raw) <= 256 else checksum(raw)
                        if int(cs_b) == (cs - _TRAILER_SUM - sum(cs_b)) & 0xFF:
                            self._pos = t + 8
                            return raw
            n = len(buf)
            if n - p < 2:
                return None
            if buf[p] != 0x38 or buf[p + 1] != 0x3D:  # not "8="
                self._resync(p)
                if self._pos == p:
                    return None  # a possible partial "8=FIX": wait for more bytes
                continue
            e1 = buf.find(SOH, p)
            if e1 < 0:
                if n - p > _MAX_HEAD_FIELD:
                    self._resync(p + 1)
                    continue
                return None
            if n < e1 + 3:
                return None
            if buf[e1 + 1 : e1 + 3] != b"9=":
                # no BodyLength: the extent is unknown, resynchronise on the next "8="
                start = p
                self._resync(e1 + 1)
                return Garbled(buf[start : self._pos], "BodyLength(9) is not the second field")
            e2 = buf.find(SOH, e1 + 3)
            if e2 < 0:
                if n - e1 > _MAX_HEAD_FIELD:
                    start = p
                    self._resync(e1 + 1)
                    return Garbled(buf[start : self._pos], "BodyLength(9) too long")
                return None
            length_b = buf[e1 + 3 : e2]
            if not length_b.isdigit() or len(length_b) > 9:
                start = p
                self._resync(e1 + 1)
                return Garbled(buf[start : self._pos], f"BodyLength(9) not a number: {length_b!r}")
            length = int(length_b)
            if length > self.max_message_size:
                start = p
                self._resync(e2 + 1)
                return Garbled(buf[start : self._pos], f"BodyLength {length} over maximum {self.max_message_size}")
            body_start = e2 + 1
            body_end = body_start + length
            if n < body_end:
                return None
            # the trailer must be within the maximum size: junk cannot swallow what follows
            limit = p + self.max_message_size + 64
            t = buf.find(_TRAILER, body_end - 1 if length else body_start - 1, limit)
            if t < 0 or buf.find(SOH, t + 4, limit + 8) < 0:
                if n > limit:
                    start = p
                    self._resync(p + 1)
                    return Garbled(buf[start : self._pos], "no CheckSum(10) within the maximum message size")
                return None
            e3 = buf.find(SOH, t + 4)
            end = e3 + 1
            raw = buf[p:end]
            self._pos = end
            mt_end = buf.find(SOH, body_start, t + 1)
            msg_type = b""
            if buf.startswith(b"35=", body_start) and mt_end > 0:
                msg_type = buf[body_start + 3 : mt_end]
            if t != body_end - 1:
                return Garbled(raw, f"BodyLength {length} does not match the message", msg_type)
            cs_b = buf[t + 4 : e3]
            if not cs_b.isdigit() or len(cs_b) != 3 or int(cs_b) != (sum(buf[p : t + 1]) & 0xFF):
                return Garbled(raw, f"CheckSum(10) {cs_b!r} is wrong", msg_type)
            if not msg_type:
                return Garbled(raw, "MsgType(35) is not the third field")
            return raw
