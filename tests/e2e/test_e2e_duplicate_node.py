"""A second process started under a node id that already runs refuses to start, and the
running node is left alone (two processes under one id would take its MQTT session from each
other every few milliseconds)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.cluster import Cluster

pytestmark = pytest.mark.timeout(120)


def test_a_second_process_for_a_running_node_refuses_to_start(cluster: Cluster, tmp_path: Path) -> None:
    text = Path(cluster.config).read_text()
    # another data directory, as when an operator starts the node on another machine or dir
    other = re.sub(r'(?m)^data_dir = ".*"$', f'data_dir = "{tmp_path / "elsewhere"}"', text)
    assert other != text
    # with the node's own broker password, copied from the machine that ran `fixgw up`
    secret = cluster.data / "secrets" / "ssu2.password"
    other = other.replace('name = "ssu2"\nrole = "street"\n',
                          f'name = "ssu2"\nrole = "street"\npassword_file = "{secret}"\n')
    assert f'password_file = "{secret}"' in other
    cfg = tmp_path / "copy.toml"
    cfg.write_text(other)
    before = cluster.status("ssu2")
    out = cluster.fixgw("node", "--config", str(cfg), "--name", "ssu2", timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "ssu2: this node already runs (pid" in out.stdout + out.stderr
    after = cluster.status("ssu2")
    assert after["pid"] == before["pid"] and after["state"] == "ready"
    assert after.get("connected") is True
