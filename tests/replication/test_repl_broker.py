"""The broker config we ship, and the throwaway brokers of the bench (mosquitto and amqtt)."""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import subprocess
import time
from pathlib import Path

import pytest

from fixgw.ports import free_port
from replication.auth import (
    BrokerAccess,
    monitor_grant,
    mosquitto_acl,
    mosquitto_password_file,
    new_password,
    node_grant,
    write_private,
)
from replication.broker import LocalBroker, find_mosquitto
from replication.node import ReplicationNode
from replication.record import RecordType, Role

CONF = Path(__file__).resolve().parents[2] / "configs" / "mosquitto.conf"


ACCESS = BrokerAccess((node_grant("b", "c1", Role.CUSTOMER, new_password()),
                       node_grant("b", "f1", Role.FIRM, new_password()), monitor_grant("b", new_password())))


async def _replicate_through(port: int, tmp: Path, access: BrokerAccess = ACCESS) -> None:
    async with ReplicationNode(node_id="c1", role=Role.CUSTOMER, cluster="b", data_dir=tmp / "c1",
                               broker_port=port, digest_interval=0.2, login=access.login("c1")) as a, \
            ReplicationNode(node_id="f1", role=Role.FIRM, cluster="b", data_dir=tmp / "f1",
                            broker_port=port, digest_interval=0.2, login=access.login("f1")) as f:
        await a.wait_connected(10)
        await f.wait_connected(10)
        for i in range(20):
            await a.append(type=RecordType.ORDER, txn=f"t{i}", status="new")
        deadline = time.monotonic() + 15
        while f.log.high_water_marks().get("c1", 0) < 20:
            assert time.monotonic() < deadline, "no replication through the broker"
            await asyncio.sleep(0.02)


def test_shipped_config_sets_nodelay_and_is_accepted_by_mosquitto(tmp_path: Path) -> None:
    text = CONF.read_text()
    assert re.search(r"^set_tcp_nodelay true$", text, re.MULTILINE)
    assert re.search(r"^persistence false$", text, re.MULTILINE)
    assert re.search(r"^allow_anonymous false$", text, re.MULTILINE)
    # the files `fixgw up` writes, where the shipped config expects them
    write_private(tmp_path / "passwords", mosquitto_password_file(ACCESS.grants))
    write_private(tmp_path / "acl", mosquitto_acl(ACCESS.grants))
    text = re.sub(r"^password_file .*$", f"password_file {tmp_path / 'passwords'}", text, flags=re.MULTILINE)
    text = re.sub(r"^acl_file .*$", f"acl_file {tmp_path / 'acl'}", text, flags=re.MULTILINE)
    text += f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"  # as root mosquitto would drop to "mosquitto"
    binary = find_mosquitto()
    assert binary is not None, "mosquitto is needed for the integration tests"
    port = free_port()
    conf = tmp_path / "m.conf"
    conf.write_text(re.sub(r"^listener \d+ ", f"listener {port} ", text, flags=re.MULTILINE))
    proc = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        asyncio.run(_replicate_through(port, tmp_path))
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("prefer_mosquitto", [True, False], ids=["mosquitto", "amqtt-fallback"])
async def test_local_broker_carries_replication(tmp_path: Path, prefer_mosquitto: bool) -> None:
    with LocalBroker(prefer_mosquitto=prefer_mosquitto, access=ACCESS) as broker:
        assert broker.kind == ("mosquitto" if prefer_mosquitto else "amqtt")
        await _replicate_through(broker.port, tmp_path)
