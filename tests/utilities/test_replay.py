"""``fixgw log replay``: a node's log (real LMDB) folded as of a moment, through the CLI entry point.

One customer utility's log: the firm's ACCOUNT record, order 1 (filled 40, then 60 more) and
order 2, placed after the moment asked for. As of that moment order 1 is PartiallyFilled,
order 2 does not exist and the books hold the first fill only; at the end both are filled.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from fixgw.cli import main
from replication.archive import ArchivedRecord, archive_txns, write_day
from replication.codec import encode_record
from replication.log import RecordLog
from replication.record import Record, RecordType, Role
from tests.support.terminal import run_on_terminal
from tests.utilities.support_orderrecs import SECOND, T0, fill, rec
from utilities.books import account_record
from utilities.replay import iso_ns, replay_log

ROOT = Path(__file__).resolve().parents[2]
UNTIL = iso_ns(T0 + 3 * SECOND)  # after order 1's first fill, before its second and before order 2


def _records() -> dict[Role, list[Record]]:
    from replication.hlc import Hlc

    acct = account_record(origin="firm", seq=1, hlc=Hlc(T0 - 10 * SECOND, 0, "firm"), account="ACC1",
                          cash=Decimal(100_000), positions={"MSFT": Decimal(5)})
    o1 = "cfu1-0.1"
    o2 = "cfu1-0.2"
    customer = [
        rec(RecordType.ORDER, 0, origin="cfu1", seq=1, txn=o1, status="A"),
        rec(RecordType.ROUTED, 0.1, origin="cfu1", seq=2, txn=o1, status="A", extra={"street": "ssu1"}),
        rec(RecordType.ORDER, 10, origin="cfu1", seq=3, txn=o2, status="A", cl_ord_id="C2", symbol="IBM",
            side="2", order_qty=Decimal(10), price=Decimal("150.00")),
    ]
    street = [
        rec(RecordType.SENT, 0.2, origin="ssu1", seq=1, txn=o1, status="A"),
        rec(RecordType.VENUE_ACK, 0.3, origin="ssu1", seq=2, txn=o1, status="0"),
        fill(1, 40, "10.00", "E1", origin="ssu1", seq=3, txn=o1),
        fill(5, 60, "10.50", "E2", origin="ssu1", seq=4, txn=o1),
        rec(RecordType.VENUE_ACK, 10.3, origin="ssu1", seq=5, txn=o2, status="0", cl_ord_id="C2", symbol="IBM",
            side="2", order_qty=Decimal(10), price=Decimal("150.00")),
        fill(11, 10, "151.00", "E3", origin="ssu1", seq=6, txn=o2, cl_ord_id="C2", symbol="IBM", side="2",
             order_qty=Decimal(10), price=Decimal("150.00")),
    ]
    return {Role.FIRM: [acct], Role.CUSTOMER: customer, Role.STREET: street}


@pytest.fixture
def node_log(tmp_path: Path) -> Path:
    path = tmp_path / "cfu1"
    with RecordLog(path, node_id="cfu1", role=Role.CUSTOMER) as log, log.write() as batch:
        for role, recs in _records().items():
            out = batch.insert(role, [(r, encode_record(r)) for r in recs])
            assert not out.rejected
    return path


def _replay(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["log", "replay", *args, "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""  # no progress noise when standard error is not a terminal
    result: dict[str, object] = json.loads(out)
    return result


def test_as_of_a_moment(node_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    got = _replay(capsys, "--data", str(node_log), "--until", UNTIL)
    assert got["as_of"] == UNTIL
    orders = got["orders"]
    assert isinstance(orders, dict)
    assert set(orders) == {"cfu1-0.1"}  # order 2 was placed after the moment
    o1 = orders["cfu1-0.1"]
    assert {k: o1[k] for k in ("ord_status", "cum_qty", "leaves_qty", "avg_px", "account", "symbol", "side")} == {
        "ord_status": "1", "cum_qty": "40", "leaves_qty": "60", "avg_px": "10.00", "account": "ACC1",
        "symbol": "AAPL", "side": "1"}
    books = got["books"]
    assert isinstance(books, dict)
    assert books["ACC1"]["cash"] == "99600.00"            # 100,000 - 40 x 10.00
    assert books["ACC1"]["positions"] == {"AAPL": "40", "MSFT": "5"}
    assert got["records_used"] == 6 and got["records_read"] == 10


def test_at_the_end(node_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    got = _replay(capsys, "--data", str(node_log))
    assert got["as_of"] == iso_ns(T0 + 11 * SECOND)  # the latest record
    orders = got["orders"]
    assert isinstance(orders, dict)
    assert orders["cfu1-0.1"]["ord_status"] == "2" and orders["cfu1-0.1"]["avg_px"] == "10.30"
    assert orders["cfu1-0.2"]["ord_status"] == "2" and orders["cfu1-0.2"]["cum_qty"] == "10"
    books = got["books"]
    assert isinstance(books, dict)
    # 100,000 - 400 - 630 (order 1) + 1,510 (sold 10 IBM at 151)
    assert books["ACC1"]["cash"] == "100480.00"
    assert books["ACC1"]["positions"] == {"AAPL": "100", "IBM": "-10", "MSFT": "5"}


def test_one_order_and_one_account(node_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    got = _replay(capsys, "--data", str(node_log), "--txn", "cfu1-0.2")
    assert list(got["orders"]) == ["cfu1-0.2"]  # type: ignore[call-overload]
    assert list(got["books"]) == ["ACC1"]  # type: ignore[call-overload]
    got = _replay(capsys, "--data", str(node_log), "--account", "ACC2")
    assert got["orders"] == {} and got["books"] == {
        "ACC2": {"cash": "0", "cash_settled": "0", "buying_power": "0", "positions": {}}}
    # an order that did not exist yet is an error that says so
    assert main(["log", "replay", "--data", str(node_log), "--txn", "cfu1-0.2", "--until", UNTIL]) == 2
    assert f"no order 'cfu1-0.2' as of {UNTIL}" in capsys.readouterr().err


def test_replay_of_an_export_equals_replay_of_the_log(node_log: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "cfu1.jsonl"
    assert main(["log", "export", "--data", str(node_log), "--out", str(export)]) == 0
    capsys.readouterr()
    for until in ([], ["--until", UNTIL]):
        from_log = _replay(capsys, "--data", str(node_log), *until)
        from_export = _replay(capsys, "--from", str(export), *until)
        for k in ("source", "node", "role"):
            from_log.pop(k)
            from_export.pop(k)
        assert from_log == from_export


def _archive(path: Path, txns: list[str]) -> Path:
    with RecordLog(path) as log:
        return archive_txns(log, "cfu1", Role.CUSTOMER, dt.date(2024, 3, 5), txns).path


def test_replay_of_an_archive_equals_replay_of_the_log_before(node_log: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    before = {tuple(u): _replay(capsys, "--data", str(node_log), *u) for u in ([], ["--until", UNTIL])}
    with RecordLog(node_log, readonly=True) as log, log.reader() as r:
        txns = [t for t, _ in r.iter_by_txn()]
    with RecordLog(node_log, readonly=True) as log:  # a pass that wrote its file, then stopped
        entries = [ArchivedRecord(h, log.origin_states()[o].role, o, s, raw)
                   for h, o, s, raw in log.raw_for_txns(["cfu1-0.1"])]
    write_day(node_log, "cfu1", Role.CUSTOMER, dt.date(2024, 3, 5), entries)
    assert _replay(capsys, "--data", str(node_log), "--archives") == before[()]  # in both: counted once
    _archive(node_log, ["cfu1-0.1"])  # one order's records in the archive, the rest live
    for until, want in before.items():
        got = _replay(capsys, "--data", str(node_log), "--archives", *until)
        assert got == want  # folded together: the same orders and books
    assert set(_replay(capsys, "--data", str(node_log))["orders"]) == {"cfu1-0.2"}  # type: ignore[call-overload]
    archive = _archive(node_log, txns)  # now every record (a second pass adds to the day's file)
    assert _replay(capsys, "--data", str(node_log))["records_read"] == 0
    for until, want in before.items():
        assert _replay(capsys, "--data", str(node_log), "--archives", *until) == want
        got = _replay(capsys, "--from", str(archive), *until)
        assert got.pop("source") == str(archive) and want.pop("source") == str(node_log)
        assert got == want  # node and role come from the archive's header
    assert main(["log", "replay", "--from", str(archive), "--archives"]) == 2
    assert "--archives goes with --data" in capsys.readouterr().err
    archive.write_bytes(archive.read_bytes()[:-9])
    assert main(["log", "replay", "--from", str(archive)]) == 2
    assert f"{archive}: truncated archive" in capsys.readouterr().err


def test_human_blotter(node_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "replay", "--data", str(node_log), "--until", UNTIL]) == 0
    out = capsys.readouterr().out
    assert f"node cfu1 (customer) as of {UNTIL}: 6 of 10 records, 1 order(s)" in out
    line = next(x for x in out.splitlines() if x.startswith("cfu1-0.1"))
    assert line.split() == ["cfu1-0.1", "ACC1", "BUY", "100", "AAPL", "10.00", "PartiallyFilled", "40", "60", "10.00"]
    assert "account ACC1: cash 99600.00 (settled 100000)" in out


def test_bad_input_is_named(node_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "replay", "--data", str(node_log), "--until", "yesterday"]) == 2
    assert "--until 'yesterday': expected an ISO 8601 time" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"origin_role": "customer"}\nnot json\n')
    assert main(["log", "replay", "--from", str(bad)]) == 2
    assert f"{bad}:1: not a record of `fixgw log export`" in capsys.readouterr().err
    assert main(["log", "replay", "--data", str(tmp_path / "nothing")]) == 2
    assert "not a record log" in capsys.readouterr().err


def test_progress_only_on_a_terminal(node_log: Path) -> None:
    """On a terminal (a pty) the bar is drawn on standard error; piped, nothing but the output."""
    cmd = [sys.executable, "-m", "fixgw", "log", "replay", "--data", str(node_log)]
    piped = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert piped.returncode == 0 and piped.stderr == ""
    assert piped.stdout.startswith(f"{node_log}: node cfu1")

    rc, out, drawn = run_on_terminal(cmd)
    assert rc == 0
    assert b"replay" in drawn and b"10/10" in drawn  # rich's bar: description, done/total
    assert out == piped.stdout                        # the output itself is the same
    rc, out, drawn = run_on_terminal([*cmd, "--json"])  # --json on a terminal: no bar either
    assert rc == 0 and drawn == b""
    assert json.loads(out)["orders"]["cfu1-0.1"]["ord_status"] == "2"


def test_replay_api_counts_progress(node_log: Path) -> None:
    ticks: list[int] = []
    result = replay_log(node_log, progress=ticks.append)
    assert sum(ticks) == result.records_read == 10
