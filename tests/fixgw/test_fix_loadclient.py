"""``fixgw bench --connect`` against a real ``fixgw at-server`` (small, bounded run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.at_process import AtServerProcess


@pytest.mark.timeout(60)
def test_bench_connect_json_against_at_server(tmp_path: Path) -> None:
    server = AtServerProcess(tmp_path / "store").start()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "fixgw", "bench", "--connect", f"127.0.0.1:{server.port}",
             "--sender", "BENCH", "--target", "ISLD", "--orders", "2000", "--inflight", "50",
             "--seconds", "30", "--json"],
            capture_output=True, text=True, timeout=50, check=False,
        )
        assert out.returncode == 0, out.stderr
        res = json.loads(out.stdout)
        assert res["errors"] == 0 and res["answered"] == 2000
        assert res["orders_per_s"] > 100
        assert 0 < res["p50_us"] <= res["p99_us"] <= res["p999_us"]
    finally:
        server.stop()


def test_bench_connect_reports_a_refused_logon() -> None:
    server = AtServerProcess(None).start()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "fixgw", "bench", "--connect", f"127.0.0.1:{server.port}",
             "--sender", "NOBODY", "--orders", "10", "--seconds", "5"],
            capture_output=True, text=True, timeout=30, check=False,
        )
        assert out.returncode != 0
        assert "fixgw bench:" in out.stderr
    finally:
        server.stop()
