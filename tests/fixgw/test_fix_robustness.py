"""Robustness: 5,000 seeded mutated / garbled messages on one session while another trades.

A real ``fixgw at-server --config`` process with two FIX.4.4 sessions (FUZZ, TRADER). The fuzzer
sends batches of mutated messages, each batch closed by a TestRequest, and checks the answers
of the batch one by one, in order, against what the protocol says:

- garbled framing (wrong CheckSum, BodyLength too short, a flipped byte, junk between messages,
  MsgType not third) -> ignored, the sequence number is not consumed;
- a well-framed message with a bad field -> Reject 35=3 with the SessionRejectReason and
  RefTagID that the data dictionary gives (the validator is the oracle), an unsupported
  application type -> BusinessMessageReject 380=3, a good order -> its echo;
- MsgSeqNum too high -> ResendRequest (answered with a gap fill, then the queued message runs);
- MsgSeqNum too low, a wrong CompID, BeginString or SendingTime -> Logout (with a Reject where
  the protocol wants one) and the end of the connection; the fuzzer logs on again.

Meanwhile the TRADER session's orders must all come back, and the acceptor must be alive and
serving both sessions at the end.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from fixgw.dictionary import DataDictionary
from fixgw.session import utc_timestamp
from fixgw.validation import validate
from tests.fixgw.rawfix_client import RawFixClient
from tests.support.at_process import AtServerProcess

TOTAL = 5000
BATCH = 50
DD = DataDictionary.builtin("FIX.4.4")
SUPPORTED = {b"D", b"d"}  # what the at-server's echo application handles


def frame(fields: list[tuple[int, bytes]], begin: bytes = b"FIX.4.4") -> bytes:
    body = b"".join(b"%d=%s\x01" % (t, v) for t, v in fields)
    head = b"8=" + begin + b"\x019=%d\x01" % len(body)
    data = head + body
    return data + b"10=%03d\x01" % (sum(data) & 0xFF)


def _config(tmp: Path, port: int) -> Path:
    cfg = tmp / "sessions.cfg"
    cfg.write_text(
        "[DEFAULT]\nConnectionType=acceptor\nSocketAcceptHost=127.0.0.1\n"
        f"SocketAcceptPort={port}\nSenderCompID=ISLD\nFileStorePath={tmp / 'store'}\n"
        "ResetOnLogon=Y\nHeartBtInt=30\nLogoutTimeout=1\nBeginString=FIX.4.4\n\n"
        "[SESSION]\nTargetCompID=FUZZ\n\n[SESSION]\nTargetCompID=TRADER\n"
    )
    return cfg


class Fuzzer:
    def __init__(self, port: int, rng: random.Random) -> None:
        self.port = port
        self.rng = rng
        self.client: RawFixClient | None = None
        self.kinds: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()
        self.n = 0
        self.logons = 0

    def connect(self) -> RawFixClient:
        if self.client is not None:
            self.client.close()
        self.client = RawFixClient(self.port, sender="FUZZ")
        self.client.logon()
        self.logons += 1
        return self.client

    def header(self, mt: bytes, seq: int) -> list[tuple[int, bytes]]:
        return [(35, mt), (49, b"FUZZ"), (56, b"ISLD"), (34, b"%d" % seq), (52, utc_timestamp(time.time()))]

    def order_body(self) -> list[tuple[int, bytes]]:
        self.n += 1
        return [(11, b"F%d" % self.n), (21, b"1"), (55, b"IBM"), (54, b"1"),
                (60, utc_timestamp(time.time(), False)), (38, b"100"), (40, b"2"), (44, b"10.5")]

    # ---- well-framed messages with an expected answer
    def field_mutation(self, seq: int) -> tuple[bytes, tuple[object, ...]]:
        r = self.rng
        mt = b"D"
        body = self.order_body()
        what = r.choice(["good", "good", "value", "drop", "dup", "unknown", "empty", "type", "move"])
        self.kinds["field:" + what] += 1
        if what == "value":
            i = r.randrange(1, len(body))  # keep 11 so echoes stay identifiable
            body[i] = (body[i][0], r.choice([b"Z", b"abc", b"-1", b"1.2.3", b"20240230-25:00:00", b"x" * 40]))
        elif what == "drop":
            del body[r.randrange(len(body))]
        elif what == "dup":
            i = r.randrange(1, len(body))
            body.insert(i + 1, body[i])
        elif what == "unknown":
            body.insert(r.randrange(len(body) + 1), (r.choice([4999, 6000, 20000, 77, 9]), b"x"))
        elif what == "empty":
            i = r.randrange(len(body))
            body[i] = (body[i][0], b"")
        elif what == "type":
            mt = r.choice([b"F", b"G", b"8", b"ZZ", b"j", b"0", b"1", b"AE", b"x"])
        elif what == "move":
            h = self.header(mt, seq)
            fields = h[:1] + body[:2] + h[1:] + body[2:]  # body fields before header fields
            return frame(fields), self.oracle(fields, mt, body)
        fields = self.header(mt, seq) + body
        return frame(fields), self.oracle(fields, mt, body)

    @staticmethod
    def oracle(fields: list[tuple[int, bytes]], mt: bytes, body: list[tuple[int, bytes]]) -> tuple[object, ...]:
        m = DD.message_b(mt)
        if m is not None and not m.is_admin and mt not in SUPPORTED:
            return ("bmr", 3)
        full = [(8, b"FIX.4.4"), (9, b"0"), *fields, (10, b"000")]
        rej = validate(DD, full)
        if rej is not None:
            return ("reject", rej.reason, rej.ref_tag)
        cid = dict(body).get(11)
        return ("echo", cid)

    # ---- garbled input: ignored
    def garbled(self, seq: int) -> bytes:
        r = self.rng
        raw = frame(self.header(b"D", seq) + self.order_body())
        what = r.choice(["checksum", "short", "flip", "junk", "order"])
        self.kinds["garbled:" + what] += 1
        if what == "checksum":
            cs = int(raw[-4:-1])
            return raw[:-4] + b"%03d\x01" % ((cs + r.randrange(1, 255)) % 256)
        if what == "short":
            i = raw.index(b"\x019=") + 3
            j = raw.index(b"\x01", i)
            n = int(raw[i:j])
            return raw[:i] + b"%d" % max(1, n - r.randrange(1, 30)) + raw[j:]
        if what == "flip":
            start = raw.index(b"\x0135=") + 1
            end = raw.rindex(b"\x0110=")
            k = r.randrange(start, end)
            new = r.choice([c for c in range(32, 127) if c != raw[k]])
            return raw[:k] + bytes([new]) + raw[k + 1:]
        if what == "junk":
            alphabet = b"abcdefghijklmnopqrstuvwxyz01234567 =\x01|"
            return bytes(r.choice(alphabet) for _ in range(r.randrange(1, 200)))
        # 35 not the third field: 8, 9, then 49 ...
        fields = self.header(b"D", seq)
        body = b"".join(b"%d=%s\x01" % f for f in fields[1:] + [(35, b"D")])
        data = b"8=FIX.4.4\x019=%d\x01" % len(body) + body
        return data + b"10=%03d\x01" % (sum(data) & 0xFF)

    # ---- the batch driver
    def run_batch(self, count: int) -> int:
        """Send up to ``count`` mutated messages; returns how many were sent."""
        c = self.client or self.connect()
        r = self.rng
        out = []
        expected: list[tuple[object, ...]] = []
        sent = 0
        while sent < count:
            p = r.random()
            if p < 0.40:
                out.append(self.garbled(c.seq))
            elif p < 0.97:
                raw, want = self.field_mutation(c.seq)
                out.append(raw)
                expected.append((c.seq, *want))
                c.seq += 1
            elif p < 0.985:
                # MsgSeqNum too high: a TestRequest ahead of time
                self.kinds["seq:too-high"] += 1
                c.send_raw(b"".join(out))
                out = []
                self.check(expected)
                expected = []
                gap = r.randrange(1, 20)
                test_id = b"HIGH%d" % self.n
                c.send("1", [(112, test_id)], seq=c.seq + gap)
                rr = c.expect("2")
                assert int(rr[7]) == c.seq and rr[16] == b"0", rr
                c.send("4", [(123, "Y"), (36, c.seq + gap)], seq=c.seq, possdup=True)
                hb = c.expect("0")
                assert hb.get(112) == test_id
                c.seq += gap + 1
                self.answers["resend-request"] += 1
            else:
                sent += 1
                c.send_raw(b"".join(out))
                out = []
                self.check(expected)
                expected = []
                self.session_ending(c)
                c = self.connect()
                continue
            sent += 1
        c.send_raw(b"".join(out))
        self.check(expected)
        return sent

    def check(self, expected: list[tuple[object, ...]]) -> None:
        """Close the batch with a TestRequest; every answer before its Heartbeat must be expected."""
        c = self.client
        assert c is not None
        test_id = b"SYNC%d" % self.n
        self.n += 1
        c.send("1", [(112, test_id)])
        got: list[tuple[object, ...]] = []
        while True:
            m = c.recv(10.0)
            assert m is not None, f"no answer (eof={c.eof}); expected {expected[len(got):][:3]}"
            mt = m.msg_type
            if mt == b"0":
                if m.get(112) == test_id:
                    break
                continue
            if mt == b"D":
                got.append((None, "echo", m[11]))  # the echo carries our ClOrdID
            elif mt == b"3":
                ref = m.get(371)
                got.append((int(m[45]), "reject", int(m[373]), int(ref) if ref is not None else None))
            elif mt == b"j":
                got.append((int(m[45]), "bmr", int(m[380])))
            else:
                raise AssertionError(f"unexpected answer {m!r}")
        want: list[tuple[object, ...]] = []
        for seq, kind, *rest in expected:
            if kind == "echo":
                want.append((None, "echo", *rest))
            else:
                want.append((seq, kind, *rest))
        assert got == want
        for g in got:
            self.answers[str(g[1])] += 1

    def session_ending(self, c: RawFixClient) -> None:
        r = self.rng
        what = r.choice(["too-low", "compid", "begin", "time"])
        self.kinds["ending:" + what] += 1
        if what == "too-low":
            c.send("0", seq=max(1, c.seq - r.randrange(1, 3)))
            logout = c.expect("5")
            assert b"MsgSeqNum too low" in (logout.get(58) or b"")
            c.wait_closed()
        elif what in ("compid", "time"):
            if what == "compid":
                c.send("D", [(11, "X"), (21, 1), (55, "IBM"), (54, 1), (60, "20240101-00:00:00"), (38, 1), (40, 1)],
                       sender=b"INTRUDER")
                reason = 9
            else:
                c.send("0", sending_time=b"20000101-00:00:00")
                reason = 10
            rej = c.expect("3")
            assert int(rej[373]) == reason
            c.expect("5")
            c.send("5")
            c.wait_closed()
        else:
            c.send_raw(frame(self.header(b"0", c.seq), begin=b"FIX.4.2"))
            c.seq += 1
            logout = c.expect("5")
            assert logout.get(58) == b"Incorrect BeginString"
            c.send("5")
            c.wait_closed()
        self.answers["logout:" + what] += 1


def trader(port: int, stop: threading.Event, result: dict[str, object]) -> None:
    try:
        c = RawFixClient(port, sender="TRADER")
        c.logon()
        n = 0
        while not stop.is_set():
            ids = []
            for _ in range(10):
                n += 1
                ids.append(b"T%d" % n)
                c.send("D", [(11, ids[-1]), (21, 1), (55, "MSFT"), (54, 2), (60, "20240101-00:00:00"), (38, 5), (40, 1)])
            got = [c.expect("D", timeout=10)[11] for _ in ids]
            assert got == ids
            result["orders"] = n
        c.send("5")
        c.expect("5")
        c.close()
        result["ok"] = True
    except BaseException as exc:  # noqa: BLE001 (handed to the main thread, which raises it)
        result["error"] = exc


@pytest.mark.timeout(180)
def test_mutated_messages_are_answered_by_the_protocol_while_another_session_trades(tmp_path: Path) -> None:
    server = AtServerProcess(None)
    server.extra = ["--config", str(_config(tmp_path, server.port))]
    server.start()
    stop = threading.Event()
    result: dict[str, object] = {}
    t = threading.Thread(target=trader, args=(server.port, stop, result), daemon=True)
    t.start()
    fz = Fuzzer(server.port, random.Random(20240601))
    try:
        sent = 0
        deadline = time.monotonic() + 150
        while sent < TOTAL:
            assert time.monotonic() < deadline, "the fuzz run took too long"
            sent += fz.run_batch(min(BATCH, TOTAL - sent))
        stop.set()
        t.join(30)
        assert "error" not in result, result.get("error")
        assert result.get("ok") is True
        assert int(str(result.get("orders", 0))) >= 10
        # every class of input was exercised, and answered
        total_kinds = sum(fz.kinds.values())
        assert total_kinds >= TOTAL
        for prefix in ("garbled:", "field:", "ending:"):
            assert sum(v for k, v in fz.kinds.items() if k.startswith(prefix)) > 0
        assert fz.kinds["seq:too-high"] == fz.answers["resend-request"] > 0
        assert fz.answers["reject"] > 100 and fz.answers["echo"] > 100 and fz.answers["bmr"] > 10
        endings = sum(v for k, v in fz.kinds.items() if k.startswith("ending:"))
        assert fz.logons == endings + 1
        # the fuzzed session still works
        c = fz.client
        assert c is not None
        c.send("D", [(11, "LAST"), (21, 1), (55, "IBM"), (54, 1), (60, "20240101-00:00:00"), (38, 1), (40, 1)])
        assert c.expect("D")[11] == b"LAST"
        assert server.alive()
    finally:
        stop.set()
        if fz.client is not None:
            fz.client.close()
        server.stop()
