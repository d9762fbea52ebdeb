"""Run a command with its standard error on a pseudo-terminal (what a person at a terminal sees)."""

from __future__ import annotations

import os
import pty
import subprocess
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_on_terminal(cmd: list[str], *, timeout: float = 120) -> tuple[int, str, bytes]:
    """(exit code, standard output (a pipe), what was drawn on the terminal (standard error))."""
    leader, follower = pty.openpty()
    drawn = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other end is closed and everything read
                return
            if not chunk:
                return
            drawn.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(cmd, check=False, stdout=subprocess.PIPE, stderr=follower, cwd=ROOT,
                              timeout=timeout, env={**os.environ, "COLUMNS": "120"})
    finally:
        os.close(follower)
        reader.join(10)
        os.close(leader)
    return proc.returncode, proc.stdout.decode(), bytes(drawn)
