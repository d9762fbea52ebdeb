"""A throwaway local MQTT broker for benchmarks and demos: mosquitto on a free loopback
port with the settings fixgw needs (TCP_NODELAY, no persistence), or, when no mosquitto
binary is installed, the pure-Python amqtt broker in a subprocess."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or next((p for p in MOSQUITTO_PATHS if os.path.exists(p)), None)


class LocalBroker:
    """``with LocalBroker() as b: ... b.port``; ``kind`` says which broker runs."""

    def __init__(self, port: int | None = None, *, prefer_mosquitto: bool = True) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="fixgw-broker-"))
        self._proc: subprocess.Popen[bytes] | None = None
        binary = find_mosquitto() if prefer_mosquitto else None
        self.kind = "mosquitto" if binary else "amqtt"
        if binary:
            conf = self._dir / "mosquitto.conf"
            conf.write_text(
                f"listener {self.port} 127.0.0.1\n"
                "allow_anonymous true\n"
                "persistence false\n"
                "set_tcp_nodelay true\n"
                "max_queued_messages 100000\n"
                "max_inflight_messages 0\n"
                "log_dest stderr\n"
                "log_type error\n"
            )
            self._argv = [binary, "-c", str(conf)]
        else:
            conf = self._dir / "amqtt.yaml"
            conf.write_text(
                "listeners:\n"
                "  default:\n"
                "    type: tcp\n"
                f"    bind: 127.0.0.1:{self.port}\n"
                "plugins:\n"
                "  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
                "    allow_anonymous: true\n"
            )
            self._argv = [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]

    def start(self, timeout: float = 15.0) -> None:
        with open(self._dir / "broker.log", "ab") as log:  # the child keeps its own descriptor
            self._proc = subprocess.Popen(self._argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited: {(self._dir / 'broker.log').read_text()[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.kind} did not listen on {self.host}:{self.port} within {timeout}s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
