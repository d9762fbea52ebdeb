"""Progress on the long commands: drawn on a terminal, never in piped or ``--json`` output."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from replication.hlc import HybridLogicalClock
from replication.log import RecordLog
from replication.record import RecordType, Role
from tests.support.terminal import ROOT, run_on_terminal

FIXGW = [sys.executable, "-m", "fixgw"]


def _log(path: Path, n: int) -> None:
    with RecordLog(path, node_id="cfu1", role=Role.CUSTOMER) as log, log.write(HybridLogicalClock("cfu1")) as b:
        for i in range(n):
            b.append({"type": RecordType.ORDER, "txn": f"cfu1-0.{i}", "status": "A", "account": "ACC1",
                      "symbol": "IBM", "side": "1", "order_qty": Decimal(10), "price": Decimal("1.00")})


def test_export_and_import(tmp_path: Path) -> None:
    _log(tmp_path / "a", 5000)
    out = tmp_path / "a.jsonl"
    export = [*FIXGW, "log", "export", "--data", str(tmp_path / "a"), "--out", str(out)]
    piped = subprocess.run(export, check=False, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert piped.returncode == 0 and piped.stderr == "exported 5000 records\n"  # nothing else
    rc, _, drawn = run_on_terminal(export)
    assert rc == 0 and b"export" in drawn and b"5000/5000" in drawn

    imp = [*FIXGW, "log", "import", "--data", str(tmp_path / "b"), "--node", "cfu1", "--role", "customer",
           "--in", str(out)]
    piped = subprocess.run(imp, check=False, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert piped.returncode == 0
    assert piped.stderr == "imported 5000 new records, 0 already present, 0 not held by this node's role\n"
    rc, _, drawn = run_on_terminal(imp)
    size = out.stat().st_size
    assert rc == 0 and b"import" in drawn and f"{size}/{size}".encode() in drawn


def test_benches(tmp_path: Path) -> None:
    replay = [*FIXGW, "bench", "replay", "--records", "2000", "--data", str(tmp_path)]
    piped = subprocess.run([*replay, "--json"], check=False, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert piped.returncode == 0 and piped.stderr == ""
    got = json.loads(piped.stdout)
    assert got["records"] == 1999 and got["orders"] == 399 and got["replay_records_per_s"] > 0
    rc, out, drawn = run_on_terminal(replay)
    assert rc == 0 and "records/s" in out
    assert b"building the log" in drawn and b"replay --until" in drawn and b"1999/1999" in drawn

    matching = [*FIXGW, "bench", "matching", "--orders", "2000", "--seconds", "2"]
    piped = subprocess.run(matching, check=False, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert piped.returncode == 0 and piped.stderr == ""
    rc, out, drawn = run_on_terminal(matching)
    assert rc == 0 and out.strip()
    assert b"fixgw bench matching" in drawn  # the spinner's line while it ran
    rc, out, drawn = run_on_terminal([*matching, "--json"])
    assert rc == 0 and drawn == b"" and json.loads(out)
