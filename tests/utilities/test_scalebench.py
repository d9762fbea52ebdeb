"""``fixgw bench scale``: a real log grown to N records, a real restarted customer utility."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_scale_reports_every_figure(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fixgw", "bench", "scale", "--records", "3000", "--days", "3", "--open", "50",
         "--data", str(tmp_path), "--json"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stderr == ""  # progress goes to a terminal only
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert 2900 <= r["records"] <= 3100 and r["days"] == 3 and r["open_orders"] == 50
    assert r["records_per_s"] > 0 and r["log_bytes"] > 0
    assert 20 < r["bytes_per_record"] < 1000 and r["value_bytes_per_record"] > 50
    assert r["auth_entries"] + r["ro_entries"] == r["records"] == r["by_txn_entries"]
    assert 0 < r["load_s"] < r["restart_s"] and 0 < r["restart_cpu_s"]
    assert 0 < r["anon_mb"] <= r["rss_mb"]
    # the restarted utility holds the open orders (and this last day's ClOrdIDs), nothing to route
    assert r["open_in_view"] == 50 and r["routed_pending"] == 0 and r["clordids"] >= 50
    assert r["status_queries"] == r["status_found"] == 2000
    assert 0 < r["status_p50_us"] <= r["status_p99_us"] and 0 < r["log_status_p50_us"] <= r["log_status_p99_us"]
    assert not any(tmp_path.iterdir())  # the bench removed what it wrote


def test_bench_scale_refuses_an_unbounded_run() -> None:
    out = subprocess.run([sys.executable, "-m", "fixgw", "bench", "scale", "--records", "0"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert out.returncode != 0 and "--records must be 1..100,000,000" in out.stderr
