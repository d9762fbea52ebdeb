"""fixgw log dump / verify / export / import, through the CLI entry point, on real LMDB logs."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from fixgw.cli import main
from replication.hlc import HybridLogicalClock
from replication.log import RecordLog
from replication.record import Record, RecordType, Role


def build(path: Path, node_id: str, role: Role, own: int, copies: dict[str, tuple[Role, list[Record]]]) -> list[Record]:
    """A node's log with ``own`` own records and the given copies of others' records."""
    from replication.codec import encode_record

    mine = []
    with RecordLog(path, node_id=node_id, role=role) as log, log.write(HybridLogicalClock(node_id)) as b:
        for i in range(own):
            mine.append(b.append({"type": RecordType.ORDER, "txn": f"{node_id}-{i // 2}", "status": "new",
                                  "symbol": "IBM", "price": Decimal("10.50"), "extra": {"k": Decimal("1.0")}}).record)
        for r, recs in copies.values():
            b.insert(r, [(x, encode_record(x)) for x in recs])
    return mine


def make_cluster(tmp: Path) -> dict[str, list[Record]]:
    from replication.codec import encode_record

    recs: dict[str, list[Record]] = {}
    recs["ssu1"] = build(tmp / "ssu1", "ssu1", Role.STREET, 3, {})
    recs["cfu1"] = build(tmp / "cfu1", "cfu1", Role.CUSTOMER, 8, {"ssu1": (Role.STREET, recs["ssu1"])})
    partial = [r for r in recs["cfu1"] if not 4 <= r.seq <= 6]
    recs["cfu2"] = build(tmp / "cfu2", "cfu2", Role.CUSTOMER, 2,
                         {"cfu1": (Role.CUSTOMER, partial), "ssu1": (Role.STREET, recs["ssu1"])})
    with RecordLog(tmp / "ssu1", node_id="ssu1", role=Role.STREET) as log, log.write() as b:
        b.insert(Role.CUSTOMER, [])  # nothing: a street node holds no customer records
    with RecordLog(tmp / "cfu1", node_id="cfu1", role=Role.CUSTOMER) as log, log.write() as b:
        b.insert(Role.CUSTOMER, [(r, encode_record(r)) for r in recs["cfu2"]])
    return recs


def test_verify_reports_missing_ranges_and_import_repairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_cluster(tmp_path)
    dirs = [str(tmp_path / n) for n in ("cfu1", "cfu2", "ssu1")]
    assert main(["log", "verify", *dirs]) == 1
    out = capsys.readouterr().out
    assert "origin cfu1 (customer): DIFFERS" in out
    assert "cfu2: 5 records (hwm 3, max seq 8), expected 8 records (hwm 8, max seq 8); missing seq 4-6" in out
    assert "origin ssu1 (street): OK, 3 records on cfu1, cfu2, ssu1" in out
    assert "logs DIFFER" in out

    export = tmp_path / "cfu1.jsonl"
    assert main(["log", "export", "--data", dirs[0], "--out", str(export)]) == 0
    assert main(["log", "import", "--data", dirs[1], "--in", str(export)]) == 0
    err = capsys.readouterr().err
    assert "imported 3 new records" in err
    assert main(["log", "verify", *dirs]) == 0
    assert "logs agree" in capsys.readouterr().out
    assert main(["log", "import", "--data", dirs[1], "--in", str(export)]) == 0  # idempotent
    assert "imported 0 new records" in capsys.readouterr().err


def test_a_node_is_rebuilt_from_a_peer_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_cluster(tmp_path)
    assert main(["log", "export", "--data", str(tmp_path / "cfu1"), "--out", str(tmp_path / "e.jsonl")]) == 0
    rebuilt = tmp_path / "cfu2-rebuilt"
    # cfu1's log holds cfu2's own records too: enough to rebuild cfu2 from scratch
    assert main(["log", "import", "--data", str(rebuilt), "--node", "cfu2", "--role", "customer",
                 "--in", str(tmp_path / "e.jsonl")]) == 0
    capsys.readouterr()
    assert main(["log", "dump", "--data", str(rebuilt), "--origin", "cfu2", "--json"]) == 0
    rebuilt_lines = capsys.readouterr().out
    assert main(["log", "dump", "--data", str(tmp_path / "cfu2"), "--origin", "cfu2", "--json"]) == 0
    assert capsys.readouterr().out == rebuilt_lines
    with RecordLog(rebuilt, readonly=True) as log:
        assert log.head == 2  # the rebuilt node goes on with its own next seq


def test_dump_readable_and_json_and_filters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recs = make_cluster(tmp_path)
    assert main(["log", "dump", "--data", str(tmp_path / "cfu1"), "--txn", "cfu1-1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("cfu1#3 ") and "order new txn=cfu1-1" in lines[0]
    assert "price=10.50" in lines[0] and lines[0].endswith("[auth]")
    assert main(["log", "dump", "--data", str(tmp_path / "cfu1"), "--origin", "ssu1", "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["seq"] for r in rows] == [1, 2, 3] and rows[0]["holding"] == "read_only"
    assert rows[0]["origin_role"] == "street" and rows[0]["hlc"]["node"] == "ssu1"
    assert main(["log", "dump", "--data", str(tmp_path / "cfu1")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 8 + 2 + 3
    assert recs["cfu1"][0].extra == {"k": Decimal("1.0")}


def test_import_reports_malformed_lines_and_keeps_the_good_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_cluster(tmp_path)
    assert main(["log", "export", "--data", str(tmp_path / "ssu1"), "--out", str(tmp_path / "s.jsonl")]) == 0
    lines = (tmp_path / "s.jsonl").read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([lines[0], "{not json", json.dumps({"origin_role": "pilot"}), lines[1]]) + "\n")
    assert main(["log", "import", "--data", str(tmp_path / "new"), "--node", "ssu2", "--role", "street",
                 "--in", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "line 2: not JSON" in err and "line 3: origin_role must be" in err and "imported 2 new records" in err


def test_clear_errors_without_tracebacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "dump", "--data", str(tmp_path / "missing")]) == 2
    assert "not a record log" in capsys.readouterr().err
    assert main(["log", "import", "--data", str(tmp_path / "x"), "--in", "/dev/null"]) == 2
    assert "has no node id/role yet" in capsys.readouterr().err


def test_verify_reports_conflicts_apart_from_missing_records(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from replication.codec import encode_record

    ssu1 = build(tmp_path / "ssu1", "ssu1", Role.STREET, 4, {})
    forged = ssu1[1].replace(type=RecordType.FILL, status="filled", last_qty=Decimal(10), last_px=Decimal("0.50"))
    # cfu1: ssu1's seq 2 in a forged version (it came first), and seq 4 never arrived
    build(tmp_path / "cfu1", "cfu1", Role.CUSTOMER, 1, {"ssu1": (Role.STREET, [ssu1[0], forged, ssu1[2]])})
    with RecordLog(tmp_path / "cfu1", node_id="cfu1", role=Role.CUSTOMER) as log, log.write() as b:
        out = b.insert(Role.STREET, [(r, encode_record(r)) for r in ssu1[:3]])  # the true versions come later
    assert out.duplicates == 3 and [(c.origin, c.seq) for c in out.conflicts] == [("ssu1", 2)]
    with RecordLog(tmp_path / "cfu1", readonly=True) as log:
        assert log.get("ssu1", 2) == forged  # the first version stays
    assert main(["log", "verify", str(tmp_path / "cfu1"), str(tmp_path / "ssu1")]) == 1
    text = capsys.readouterr().out
    assert "cfu1: CONFLICT: 1 record(s) differ from ssu1's under the same key, seq 2" in text
    assert "missing seq 4" in text and "missing seq 2" not in text
    assert "1 conflicting record(s)" in text and "logs DIFFER" in text


def _complete_pair(tmp: Path) -> list[str]:
    """cfu1 and cfu2 holding every record of both and of ssu1 (a converged cluster), and ssu1."""
    from replication.codec import encode_record

    ssu1 = build(tmp / "ssu1", "ssu1", Role.STREET, 3, {})
    cfu1 = build(tmp / "cfu1", "cfu1", Role.CUSTOMER, 8, {"ssu1": (Role.STREET, ssu1)})
    cfu2 = build(tmp / "cfu2", "cfu2", Role.CUSTOMER, 2, {"cfu1": (Role.CUSTOMER, cfu1), "ssu1": (Role.STREET, ssu1)})
    with RecordLog(tmp / "cfu1", node_id="cfu1", role=Role.CUSTOMER) as log, log.write() as b:
        b.insert(Role.CUSTOMER, [(r, encode_record(r)) for r in cfu2])
    return [str(tmp / n) for n in ("cfu1", "cfu2", "ssu1")]


def _archive(path: str, txns: list[str]) -> int:
    import datetime as dt

    from replication.archive import archive_txns

    with RecordLog(path) as log:
        return archive_txns(log, log.node_id, log.role, dt.date(2026, 12, 4), txns).archived


def test_verify_counts_archived_records_as_held(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dirs = _complete_pair(tmp_path)
    # cfu2 archived cfu1's orders 0 and 1 (four cfu1 records, and cfu2-0's two of its own); cfu1 not yet
    assert _archive(dirs[1], ["cfu1-0", "cfu1-1", "cfu2-0"]) == 6
    assert main(["log", "verify", *dirs]) == 0
    out = capsys.readouterr().out
    assert "origin cfu1 (customer): OK, 8 records (4 archived on cfu2) on cfu1, cfu2" in out
    assert "origin cfu2 (customer): OK, 2 records (2 archived on cfu2) on cfu1, cfu2" in out
    assert "origin ssu1 (street): OK, 3 records on cfu1, cfu2, ssu1" in out and "logs agree" in out
    assert _archive(dirs[0], ["cfu1-0", "cfu1-1"]) == 4  # cfu1 archives the same orders
    assert main(["log", "verify", *dirs]) == 0
    assert "origin cfu1 (customer): OK, 8 records (4 archived) on cfu1, cfu2" in capsys.readouterr().out
    # a record missing on cfu2, in neither its log nor its archive: it differs, and says what is archived
    with RecordLog(dirs[1]) as log:
        assert log.remove([("cfu1", 8)]) == 1
    assert main(["log", "verify", *dirs]) == 1
    out = capsys.readouterr().out
    assert "cfu2: 7 records (4 archived, hwm 8, max seq 8), expected 8 records (4 archived, hwm 8, max seq 8); " \
           "missing seq 8" in out


def test_dump_from_an_archive_equals_the_dump_before_archiving(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    dirs = _complete_pair(tmp_path)
    cfu2 = dirs[1]
    dumps = {}
    for fmt in ([], ["--json"]):
        assert main(["log", "dump", "--data", cfu2, *fmt]) == 0
        dumps[bool(fmt)] = capsys.readouterr().out
    assert main(["log", "dump", "--data", cfu2, "--txn", "cfu1-1"]) == 0
    one_order = capsys.readouterr().out
    with RecordLog(cfu2, readonly=True) as log, log.reader() as r:
        every_txn = [t for t, _ in r.iter_by_txn()]
    assert _archive(cfu2, every_txn) == 8 + 2 + 3
    assert main(["log", "dump", "--data", cfu2]) == 0
    assert capsys.readouterr().out == ""  # the live log is empty now
    archive = str(tmp_path / "cfu2" / "archive" / "cfu2.2026-12-04.fxar")
    for fmt in ([], ["--json"]):
        assert main(["log", "dump", "--from", archive, *fmt]) == 0
        assert capsys.readouterr().out == dumps[bool(fmt)]
    assert main(["log", "dump", "--from", archive, "--txn", "cfu1-1"]) == 0
    assert capsys.readouterr().out == one_order
    # --archived: the node's archive files after its live records, marked
    assert main(["log", "dump", "--data", cfu2, "--archived", "--origin", "ssu1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(x.endswith("[ro] [archived]") for x in lines)
    assert main(["log", "dump", "--data", cfu2, "--archived", "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(rows) == 13 and all(r["archived"] is True for r in rows)
    # an export reads the same way (without holdings: an export has none)
    export = tmp_path / "cfu1.jsonl"
    assert main(["log", "export", "--data", dirs[0], "--out", str(export)]) == 0
    capsys.readouterr()
    assert main(["log", "dump", "--from", str(export), "--origin", "ssu1"]) == 0
    assert [x.split(" ")[0] for x in capsys.readouterr().out.splitlines()] == ["ssu1#1", "ssu1#2", "ssu1#3"]
    assert main(["log", "dump", "--from", str(tmp_path / "cfu1" / "data.mdb")]) == 2
    assert "neither an archive file nor an export" in capsys.readouterr().err
    assert main(["log", "dump", "--from", archive, "--archived"]) == 2
    assert "--archived goes with --data" in capsys.readouterr().err


def test_verify_accepts_a_replica_that_caught_up_over_archived_holes(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """cfu1 archived its orders 0 and 1; cfu2 then lost its log and caught up from cfu1's resend
    answers ("R": the range whole, the archived seqs absent): it never held those records, its
    high-water mark is past them, and verify says so instead of calling them missing."""
    from replication.codec import encode_record

    dirs = _complete_pair(tmp_path)
    assert _archive(dirs[0], ["cfu1-0", "cfu1-1"]) == 4
    with RecordLog(dirs[1], readonly=True) as old:
        own = [r for r in old.iter_origin("cfu2")]
        street = [r for r in old.iter_origin("ssu1")]
    with RecordLog(dirs[0], readonly=True) as origin:
        live = [r for r in origin.iter_origin("cfu1")]
    assert [r.seq for r in live] == [5, 6, 7, 8]
    fresh = tmp_path / "cfu2-again"
    with RecordLog(fresh, node_id="cfu2", role=Role.CUSTOMER) as log, log.write() as b:
        b.insert(Role.CUSTOMER, [(r, encode_record(r)) for r in own])
        b.insert(Role.STREET, [(r, encode_record(r)) for r in street])
        b.insert(Role.CUSTOMER, [(r, encode_record(r)) for r in live], complete=("cfu1", 1, 8))
    assert main(["log", "verify", dirs[0], str(fresh), dirs[2]]) == 0
    out = capsys.readouterr().out
    assert "origin cfu1 (customer): OK, 8 records (4 archived on cfu1) on cfu1, cfu2; cfu2 never held 4 of them " \
           "(archived before it caught up)" in out, out
    # one it should hold, gone: that one is missing, the archived ones still are not
    with RecordLog(fresh) as log:
        assert log.remove([("cfu1", 6)]) == 1
    assert main(["log", "verify", dirs[0], str(fresh), dirs[2]]) == 1
    out = capsys.readouterr().out
    assert "missing seq 6" in out and "missing seq 1" not in out, out


def test_log_status_finds_an_archived_order_in_its_archive_file(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    dirs = _complete_pair(tmp_path)
    assert main(["log", "status", "--data", dirs[1], "--txn", "cfu1-1", "--json"]) == 0
    live = json.loads(capsys.readouterr().out)
    assert live["archived"] is None
    assert _archive(dirs[1], ["cfu1-1"]) == 2
    assert main(["log", "status", "--data", dirs[1], "--txn", "cfu1-1", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["archived"] == str(tmp_path / "cfu2" / "archive" / "cfu2.2026-12-04.fxar")
    assert {k: v for k, v in got.items() if k != "archived"} == {k: v for k, v in live.items() if k != "archived"}
    assert main(["log", "status", "--data", dirs[1], "--txn", "cfu1-1"]) == 0
    assert "archived in" in capsys.readouterr().out
    assert main(["log", "status", "--data", dirs[1], "--txn", "nobody"]) == 2
    assert "no records of order 'nobody' (in the live log or its archive files)" in capsys.readouterr().err
