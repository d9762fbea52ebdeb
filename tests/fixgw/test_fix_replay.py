"""``fixgw fix replay`` against the exchange simulator (``fixgw venue exchange``, a real process).

A session is recorded for real (our engine with a FileLog, client side) and then its recorded
responses are changed on purpose; replaying the client's side must report exactly those changes.
The same recording is replayed in QuickFIX's ``.messages.log`` formats (with and without times),
each as a firm of its own so that ClOrdIDs stay unique at the venue.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fixgw.application import Application
from fixgw.cli import main
from fixgw.config import SessionID, SessionSettings
from fixgw.engine import Engine
from fixgw.fixreplay import FixReplayError, delays, parse_log_line, read_log, split_session
from fixgw.message import Message
from tests.support.broker import free_port

ROOT = Path(__file__).resolve().parents[2]
GAP_S = 0.6  # recorded pause between the first two orders


@pytest.fixture(scope="module")
def exchange() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "fixgw", "venue", "exchange", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    banner = proc.stdout.readline()
    assert "listening" in banner, proc.stderr.read() if proc.stderr else ""
    try:
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


def _ts() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


class _Count(Application):
    def __init__(self) -> None:
        self.n = 0
        self.arrived = asyncio.Event()

    async def from_app(self, message: Message, session_id: SessionID) -> None:
        self.n += 1
        self.arrived.set()


async def _record(port: int, logs: Path) -> Path:
    """A real session as MYFIRM-1: two resting buys, a cancel of the first, a cancel of nothing."""
    st = SessionSettings(begin_string="FIX.4.4", sender_comp_id="MYFIRM-1", target_comp_id="EXCH",
                         connection_type="initiator", socket_connect_host="127.0.0.1", socket_connect_port=port,
                         heart_bt_int=30, reset_on_logon=True, reconnect_interval=1, file_log_path=logs)
    app = _Count()
    engine = Engine([st], app)
    await engine.start()
    try:
        await engine.wait_logged_on(st.session_id, timeout=15)

        async def answers(n: int) -> None:
            async with asyncio.timeout(15):
                while app.n < n:
                    app.arrived.clear()
                    await app.arrived.wait()

        order = [(21, "1"), (55, "IBM"), (54, "1"), (40, "2"), (59, "0")]
        engine.send_to_target(Message.new("D", [(11, "R1"), *order, (60, _ts()), (38, "50"), (44, "1.00")]),
                              st.session_id)
        await answers(1)
        await asyncio.sleep(GAP_S)
        engine.send_to_target(Message.new("D", [(11, "R2"), *order, (60, _ts()), (38, "30"), (44, "1.01")]),
                              st.session_id)
        await answers(2)
        engine.send_to_target(Message.new("F", [(41, "R1"), (11, "R3"), (55, "IBM"), (54, "1"), (60, _ts()),
                                                (38, "50")]), st.session_id)
        await answers(3)
        engine.send_to_target(Message.new("F", [(41, "NOPE"), (11, "R4"), (55, "IBM"), (54, "1"), (60, _ts()),
                                                (38, "5")]), st.session_id)
        await answers(4)
    finally:
        await engine.stop()
    return logs / "FIX.4.4-MYFIRM-1-EXCH.messages.log"


@pytest.fixture(scope="module")
def recording(exchange: int, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The recorded client-side log, with two responses changed on purpose."""
    path = asyncio.run(_record(exchange, tmp_path_factory.mktemp("fixlogs")))
    lines = path.read_text(encoding="latin-1").splitlines()
    changed = []
    for line in lines:
        if " IN " in line and "|35=8|" in line and "|11=R2|" in line:
            line = line.replace("|39=0|", "|39=1|").replace("|14=0|", "|14=10|")  # "was partly filled"
        if " IN " in line and "|35=9|" in line and "|11=R4|" in line:
            continue                                # "the venue never answered that cancel"
        changed.append(line)
    assert len(changed) == len(lines) - 1
    return changed


def _as_firm(lines: list[str], firm: str) -> list[str]:
    return [x.replace("|49=MYFIRM-1|", f"|49={firm}|").replace("|56=MYFIRM-1|", f"|56={firm}|") for x in lines]


EXPECTED = {
    ("R2", 1, "field", "OrdStatus", "1", "0"),
    ("R2", 1, "field", "CumQty", "10", "0"),
    ("R4", 1, "extra", "", None, "MsgType 9, OrdStatus 8, CxlRejResponseTo 1, CxlRejReason 1"),
}


