"""A node's status file is still written when its disk is full (in place, within its padding)."""

from __future__ import annotations

from pathlib import Path

from tests.support.tmpfs import fill, small_tmpfs
from utilities.node_status import read_status, status_path, write_status


def test_status_written_in_place_on_a_full_disk(tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    with small_tmpfs(mnt, "256k"):
        write_status(mnt, {"state": "ready", "degraded": None, "hwm": {"a": 1}})
        size = status_path(mnt).stat().st_size
        assert size % 4096 == 0 and read_status(mnt) == {"state": "ready", "degraded": None, "hwm": {"a": 1}}
        fill(mnt / "filler")
        status = {"state": "ready", "degraded": "record log: disk full", "hwm": {"a": 2, "b": 3}}
        write_status(mnt, status)
        assert read_status(mnt) == status
        assert status_path(mnt).stat().st_size == size and not status_path(mnt).with_suffix(".tmp").exists()
