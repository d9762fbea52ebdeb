"""``python -m utilities.retentionbench`` on a small scale log: a pass archives the settled orders
before the cutoff from a copy, and the balances it carried equal the whole log's."""

from __future__ import annotations

from pathlib import Path

from replication.log import RecordLog
from utilities.retentionbench import run
from utilities.scalebench import write_history


def test_a_retention_pass_on_a_week_of_scale_orders(tmp_path: Path) -> None:
    log_dir = tmp_path / "log"
    w = write_history(log_dir, 4000, 7, 10, 60.0)
    assert w["records"] >= 3900
    with RecordLog(log_dir, readonly=True) as log:
        held = log.count()
    r = run(log_dir, keep_days=0)
    assert r["orders_archived"] > 0 and r["records_archived"] > 0
    assert r["records_after"] == r["records_before"] - r["records_archived"]
    assert r["records_scanned"] < r["records_before"]       # read up to the cutoff, not the whole log
    assert r["archive_bytes_per_record"] is not None and r["archive_bytes_per_record"] < 200
    with RecordLog(log_dir, readonly=True) as log:         # the original is untouched
        assert log.count() == held
