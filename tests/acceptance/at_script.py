"""Runner for QuickFIX acceptance-test scripts (``definitions/server/*/*.def``) over real TCP.

Script language (see shared/quickfix-at/README.md): ``I``/``E`` lines send / expect a message,
``iCONNECT``/``iDISCONNECT``/``eDISCONNECT`` open, close, expect the close of a connection; an
optional ``N,`` after the letter names connection N. ``<TIME>``/``<TIME+N>``/``<TIME-N>`` are the
current UTC time shifted by N seconds. Lines starting with ``8=`` get BodyLength inserted and
CheckSum appended when they do not carry them.

Comparison (QuickFIX/J's lenient one): fields as a set keyed by tag; 9 and 10 ignored; 52, 60,
122 and 42 matched by the patterns of ``definitions/fields.fmt``; 58 by prefix; the rest equal.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

SOH = b"\x01"
_TIME = re.compile(rb"<TIME([+-]\d+)?>")
_MSG = re.compile(rb"8=.*?\x0110=\d{3}\x01", re.DOTALL)


@dataclass(frozen=True)
class Step:
    line_no: int
    kind: str  # "connect" | "disconnect" | "expect-disconnect" | "send" | "expect"
    conn: int
    payload: bytes = b""


def parse_script(path: Path) -> list[Step]:
    steps: list[Step] = []
    for n, raw in enumerate(path.read_bytes().split(b"\n"), 1):
        line = raw.rstrip(b"\r")
        if not line.strip() or line.startswith(b"#"):
            continue
        letter, rest = chr(line[0]), line[1:]
        conn = 0
        m = re.match(rb"(\d+),", rest)
        if m:
            conn = int(m.group(1))
            rest = rest[m.end():]
        if letter in "ie":
            word = rest.strip()
            if letter == "i" and word == b"CONNECT":
                steps.append(Step(n, "connect", conn))
            elif letter == "i" and word == b"DISCONNECT":
                steps.append(Step(n, "disconnect", conn))
            elif letter == "e" and word == b"DISCONNECT":
                steps.append(Step(n, "expect-disconnect", conn))
            else:
                raise ValueError(f"{path.name}:{n}: unknown action {line!r}")
        elif letter == "I":
            steps.append(Step(n, "send", conn, rest))
        elif letter == "E":
            steps.append(Step(n, "expect", conn, rest))
        else:
            raise ValueError(f"{path.name}:{n}: unknown line {line!r}")
    return steps


def substitute_time(payload: bytes, now: datetime | None = None) -> bytes:
    now = now or datetime.now(UTC)

    def repl(m: re.Match[bytes]) -> bytes:
        shift = int(m.group(1)) if m.group(1) else 0
        return (now + timedelta(seconds=shift)).strftime("%Y%m%d-%H:%M:%S").encode()

    return _TIME.sub(repl, payload)


def complete(payload: bytes) -> bytes:
    """Insert BodyLength and append CheckSum where the script line does not carry them."""
    if not payload.startswith(b"8="):
        return payload
    fields = payload.split(SOH)
    if fields and fields[-1] == b"":
        fields.pop()
    has_len = len(fields) > 1 and fields[1].startswith(b"9=")
    has_sum = fields[-1].startswith(b"10=")
    if not has_len:
        body_fields = fields[1:-1] if has_sum else fields[1:]
        body = b"".join(f + SOH for f in body_fields)
        fields.insert(1, b"9=%d" % len(body))
    out = b"".join(f + SOH for f in fields)
    if not has_sum:
        out += b"10=%03d\x01" % (sum(out) & 0xFF)
    return out


def fields_of(raw: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for part in raw.split(SOH):
        if not part:
            continue
        tag, _, value = part.partition(b"=")
        out[int(tag)] = value
    return out


def load_patterns(fields_fmt: Path) -> dict[int, re.Pattern[bytes]]:
    pats: dict[int, re.Pattern[bytes]] = {}
    for line in fields_fmt.read_bytes().splitlines():
        if b"=" in line:
            tag, _, pat = line.partition(b"=")
            pats[int(tag)] = re.compile(pat)
    return pats


IGNORED = frozenset({9, 10})


def compare(expected: bytes, got: bytes, patterns: dict[int, re.Pattern[bytes]]) -> str | None:
    """None when ``got`` matches ``expected``, else what differs."""
    e = {t: v for t, v in fields_of(expected).items() if t not in IGNORED}
    g = {t: v for t, v in fields_of(got).items() if t not in IGNORED}
    problems = []
    missing = sorted(set(e) - set(g))
    extra = sorted(set(g) - set(e))
    if missing:
        problems.append(f"missing tags {missing}")
    if extra:
        problems.append(f"unexpected tags {extra}")
    for tag in sorted(set(e) & set(g)):
        ev, gv = e[tag], g[tag]
        if tag in patterns and tag != 10:
            if not patterns[tag].match(gv):
                problems.append(f"{tag}={gv!r} does not match {patterns[tag].pattern!r}")
        elif tag == 58:
            if not gv.startswith(ev):
                problems.append(f"58={gv!r} does not start with {ev!r}")
        elif ev != gv:
            problems.append(f"{tag}: expected {ev!r}, got {gv!r}")
    return "; ".join(problems) if problems else None


class _Conn:
    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def _fill(self, deadline: float) -> bool:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def next_message(self, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        while True:
            m = _MSG.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m.group(0)
            if self.eof or not self._fill(deadline):
                return None

    def wait_close(self, timeout: float) -> bytes | None:
        """None when the peer closed in time; else the message (or b'' on timeout) that came."""
        deadline = time.monotonic() + timeout
        while True:
            m = _MSG.search(self.buf)
            if m:
                return m.group(0)
            if self.eof:
                return None
            if not self._fill(deadline) and not self.eof:
                return b""

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class ScriptFailure(AssertionError):
    pass


def run_script(
    path: Path,
    host: str,
    port: int,
    patterns: dict[int, re.Pattern[bytes]],
    *,
    timeout: float = 12.0,
) -> int:
    """Run one script; raise ScriptFailure naming the line that failed. Returns steps run."""
    conns: dict[int, _Conn] = {}
    steps = parse_script(path)
    try:
        for st in steps:
            where = f"{path.parent.name}/{path.name}:{st.line_no}"
            if st.kind == "connect":
                conns[st.conn] = _Conn(host, port)
            elif st.kind == "disconnect":
                c = conns.pop(st.conn, None)
                if c is not None:
                    c.close()
            elif st.kind == "expect-disconnect":
                c = conns.get(st.conn)
                if c is None:
                    raise ScriptFailure(f"{where}: no connection {st.conn}")
                got = c.wait_close(timeout)
                if got is not None:
                    raise ScriptFailure(
                        f"{where}: expected disconnect, got "
                        + (repr(got.replace(SOH, b"|")) if got else f"nothing for {timeout}s")
                    )
                conns.pop(st.conn).close()
            elif st.kind == "send":
                c = conns.get(st.conn)
                if c is None:
                    raise ScriptFailure(f"{where}: send on closed connection {st.conn}")
                c.sock.sendall(complete(substitute_time(st.payload)))
            elif st.kind == "expect":
                c = conns.get(st.conn)
                if c is None:
                    raise ScriptFailure(f"{where}: expect on closed connection {st.conn}")
                want = complete(substitute_time(st.payload))
                got = c.next_message(timeout)
                if got is None:
                    raise ScriptFailure(
                        f"{where}: expected {want.replace(SOH, b'|')!r}, got "
                        + ("disconnect" if c.eof else f"nothing for {timeout}s")
                    )
                diff = compare(want, got, patterns)
                if diff is not None:
                    raise ScriptFailure(
                        f"{where}: {diff}\n  expected {want.replace(SOH, b'|')!r}\n"
                        f"  got      {got.replace(SOH, b'|')!r}"
                    )
    finally:
        for c in conns.values():
            c.close()
    return len(steps)
