"""Reading the QuickFIX acceptance scripts (.def) for dictionary-level tests (test support only)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.shared import at_root

SOH = b"\x01"

_TIME_RE = re.compile(rb"<TIME([+-][0-9]+)?>")
_LINE_RE = re.compile(rb"^([IE])(?:([0-9]+),)?(8=.*)$")


def server_dirs() -> dict[str, Path]:
    """BeginString -> folder of .def scripts."""
    root = at_root()
    return {
        "FIX.4.2": root / "definitions/server/fix42",
        "FIX.4.4": root / "definitions/server/fix44",
    }


def substitute_time(line: bytes, now: datetime) -> bytes:
    """Replace <TIME>, <TIME+N>, <TIME-N> by UTC time strings."""

    def rep(m: re.Match[bytes]) -> bytes:
        shift = int(m.group(1)) if m.group(1) else 0
        return (now + timedelta(seconds=shift)).strftime("%Y%m%d-%H:%M:%S").encode()

    return _TIME_RE.sub(rep, line)


def complete(msg: bytes) -> bytes:
    """Insert 9= and append 10= when the line does not carry them (values written are kept)."""
    if not msg.endswith(SOH):
        msg += SOH
    parts = msg[:-1].split(SOH)
    if not any(p.startswith(b"9=") for p in parts):
        body = SOH.join(parts[1:]) + SOH
        msg = parts[0] + SOH + b"9=%d" % len(body) + SOH + body
        parts = msg[:-1].split(SOH)
    if not parts[-1].startswith(b"10="):
        msg = msg + b"10=%03d" % (sum(msg) % 256) + SOH
    return msg


def to_fields(raw: bytes) -> list[tuple[int, bytes]]:
    """Split a complete message into (tag, value); tags as int (e.g. -1 stays -1)."""
    out: list[tuple[int, bytes]] = []
    for part in raw[:-1].split(SOH) if raw.endswith(SOH) else raw.split(SOH):
        tag, _, value = part.partition(b"=")
        out.append((int(tag), value))
    return out


def framing_ok(raw: bytes) -> bool:
    """True if 8, 9 lead, BodyLength and CheckSum are right (what the framer checks)."""
    if not raw.startswith(b"8="):
        return False
    first = raw.index(SOH) + 1
    if not raw[first:].startswith(b"9="):
        return False
    end9 = raw.index(SOH, first)
    try:
        blen = int(raw[first + 2 : end9])
    except ValueError:
        return False
    cks_at = raw.rfind(b"10=")
    if cks_at < 0 or cks_at != end9 + 1 + blen:
        return False
    try:
        cks = int(raw[cks_at + 3 : -1])
    except ValueError:
        return False
    return cks == sum(raw[:cks_at]) % 256


@dataclass(frozen=True)
class ScriptStep:
    """An I line and the E line answering it (None if another I line comes first)."""

    script: str
    lineno: int
    begin_string: str
    raw: bytes
    answer: bytes | None


def steps(now: datetime | None = None) -> Iterator[ScriptStep]:
    """Every I line of every server script of both versions, with its direct answer."""
    now = now or datetime.now(UTC)
    for bs, folder in server_dirs().items():
        for path in sorted(folder.glob("*.def")):
            lines = path.read_bytes().split(b"\n")
            parsed: list[tuple[int, bytes, bytes]] = []
            for no, line in enumerate(lines, 1):
                line = line.rstrip(b"\r")
                if not line or line.startswith(b"#"):
                    continue
                m = _LINE_RE.match(line)
                if m is None:
                    parsed.append((no, b"other", line))
                    continue
                parsed.append((no, m.group(1), m.group(3)))
            for k, (no, kind, text) in enumerate(parsed):
                if kind != b"I":
                    continue
                answer = None
                if k + 1 < len(parsed) and parsed[k + 1][1] == b"E":
                    answer = parsed[k + 1][2]
                raw = complete(substitute_time(text, now))
                yield ScriptStep(f"{folder.name}/{path.name}", no, bs, raw, answer)


def expected_reject(answer: bytes) -> dict[int, bytes] | None:
    """The fields of an expected Reject (35=3) as tag -> value, or None if not a Reject."""
    fields = {
        int(p.partition(b"=")[0]): p.partition(b"=")[2] for p in answer.rstrip(SOH).split(SOH) if p
    }
    return fields if fields.get(35) == b"3" else None
