"""The MQTT broker as a child process: mosquitto with the settings fixgw needs, or, where no
mosquitto binary is installed, the pure-Python amqtt broker.

One launcher for every use: ``fixgw up`` (the cluster's broker, on its configured port, with
persistence in the cluster's data directory), ``fixgw bench replication`` and the tests (a
throwaway broker on a free loopback port that a test may SIGKILL and start again).
Mosquitto does not set TCP_NODELAY by default: without it a QoS 1 round trip costs ~88 ms
of Nagle plus delayed ACK, so our config always sets ``set_tcp_nodelay true`` (asyncio, and
so amqtt, sets TCP_NODELAY on its sockets itself).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")
Kind = Literal["auto", "mosquitto", "amqtt"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or next((p for p in MOSQUITTO_PATHS if os.path.exists(p)), None)


class BrokerError(RuntimeError):
    """The broker could not be started (missing binary, port taken, early exit)."""


def mosquitto_conf(host: str, port: int, persistence_dir: Path | None) -> str:
    lines = [f"listener {port} {host}", "allow_anonymous true", "set_tcp_nodelay true"]
    if persistence_dir is None:
        lines.append("persistence false")
    else:
        # queues for nodes that are away survive a broker restart; the nodes' own catch-up
        # covers a broker that lost them, so this is a convenience, not the durability layer
        lines += ["persistence true", f"persistence_location {persistence_dir}/"]
    lines += ["max_queued_messages 100000", "max_inflight_messages 0", "log_dest stderr",
              "log_type error", "log_type warning"]
    return "\n".join(lines) + "\n"


class LocalBroker:
    """``with LocalBroker() as b: ... b.port``; ``kind`` says which broker runs.

    ``kind="auto"`` takes mosquitto when installed, else amqtt; ``"mosquitto"`` insists.
    ``data_dir`` keeps the config, the log and (with ``persistence``) the broker's queues;
    without it a temporary directory is used and removed on exit.
    """

    def __init__(self, port: int | None = None, *, host: str = "127.0.0.1", kind: Kind = "auto",
                 prefer_mosquitto: bool = True, data_dir: Path | None = None, persistence: bool = False) -> None:
        self.host = host
        self.port = port or free_port()
        self._own_dir = data_dir is None
        self.dir = Path(tempfile.mkdtemp(prefix="fixgw-broker-")) if data_dir is None else Path(data_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "broker.log"
        self.proc: subprocess.Popen[bytes] | None = None
        binary = find_mosquitto() if (kind != "amqtt" and prefer_mosquitto) else None
        if kind == "mosquitto" and binary is None:
            raise BrokerError("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.kind = "mosquitto" if binary else "amqtt"
        if binary:
            conf = self.dir / "mosquitto.conf"
            conf.write_text(mosquitto_conf(host, self.port, self.dir if persistence else None))
            self._argv = [binary, "-c", str(conf)]
        else:
            conf = self.dir / "amqtt.yaml"
            conf.write_text(
                "listeners:\n"
                "  default:\n"
                "    type: tcp\n"
                f"    bind: {host}:{self.port}\n"
                "plugins:\n"
                "  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
                "    allow_anonymous: true\n"
            )
            self._argv = [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]

    def start(self, timeout: float = 15.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            raise BrokerError(f"{self.kind} is already running")
        try:
            with socket.create_connection((self.host, self.port), timeout=0.2):
                # someone else listens there: waiting for "our" broker would find theirs
                raise BrokerError(f"{self.host}:{self.port} is already in use (another broker or cluster running?)")
        except OSError:
            pass
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            # its own process group: a Ctrl-C meant for `fixgw up` must not kill it first
            self.proc = subprocess.Popen(self._argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError(f"{self.kind} exited with code {self.proc.returncode}: "
                                  f"{self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    if self.proc.poll() is None:
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"{self.kind} did not listen on {self.host}:{self.port} within {timeout}s")

    def kill(self) -> None:
        """SIGKILL, as a crash would (queued messages without persistence are gone)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
