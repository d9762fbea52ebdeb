"""proccpu: utime + stime of one process from fixed /proc/PID/stat text, and differences of snapshots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fixgw import proccpu

# a real line's shape; the command name holds a space and a ')' as Linux allows
STAT = ("4242 (python ) x) S 1 4242 4242 0 -1 4194560 12345 0 0 0 "
        "731 269 0 0 20 0 5 0 123456 1000000 5000 18446744073709551615 1 1 0 0 0 0 0 16781312 2 0 0 0 17 1 0 0 0 0 0\n")


def test_parse_counts_fields_after_the_last_parenthesis() -> None:
    assert proccpu.parse_pid_stat(STAT) == 731 + 269


def test_parse_rejects_what_is_not_a_stat_line() -> None:
    with pytest.raises(ValueError):
        proccpu.parse_pid_stat("no parenthesis here")
    with pytest.raises(ValueError):
        proccpu.parse_pid_stat("1 (short) S 1 2")


def test_snapshot_reads_a_proc_tree_and_skips_the_gone(tmp_path: Path) -> None:
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "stat").write_text(STAT)
    snap = proccpu.snapshot({"cfu1": 4242, "gone": 999999}, proc=tmp_path)
    assert snap == {"cfu1": 1000 / proccpu.TICKS_PER_S}


def test_spent_is_the_difference_of_processes_in_both() -> None:
    assert proccpu.spent({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 1.5, "b": 1.0}) == {"a": 0.5, "b": 0.0}


def test_own_process_reads_on_linux() -> None:
    s = proccpu.cpu_seconds(os.getpid())
    assert s is not None and s >= 0
