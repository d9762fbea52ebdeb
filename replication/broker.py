"""The MQTT broker as a child process: mosquitto with the settings fixgw needs, or, where no
mosquitto binary is installed, the pure-Python amqtt broker.

One launcher for every use: ``fixgw up`` (the cluster's broker, on its configured port, with
persistence in the cluster's data directory), ``fixgw bench replication`` and the tests (a
throwaway broker on a free loopback port that a test may SIGKILL and start again).
Mosquitto does not set TCP_NODELAY by default: without it a QoS 1 round trip costs ~88 ms
of Nagle plus delayed ACK, so our config always sets ``set_tcp_nodelay true`` (asyncio, and
so amqtt, sets TCP_NODELAY on its sockets itself).

With ``access`` (:class:`replication.auth.BrokerAccess`) the broker refuses anonymous
clients and lets each user publish only the topics its grant lists; its password and ACL
files are written 0600 into the broker's directory. :meth:`LocalBroker.grant` adds users to
a running broker (mosquitto reloads them on SIGHUP), as tests with ad-hoc node names need.
Without ``access`` the broker is anonymous, as before issue 14: only for throwaway brokers
that carry nothing but a test's own traffic.
"""

from __future__ import annotations

import os
import pwd
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

from fixgw.ports import free_port
from replication.auth import BrokerAccess, BusLogin, Grant, amqtt_config, mosquitto_access_lines

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")
Kind = Literal["auto", "mosquitto", "amqtt"]


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or next((p for p in MOSQUITTO_PATHS if os.path.exists(p)), None)


class BrokerError(RuntimeError):
    """The broker could not be started (missing binary, port taken, early exit)."""


def mosquitto_conf(host: str, port: int, persistence_dir: Path | None, access_lines: list[str] | None = None) -> str:
    # started as root, mosquitto would switch to user "mosquitto", which cannot read our 0600
    # password and ACL files: it keeps running as the user that starts it, like every node
    lines = [f"listener {port} {host}", "set_tcp_nodelay true", f"user {pwd.getpwuid(os.geteuid()).pw_name}"]
    lines += access_lines if access_lines is not None else ["allow_anonymous true"]
    if persistence_dir is None:
        lines.append("persistence false")
    else:
        # queues for nodes that are away survive a broker restart; the nodes' own catch-up
        # covers a broker that lost them, so this is a convenience, not the durability layer
        lines += ["persistence true", f"persistence_location {persistence_dir}/"]
    lines += ["max_queued_messages 100000", "max_inflight_messages 0", "log_dest stderr",
              "log_type error", "log_type warning"] + ([] if access_lines is None else ["log_type notice", "log_type information"])
    return "\n".join(lines) + "\n"


class LocalBroker:
    """``with LocalBroker() as b: ... b.port``; ``kind`` says which broker runs.

    ``kind="auto"`` takes mosquitto when installed, else amqtt; ``"mosquitto"`` insists.
    ``data_dir`` keeps the config, the log and (with ``persistence``) the broker's queues;
    without it a temporary directory is used and removed on exit.
    """

    def __init__(self, port: int | None = None, *, host: str = "127.0.0.1", kind: Kind = "auto",
                 prefer_mosquitto: bool = True, data_dir: Path | None = None, persistence: bool = False,
                 access: BrokerAccess | None = None) -> None:
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
        self.access = access
        self._persistence = persistence
        self._binary = binary
        self._argv = self._write_config()

    def _write_config(self) -> list[str]:
        if self._binary:
            conf = self.dir / "mosquitto.conf"
            lines = None if self.access is None else mosquitto_access_lines(self.access, self.dir)
            conf.write_text(mosquitto_conf(self.host, self.port, self.dir if self._persistence else None, lines))
            return [self._binary, "-c", str(conf)]
        conf = self.dir / "amqtt.yaml"
        conf.write_text(amqtt_config(self.host, self.port, self.access, self.dir))
        return [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]

    def grant(self, *grants: Grant) -> list[BusLogin]:
        """Add (or replace) users of an access-controlled broker; their logins.

        A running mosquitto reloads its password and ACL files (SIGHUP; this waits until it
        has); amqtt reads them only at start, so grant before starting it.
        """
        if self.access is None:
            raise BrokerError("this broker has no access control: start it with access=BrokerAccess(...)")
        names = {g.username for g in grants}
        self.access = BrokerAccess(tuple(g for g in self.access.grants if g.username not in names) + grants,
                                   self.access.tls)
        self._argv = self._write_config()
        if self.proc is not None and self.proc.poll() is None:
            if self.kind != "mosquitto":
                raise BrokerError("amqtt reads its users only at start: grant before start()")
            self._reload()
        return [self.access.login(g.username) for g in grants]

    def _reload(self, timeout: float = 5.0) -> None:
        assert self.proc is not None
        log_size = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.proc.send_signal(signal.SIGHUP)
        # mosquitto logs the reload once done ("Reloading config."): wait for that line
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(log_size)
                if b"eloading" in f.read():
                    time.sleep(0.2)  # the line comes as the reload starts: let it finish
                    return
            time.sleep(0.01)
        raise BrokerError(f"mosquitto did not reload its users within {timeout}s")

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
