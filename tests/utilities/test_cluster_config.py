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


def test_map_size_and_limit_per_node(tmp_path: Path) -> None:
    cfg = load_cluster_config(write(tmp_path, MINIMAL))
    assert (cfg.nodes["firm"].map_size, cfg.nodes["firm"].map_limit) == (1 << 30, 64 << 30)
    text = MINIMAL.replace('name = "t"\n', 'name = "t"\nmap_size = "256MiB"\nmap_limit = "2GiB"\n', 1) + (
        '[[nodes]]\nname = "c1"\nrole = "customer"\nport = 1234\nmap_size = 1048576\nmap_limit = "8 GiB"\n'
        '[[nodes]]\nname = "c2"\nrole = "customer"\nport = 1235\n')
    cfg = load_cluster_config(write(tmp_path, text))
    assert (cfg.nodes["firm"].map_size, cfg.nodes["firm"].map_limit) == (256 << 20, 2 << 30)
    assert (cfg.nodes["c1"].map_size, cfg.nodes["c1"].map_limit) == (1 << 20, 8 << 30)
    assert (cfg.nodes["c2"].map_size, cfg.nodes["c2"].map_limit) == (256 << 20, 2 << 30)


@pytest.mark.parametrize(
    "cluster_keys, node_keys, needle",
    [
        ('map_size = "lots"\n', "", "key 'cluster.map_size': expected a size: bytes as an integer, or a string "
         + 'such as "512MiB", "4GiB" or "1TiB", got \'lots\''),
        ('map_limit = 1.5\n', "", "key 'cluster.map_limit': expected a size"),
        ('map_size = "2GiB"\nmap_limit = "1GiB"\n', "",
         "key 'cluster.map_limit': expected at least cluster.map_size (2147483648 bytes), got '1GiB'"),
        ("", 'map_size = "4GiB"\nmap_limit = "1GiB"\n',
         "key 'nodes[0].map_limit': expected at least the node's map_size (4294967296 bytes), got '1GiB'"),
        ("", "map_size = 0\n", "key 'nodes[0].map_size': expected a size"),
        ("", 'map_limit = "3 GB"\n', "key 'nodes[0].map_limit': expected a size"),
    ],
)
def test_map_size_mistakes_name_file_key_and_expectation(tmp_path: Path, cluster_keys: str, node_keys: str,
                                                         needle: str) -> None:
    text = MINIMAL.replace('name = "t"\n', 'name = "t"\n' + cluster_keys, 1) + node_keys
    path = write(tmp_path, text)
    with pytest.raises(ClusterConfigError) as info:
        load_cluster_config(path)
    assert str(path) in str(info.value) and needle in str(info.value)
