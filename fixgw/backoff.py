"""How long to wait before starting a process again that exited on its own.

``fixgw up`` supervises its children (issue 14: a broker that died in a probe was reported once
and left dead, and every node lost its bus for good). A child that exits unexpectedly is
started again after ``initial_s``, then twice as long at each further exit, up to ``cap_s``,
so that a child that cannot start (a port taken, a broken config) does not spin the machine
and fill its log; one that then ran ``stable_s`` without exiting starts over at ``initial_s``.
The doubling and the cap are those of systemd's ``RestartSec``/``RestartSteps`` and of
Kubernetes' CrashLoopBackOff (10 s doubling to 5 min); ours are shorter because a cluster on
one machine restarts in about a second.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Backoff:
    initial_s: float = 1.0
    cap_s: float = 30.0
    stable_s: float = 60.0
    restarts: int = 0   # restarts since the child last ran stable_s

    def delay(self, ran_s: float) -> float:
        """The wait before the next start of a child that exited after running ``ran_s`` seconds."""
        if ran_s >= self.stable_s:
            self.restarts = 0
        wait = min(self.cap_s, self.initial_s * float(2 ** min(self.restarts, 30)))
        self.restarts += 1
        return wait
