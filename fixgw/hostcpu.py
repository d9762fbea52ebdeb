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


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name (which may hold spaces); None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def parent_of(pid: int) -> int | None:
    f = _stat_fields(pid)
    return int(f[1]) if f else None


def children_of(ppid: int) -> list[int]:
    """The processes whose parent is ``ppid`` (Linux; empty elsewhere)."""
    out = []
    for d in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if d.name.isdigit():
            f = _stat_fields(int(d.name))
            if f is not None and int(f[1]) == ppid:
                out.append(int(d.name))
    return sorted(out)


def process_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far, in seconds (a process that is
    gone counts 0: compare readings of the same live set)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        f = _stat_fields(pid)
        if f is not None:
            total += int(f[11]) + int(f[12])   # utime, stime (fields 14 and 15 of stat)
    return total / tick
