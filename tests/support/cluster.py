"""A whole fixgw cluster in real processes for end-to-end tests: ``fixgw up`` on free ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.support.broker import free_port

ROOT = Path(__file__).resolve().parents[2]
FIXGW = [sys.executable, "-m", "fixgw"]

CONFIG = """
[cluster]
name = "e2e"
data_dir = "{data}"
heartbeat_s = 0.3
dead_after_s = 2.0
dashboard_port = {dashboard}
restart_children = {restart_children}
{cluster_extra}

[broker]
kind = "{broker_kind}"
host = "127.0.0.1"
port = {broker}
{broker_extra}

[venues.exchange]
kind = "exchange"
port = {exchange}
comp_id = "EXCH"
metrics_port = {m_exchange}

[venues.fund]
kind = "fund"
port = {fund}
comp_id = "FUND"
metrics_port = {m_fund}
day_seconds = {day_seconds}

[[nodes]]
name = "cfu1"
role = "customer"
port = {cfu1}
metrics_port = {m_cfu1}

[[nodes]]
name = "cfu2"
role = "customer"
port = {cfu2}
metrics_port = {m_cfu2}

[[nodes]]
name = "ssu1"
role = "street"
metrics_port = {m_ssu1}

[[nodes]]
name = "ssu2"
role = "street"
metrics_port = {m_ssu2}

[[nodes]]
name = "firm"
role = "firm"
metrics_port = {m_firm}

[[customers]]
comp_id = "CLIENT1"
accounts = ["ACC1"]

[[customers]]
comp_id = "CLIENT2"
accounts = ["ACC2"]

[[customers]]
comp_id = "SLOW1"
accounts = ["SLOWACC"]
max_messages_per_s = 5

[[customers]]
comp_id = "BENCH1"
accounts = ["BENCH"]

[[customers]]
comp_id = "BENCH2"
accounts = ["BENCH"]

[[accounts]]
id = "ACC1"
cash = "1000000"
positions = {{ AAPL = "1000", MSFT = "500" }}

[[accounts]]
id = "ACC2"
cash = "500000"
positions = {{ IBM = "300" }}

[[accounts]]
id = "SLOWACC"
cash = "1000000"

[[accounts]]
id = "BENCH"
cash = "1000000000"
positions = {{ AAPL = "1000000", MSFT = "1000000" }}
"""


GATEWAY = """
[[gateways]]
name = "{name}"
port = {port}
metrics_port = {mport}
logon_timeout_s = 3
max_logon_bytes = 1024
"""


class Cluster:
    """``restart_children``: ``fixgw up`` supervises (off by default here: most tests kill
    processes on purpose and start them again by hand).
    ``gateways``: names of gateways (``fixgw gateway``) to run in front of cfu1 and cfu2; their
    ports are in ``ports`` under their names. ``gateway_extra``: TOML lines added to a gateway's table.
    ``cluster_extra``: TOML lines added to the ``[cluster]`` table."""

    def __init__(self, base: Path, *, day_seconds: float = 3.0, broker_kind: str = "mosquitto",
                 gateways: tuple[str, ...] = (), gateway_extra: Mapping[str, str] | None = None,
                 broker_extra: str = "", restart_children: bool = False, cluster_extra: str = "") -> None:
        self.base = base
        self.data = base / "var"
        self.ports = {k: free_port() for k in ("broker", "exchange", "fund", "cfu1", "cfu2", "dashboard", "m_exchange",
                                               "m_fund", "m_cfu1", "m_cfu2", "m_ssu1", "m_ssu2", "m_firm",
                                               *gateways, *(f"m_{g}" for g in gateways))}
        self.config = base / "cluster.toml"
        gateway_keys = {*gateways, *(f"m_{g}" for g in gateways)}
        text = CONFIG.format(data=self.data, day_seconds=day_seconds, broker_kind=broker_kind,
                             restart_children="true" if restart_children else "false",
                             broker_extra=broker_extra, cluster_extra=cluster_extra,
                             **{k: v for k, v in self.ports.items() if k not in gateway_keys})
        for g in gateways:
            text += GATEWAY.format(name=g, port=self.ports[g], mport=self.ports[f"m_{g}"]) + (gateway_extra or {}).get(g, "")
        self.config.write_text(text)
        self.up: subprocess.Popen[bytes] | None = None
        self.extra: list[subprocess.Popen[bytes]] = []

    def start(self, timeout: float = 60.0) -> None:
        self.out = open(self.base / "up.log", "wb")  # noqa: SIM115 (the child writes it until close())
        self.up = subprocess.Popen(FIXGW + ["up", "--config", str(self.config)], stdout=self.out,
                                   stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = (self.base / "up.log").read_text()
            if "fixgw: ready" in text:
                return
            if self.up.poll() is not None:
                raise RuntimeError(f"fixgw up exited {self.up.returncode}:\n{text}")
            time.sleep(0.1)
        raise RuntimeError("fixgw up did not get ready:\n" + (self.base / "up.log").read_text())

    def gateway_status(self, name: str) -> dict[str, Any]:
        st: dict[str, Any] = json.loads((self.data / name / "status.json").read_text())
        return st

    def status(self, node: str) -> dict[str, Any]:
        st: dict[str, Any] = json.loads((self.data / node / "status.json").read_text())
        return st

    def pid(self, node: str) -> int:
        return int(self.status(node)["pid"])

    def kill(self, node: str) -> None:
        os.kill(self.pid(node), signal.SIGKILL)

    def start_node(self, node: str) -> subprocess.Popen[bytes]:
        """Start a node again by hand (after a kill), as an operator would."""
        log = open(self.base / f"{node}.restart.log", "ab")  # noqa: SIM115 (the node writes it)
        p = subprocess.Popen(FIXGW + ["node", "--config", str(self.config), "--name", node], stdout=log,
                             stderr=subprocess.STDOUT, cwd=ROOT)
        self.extra.append(p)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                st = self.status(node)
                if st.get("pid") == p.pid and st.get("state") == "ready":
                    return p
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{node} did not restart")

    def fixgw(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(FIXGW + list(args), capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              check=False)

    def node_dirs(self, *names: str) -> list[str]:
        return [str(self.data / n / "log") for n in names]

    def stop(self) -> None:
        for p in self.extra:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        if self.up is not None and self.up.poll() is None:
            self.up.send_signal(signal.SIGTERM)
            try:
                self.up.wait(20)
            except subprocess.TimeoutExpired:
                self.up.kill()
        for p in self.extra:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
