"""How busy the whole machine was during a measurement, from Linux's ``/proc/stat``.

A latency figure taken on a shared virtual machine means little without it: when the
hypervisor gives the CPUs to someone else (steal time) or every core is already busy, each
process waits in the run queue and every percentile grows with it. The benches print these
figures beside their own, so two runs can be compared, or a run set aside.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """The machine's cumulative CPU time in clock ticks, summed over all CPUs."""

    busy: int       # user + nice + system + irq + softirq (guest time is inside user)
    idle: int       # idle + iowait
    steal: int      # taken by the hypervisor for other guests

    @property
    def total(self) -> int:
        return self.busy + self.idle + self.steal


@dataclass(frozen=True, slots=True)
class HostUsage:
    """The share of all CPUs' time between two readings, in percent."""

    busy_pct: float
    steal_pct: float
    cpus: int


def parse_proc_stat(text: str) -> CpuTimes:
    """The aggregate ``cpu`` line of ``/proc/stat``; ValueError if there is none."""
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            v = [int(x) for x in parts[1:9]]
            v += [0] * (8 - len(v))  # kernels before 2.6.11 have no steal column
            user, nice, system, idle, iowait, irq, softirq, steal = v
            return CpuTimes(busy=user + nice + system + irq + softirq, idle=idle + iowait, steal=steal)
    raise ValueError("no aggregate 'cpu' line in /proc/stat")


def read(path: Path = PROC_STAT) -> CpuTimes | None:
    """Now; None where there is no readable ``/proc/stat`` (not Linux)."""
    try:
        return parse_proc_stat(path.read_text())
    except (OSError, ValueError):
        return None


def usage(before: CpuTimes | None, after: CpuTimes | None, cpus: int | None = None) -> HostUsage | None:
    """The machine's use between two readings; None if either is missing or no time passed."""
    if before is None or after is None:
        return None
    total = after.total - before.total
    if total <= 0:
        return None
    return HostUsage(busy_pct=round(100 * (after.busy - before.busy) / total, 1),
                     steal_pct=round(100 * (after.steal - before.steal) / total, 1),
                     cpus=cpus or os.cpu_count() or 1)