def _replay(path: Path, port: int, firm: str, *extra: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    rc = main(["fix", "replay", str(path), "--connect", f"127.0.0.1:{port}", "--sender", firm, "--target", "EXCH",
               "--wait", "5", "--json", *extra])
    out = capsys.readouterr().out
    got: dict[str, Any] = json.loads(out)
    assert rc == (0 if got["same"] else 1)
    return got


def _diffs(got: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {(d["cl_ord_id"], d["index"], d["what"], d["field"], d["recorded"], d["replayed"])
            for d in got["differences"]}


def test_replay_reports_the_changed_responses(exchange: int, recording: list[str], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "ours.messages.log"
    log.write_text("\n".join(_as_firm(recording, "FIRMB-1")) + "\n", encoding="latin-1")
    got = _replay(log, exchange, "FIRMB-1", "--speed", "2", capsys=capsys)
    assert got["sent"] == 4 and got["recorded_responses"] == 3 and got["responses"] == 4
    assert _diffs(got) == EXPECTED
    assert got["send_seconds"] >= GAP_S / 2 * 0.95  # paced as recorded, twice as fast


@pytest.mark.parametrize("times", [True, False], ids=["quickfix-with-times", "quickfix-bare"])
def test_replay_of_quickfix_logs(exchange: int, recording: list[str], tmp_path: Path, times: bool,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    firm = "FIRMC-1" if times else "FIRMD-1"
    qf = []
    for line in _as_firm(recording, firm):
        stamp, _, msg = line.split(" ", 2)
        msg = msg.replace("|", "\x01")
        qf.append(f"{stamp[:21]} : {msg}" if times else msg)  # QuickFIX logs milliseconds
    log = tmp_path / f"FIX.4.4-{firm}-EXCH.messages.log"
    log.write_text("\n".join(qf) + "\n", encoding="latin-1")
    got = _replay(log, exchange, firm, "--speed", "0", capsys=capsys)
    assert _diffs(got) == EXPECTED


def test_human_report_and_exit_code(exchange: int, recording: list[str], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "e.messages.log"
    # only the two orders and their (unchanged) answers: the same as recorded
    kept = [x for x in _as_firm(recording, "FIRME-1") if "|11=R3|" not in x and "|11=R4|" not in x
            and "|11=R2|" not in x]
    log.write_text("\n".join(kept) + "\n", encoding="latin-1")
    rc = main(["fix", "replay", str(log), "--connect", f"127.0.0.1:{exchange}", "--sender", "FIRME-1",
               "--target", "EXCH", "--speed", "0", "--wait", "5"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.startswith("sent 1 message(s) in ")
    assert "responses: 1 recorded, 1 now" in out and out.endswith("responses are the same as recorded\n")


def test_log_formats_and_pacing() -> None:
    ours = parse_log_line("20260102-03:04:05.123456 OUT 8=FIX.4.4|9=5|35=D|49=A|56=B|11=X|10=000|", "f:1")
    qf = parse_log_line("20260102-03:04:06.123 : 8=FIX.4.4\x019=5\x0135=D\x0149=A\x0156=B\x0111=Y\x0110=000\x01",
                        "f:2")
    bare = parse_log_line("8=FIX.4.2\x019=5\x0135=D\x0149=A\x0156=B\x0111=Z\x0110=000\x01", "f:3")
    assert ours is not None and qf is not None and bare is not None
    assert ours.time == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC) and ours.message.get_str(11) == "X"
    assert qf.time == datetime(2026, 1, 2, 3, 4, 6, 123000, tzinfo=UTC) and qf.message.get_str(11) == "Y"
    assert bare.time is None and bare.message.get_str(8) == "FIX.4.2"
    assert delays([ours, qf], 1.0) == pytest.approx([0.0, 0.999544])
    assert delays([ours, qf], 4.0) == pytest.approx([0.0, 0.249886])
    assert delays([ours, qf], 0.0) == [0.0, 0.0]
    assert delays([bare, bare], 1.0) == [0.0, 0.0]  # no times: nothing paced
    assert parse_log_line("\n", "f:4") is None
    with pytest.raises(FixReplayError, match=r"f:5: not a FIX message log line"):
        parse_log_line("20260102-03:04:05 Logon received", "f:5")


def test_nothing_to_send_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "x.messages.log"
    log.write_text("20260102-03:04:05.123456 OUT 8=FIX.4.4|9=5|35=D|49=A|56=B|11=X|10=000|\n")
    with pytest.raises(FixReplayError, match=r"no application message from B to A \(the log has: A->B\)"):
        split_session(read_log(log), "B", "A", where=str(log))
    assert main(["fix", "replay", str(tmp_path / "missing.log"), "--connect", "127.0.0.1:1", "--sender", "A",
                 "--target", "B"]) == 2
    assert "missing.log: cannot read the FIX log" in capsys.readouterr().err


def test_retransmissions_count_once() -> None:
    def line(seq: int, sender: str, target: str, body: str, possdup: bool = False) -> str:
        dup = "|43=Y" if possdup else ""
        return f"20260102-03:04:0{seq}.000000 OUT 8=FIX.4.4|9=5|35={body}|49={sender}|56={target}|34={seq}{dup}|10=000|"

    logged = [parse_log_line(x, "f") for x in (
        line(1, "A", "B", "D|11=X"), line(2, "B", "A", "8|11=X|39=0"),
        line(3, "A", "B", "D|11=X", possdup=True),        # resent at the peer's request
        line(4, "B", "A", "8|11=X|39=0", possdup=True),   # a copy of what was recorded
        line(5, "B", "A", "8|11=X|39=2", possdup=True),   # resent, but only ever seen resent
    )]
    rec = split_session([x for x in logged if x is not None], "A", "B")
    assert [m.message.get_str(11) for m in rec.sent] == ["X"]
    assert [m.get_str(39) for m in rec.responses] == ["0", "2"]
