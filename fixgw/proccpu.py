"""The CPU time one process has used, from Linux's ``/proc/PID/stat`` (utime + stime).

``hostcpu`` says how busy the whole machine was; this says which process of the cluster spent
it. Issue 13 measured the cluster at 9.1 ms of CPU per order at 100 orders/s against a floor
of about 0.4 ms from its parts: only a per-process figure shows where the rest goes (each
customer utility 1.95 ms, each street utility 1.49 ms, the firm 1.23 ms, mosquitto 0.50 ms).
The reading is two integers from one small file, cheap enough to take before and after a load.
"""

from __future__ import annotations

import os
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_pid_stat(text: str) -> int:
    """utime + stime, in clock ticks, of one ``/proc/PID/stat`` line; ValueError if malformed.

    The command name (field 2) is in parentheses and may itself hold spaces or parentheses,
    so the fields are counted from the last ``)``: utime and stime are fields 14 and 15."""
    _head, sep, tail = text.rpartition(")")
    fields = tail.split()
    if not sep or len(fields) < 13:
        raise ValueError(f"not a /proc/PID/stat line: {text[:80]!r}")
    return int(fields[11]) + int(fields[12])


def cpu_seconds(pid: int, proc: Path = Path("/proc")) -> float | None:
    """The CPU seconds ``pid`` has used so far; None when it is gone or unreadable (not Linux)."""
    try:
        return parse_pid_stat((proc / str(pid) / "stat").read_text()) / TICKS_PER_S
    except (OSError, ValueError):
        return None


def snapshot(pids: dict[str, int], proc: Path = Path("/proc")) -> dict[str, float]:
    """The CPU seconds of each named process that can be read now."""
    out: dict[str, float] = {}
    for name, pid in pids.items():
        s = cpu_seconds(pid, proc)
        if s is not None:
            out[name] = s
    return out


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """The CPU seconds each process spent between two snapshots (those in both; never negative)."""
    return {name: max(0.0, after[name] - before[name]) for name in before if name in after}
