"""Start and stop ``fixgw at-server`` as a real child process (shared by the acceptance tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.broker import free_port


class AtServerProcess:
    """``python -m fixgw at-server`` on a free loopback port; waits for its 'listening' line."""

    def __init__(self, store: Path | None, extra: list[str] | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.store = store
        self.extra = extra or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.banner = b""

    def start(self, timeout: float = 30.0) -> AtServerProcess:
        cmd = [sys.executable, "-m", "fixgw", "at-server", "--port", str(self.port)]
        if self.store is None:
            cmd.append("--memory-store")
        else:
            cmd += ["--store", str(self.store)]
        cmd += self.extra
        import tempfile

        # output goes to a file, not a pipe: a pipe nobody drains would block the server
        old = getattr(self, "out_path", None)
        if old is not None:
            with contextlib.suppress(OSError):
                old.unlink()  # a restart after kill(): the previous run's output
        self.out_path = Path(tempfile.mkstemp(prefix="fixgw-at-", suffix=".out")[1])
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
            )
        deadline = time.monotonic() + timeout
        while b"listening" not in self.output():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                text = self.output().decode(errors="replace")
                self.stop()
                raise RuntimeError(f"fixgw at-server did not start: {text}")
            time.sleep(0.05)
        self.banner = self.output()
        return self

    def output(self) -> bytes:
        try:
            return self.out_path.read_bytes()
        except OSError:
            return b""

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no final flush."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        with contextlib.suppress(OSError):
            self.out_path.unlink()  # the server's output file: nothing to keep after a stop
        return self.proc.returncode

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
