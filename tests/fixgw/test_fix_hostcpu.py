"""hostcpu: the machine's busy and stolen share between two /proc/stat readings."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixgw import hostcpu

# cpu user nice system idle iowait irq softirq steal guest guest_nice
STAT_A = "cpu  1000 10 200 5000 100 5 15 70 0 0\ncpu0 500 5 100 2500 50 2 8 35 0 0\nintr 1 2 3\n"
STAT_B = "cpu  1600 10 300 5200 150 5 35 170 0 0\ncpu0 800 5 150 2600 75 2 18 85 0 0\nintr 1 2 3\n"


def test_parse_sums_busy_idle_and_steal() -> None:
    t = hostcpu.parse_proc_stat(STAT_A)
    assert t == hostcpu.CpuTimes(busy=1000 + 10 + 200 + 5 + 15, idle=5000 + 100, steal=70)
    assert t.total == 1230 + 5100 + 70


def test_an_old_kernel_without_a_steal_column_reads_as_no_steal() -> None:
    assert hostcpu.parse_proc_stat("cpu 1 2 3 4 5 6 7\n") == hostcpu.CpuTimes(busy=1 + 2 + 3 + 6 + 7, idle=4 + 5, steal=0)


def test_no_aggregate_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="cpu"):
        hostcpu.parse_proc_stat("cpu0 1 2 3 4 5 6 7 8\n")


def test_usage_between_two_readings() -> None:
    a, b = hostcpu.parse_proc_stat(STAT_A), hostcpu.parse_proc_stat(STAT_B)
    # busy +720, idle +250, steal +100: 1,070 ticks in all
    assert hostcpu.usage(a, b, cpus=2) == hostcpu.HostUsage(busy_pct=67.3, steal_pct=9.3, cpus=2)


def test_usage_is_unknown_without_two_readings_or_elapsed_time() -> None:
    a = hostcpu.parse_proc_stat(STAT_A)
    assert hostcpu.usage(None, a) is None and hostcpu.usage(a, None) is None
    assert hostcpu.usage(a, a) is None


def test_read_the_real_proc_stat_or_none_where_there_is_none(tmp_path: Path) -> None:
    assert hostcpu.read(tmp_path / "missing") is None
    (tmp_path / "stat").write_text("no cpu here\n")
    assert hostcpu.read(tmp_path / "stat") is None
    now = hostcpu.read()  # this suite runs on Linux
    assert now is not None and now.total > 0
