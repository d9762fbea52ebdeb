"""Where no mosquitto binary exists, ``fixgw up`` runs the embedded amqtt broker: the same
system on it, driven by the ``fixgw order`` command a user types."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cluster import Cluster

pytestmark = pytest.mark.timeout(180)


def test_cluster_on_the_embedded_amqtt_broker(tmp_path: Path) -> None:
    c = Cluster(tmp_path, broker_kind="amqtt")
    c.start()
    try:
        assert "broker amqtt on" in (tmp_path / "up.log").read_text()
        out = c.fixgw("order", "--config", str(c.config), "--node", "cfu2", "--sender", "CLIENT1",
                      "--account", "ACC1", "buy", "10", "MSFT", "--price", "450", "--wait", "30")
        assert out.returncode == 0, out.stdout + out.stderr
        lines = out.stdout.splitlines()
        assert any(line.split()[0] == "PendingNew" for line in lines[1:]), out.stdout
        final = lines[-1].split()
        assert final[0] == "Trade" and final[2] == "2", out.stdout
        st = c.fixgw("status", "--config", str(c.config))
        assert st.returncode == 0 and st.stdout.count(" ready ") == 5, st.stdout
    finally:
        c.stop()
