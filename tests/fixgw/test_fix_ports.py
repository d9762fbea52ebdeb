"""fixgw/ports.py: a listener's port comes from below the kernel's ephemeral range, once per process."""

from __future__ import annotations

import socket

from fixgw.ports import free_port


def _ephemeral_low() -> int:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        return int(f.read().split()[0])


def test_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(1024 < p < _ephemeral_low() for p in ports), ports
    for p in ports[:5]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", p))   # nothing holds it


def test_a_port_something_listens_on_is_passed_over() -> None:
    probe = free_port()
    # the next port of the walk, taken by a listener before it is asked for
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        taken.bind(("127.0.0.1", probe + 1))
        taken.listen()
        got = free_port()
    assert got != probe + 1 and got != probe
