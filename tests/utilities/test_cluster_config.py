from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from utilities.cluster_config import ClusterConfigError, load_cluster_config

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_local_config_loads() -> None:
    cfg = load_cluster_config(ROOT / "configs" / "local.toml")
    assert [n.name for n in cfg.nodes_with_role("customer")] == ["cfu1", "cfu2"]
    assert [n.name for n in cfg.nodes_with_role("street")] == ["ssu1", "ssu2"]
    assert [n.name for n in cfg.nodes_with_role("firm")] == ["firm"]
    assert set(cfg.venues) == {"exchange", "fund"}
    assert cfg.accounts["ACC1"].positions["AAPL"] == Decimal(1000)
    assert cfg.data_dir == ROOT / "var" / "local"
    # every node and venue serves metrics, and the dashboard has its port
    assert cfg.nodes["cfu1"].metrics_url == "http://127.0.0.1:19101/metrics"
    assert all(n.metrics_port for n in cfg.nodes.values()) and all(v.metrics_port for v in cfg.venues.values())
    assert cfg.dashboard_url == "http://127.0.0.1:19100/"


MINIMAL = """
[cluster]
name = "t"
[[nodes]]
name = "firm"
role = "firm"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "extra, needle",
    [
        ('[broker]\nport = 70000\n', "key 'broker.port': expected an integer port 1..65535, got 70000"),
        ('[broker]\nkind = "rabbit"\n', "key 'broker.kind': expected one of auto, mosquitto, amqtt, external"),
        ('[[nodes]]\nname = "x"\nrole = "king"\n', "key 'nodes[1].role': expected one of customer, street, firm"),
        ('[[accounts]]\nid = "A"\ncash = 1.5\n', "key 'accounts[0].cash': expected a decimal number written as a string"),
        ('[[customers]]\ncomp_id = "C"\naccounts = ["NOPE"]\n', "account 'NOPE', which no [[accounts]] entry defines"),
        ('[bogus]\n', "unknown key 'bogus'"),
        ('[[nodes]]\nname = "c"\nrole = "street"\nmetrics_port = "9100"\n',
         "key 'nodes[1].metrics_port': expected an integer port 1..65535, got '9100'"),
        ('[venues.x]\nkind = "exchange"\nport = 9880\nmetrics_port = 0\n',
         "key 'venues.x.metrics_port': expected an integer port 1..65535, got 0"),
    ],
)
def test_mistakes_name_file_key_and_expectation(tmp_path: Path, extra: str, needle: str) -> None:
    path = write(tmp_path, MINIMAL + extra)
    with pytest.raises(ClusterConfigError) as info:
        load_cluster_config(path)
    assert str(path) in str(info.value)
    assert needle in str(info.value)


def test_exactly_one_firm(tmp_path: Path) -> None:
    path = write(tmp_path, '[cluster]\nname = "t"\n[[nodes]]\nname = "c"\nrole = "customer"\nport = 1234\n')
    with pytest.raises(ClusterConfigError, match="exactly one node with role"):
        load_cluster_config(path)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[cluster\n")
    with pytest.raises(ClusterConfigError, match="not valid TOML"):
        load_cluster_config(path)


def test_up_refuses_ports_in_use(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = tmp_path / "c.toml"
        cfg.write_text(MINIMAL.replace('name = "t"', f'name = "t"\ndata_dir = "{tmp_path}/var"', 1)
                       + f'[broker]\nkind = "mosquitto"\nport = {port}\n')
        out = subprocess.run([sys.executable, "-m", "fixgw", "up", "--config", str(cfg)], capture_output=True,
                             text=True, timeout=60, check=False)
    assert out.returncode == 2
    assert f"broker port 127.0.0.1:{port} is already in use" in out.stderr and str(cfg) in out.stderr


def test_fix_store_sync_is_off_by_default_and_checked(tmp_path: Path) -> None:
    assert load_cluster_config(write(tmp_path, MINIMAL)).fix_store_sync is False
    on = MINIMAL.replace('name = "t"\n', 'name = "t"\nfix_store_sync = true\n', 1)
    assert load_cluster_config(write(tmp_path, on)).fix_store_sync is True
    bad = MINIMAL.replace('name = "t"\n', 'name = "t"\nfix_store_sync = "yes"\n', 1)
    path = write(tmp_path, bad)
    with pytest.raises(ClusterConfigError) as info:
        load_cluster_config(path)
    assert str(path) in str(info.value) and "key 'cluster.fix_store_sync': expected true or false" in str(info.value)
