"""A free loopback TCP port for a listener that binds it a moment later (benches, test clusters).

Why not ``bind(("127.0.0.1", 0))`` and close, as before: the kernel takes that port from the
ephemeral range (``/proc/sys/net/ipv4/ip_local_port_range``, 32768-60999 on Debian), the same
range every *outgoing* connection's local port comes from. Between the probe and the listener's
own bind, which for a cluster is a child process started seconds later, any connection on the
machine (a node to its broker, a QuickFIX initiator, another test's cluster) may take that port
as its local end, and the listener then fails with "address in use". CI saw exactly that: a test
cluster's gateway exited 2 at start while another worker's cluster ran beside it.

So ports come from below the ephemeral range, where the kernel never picks on its own; each
process hands out a port once (a cluster asks for a dozen in a row); and concurrent processes
(pytest-xdist workers, two benches) start at different places of the band, by pid, so they meet
only after walking most of it. A port is still probed by binding it, because anything may
listen there.
"""

from __future__ import annotations

import os
import socket
import threading

# below the ephemeral range; above the well-known ports and configs/local.toml's 18830-19881
_BAND_LOW, _BAND_HIGH_DEFAULT = 20000, 32767
_handed: set[int] = set()
_lock = threading.Lock()
_next: list[int] = []


def _band() -> tuple[int, int]:
    high = _BAND_HIGH_DEFAULT
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low_ephemeral = int(f.read().split()[0])
        high = min(high, low_ephemeral - 1)
    except (OSError, ValueError, IndexError):
        pass
    if high - _BAND_LOW < 1000:   # an unusual ephemeral range: fall back to the kernel's choice
        return 0, 0
    return _BAND_LOW, high


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port nothing listens on, not handed out before by this process."""
    low, high = _band()
    if not low:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    size = high - low + 1
    with _lock:
        if not _next:
            _next.append(low + (os.getpid() * 977) % size)
        for _ in range(size):
            port = _next[0]
            _next[0] = low + (port + 1 - low) % size
            if port not in _handed and _bindable(port):
                _handed.add(port)
                return port
    raise OSError(f"no free loopback port in {low}-{high}")
