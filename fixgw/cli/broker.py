"""``fixgw broker``: the MQTT broker the cluster replicates over.

Mosquitto when it is installed (our config sets ``set_tcp_nodelay true``: without it a QoS 1
round trip costs ~88 ms of Nagle + delayed ACK); otherwise the embedded amqtt broker, run in
a process of its own so that it can be killed and restarted like mosquitto.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fixgw.cli import CliError

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next((p for p in MOSQUITTO_PATHS if os.path.exists(p)), None)


def mosquitto_conf(host: str, port: int, data_dir: Path) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    return (
        f"listener {port} {host}\n"
        "allow_anonymous true\n"
        "set_tcp_nodelay true\n"
        # queue for nodes that are away (persistent sessions); the nodes' own catch-up covers a
        # broker restart, so broker persistence is a convenience, not the durability layer
        "persistence true\n"
        f"persistence_location {data_dir}/\n"
        "max_queued_messages 100000\n"
        "max_inflight_messages 0\n"
        "log_dest stderr\n"
        "log_type error\n"
        "log_type warning\n"
    )


def start_broker_process(kind: str, host: str, port: int, data_dir: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """Start the broker as a child process; returns (what was started, the process)."""
    binary = mosquitto_binary()
    if kind == "mosquitto" and binary is None:
        raise CliError("broker.kind = 'mosquitto' but no mosquitto binary is installed (apt-get install mosquitto)")
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "broker.log", "ab")
    if kind in ("auto", "mosquitto") and binary is not None:
        conf = data_dir / "mosquitto.conf"
        conf.write_text(mosquitto_conf(host, port, data_dir))
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log, start_new_session=True)
        what = "mosquitto"
    else:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fixgw", "broker", "--host", host, "--port", str(port)],
            stdout=log, stderr=log, start_new_session=True,
        )
        what = "amqtt (embedded)"
    wait_listening(host, port, proc, what)
    return what, proc


def wait_listening(host: str, port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CliError(f"{what} exited with code {proc.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise CliError(f"{what} did not listen on {host}:{port} within {timeout:.0f}s")


async def run_amqtt(host: str, port: int) -> None:
    from amqtt.broker import Broker

    config: dict[str, Any] = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 1000}},
        "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]},
        "topic-check": {"enabled": False},
    }
    broker = Broker(config)
    await broker.start()
    print(f"fixgw broker: amqtt listening on {host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("broker", help="run the embedded MQTT broker (amqtt)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run_amqtt(args.host, args.port))
    return 0
