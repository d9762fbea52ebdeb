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
        ('[[accounts]]\nid = "A"\ncash = "1"\n[[customers]]\ncomp_id = "C"\naccounts = ["A"]\nmax_messages_per_s = 0\n',
         "key 'customers[0].max_messages_per_s': expected a number of messages per second > 0, got 0"),
        ('[[accounts]]\nid = "A"\ncash = "1"\n[[customers]]\ncomp_id = "C"\naccounts = ["A"]\nmax_messages_per_s = "5"\n',
         "key 'customers[0].max_messages_per_s': expected a number of messages per second > 0, got '5'"),
        ('[[nodes]]\nname = "c"\nrole = "street"\nmetrics_port = "9100"\n',
         "key 'nodes[1].metrics_port': expected an integer port 1..65535, got '9100'"),
        ('[venues.x]\nkind = "exchange"\nport = 9880\nmetrics_port = 0\n',
         "key 'venues.x.metrics_port': expected an integer port 1..65535, got 0"),
        ('[broker]\ntls = true\nauth = false\n', "key 'broker.auth': expected true when broker.tls = true"),
        ('[broker]\nauth = "yes"\n', "key 'broker.auth': expected true or false, got 'yes'"),
        ('[[nodes]]\nname = "monitor"\nrole = "street"\n', "key 'nodes[1].name': expected a name other than 'monitor'"),
        ('[[nodes]]\nname = "s"\nrole = "street"\npassword_file = 3\n', "key 'nodes[1].password_file': expected a non-empty"),
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


def test_up_restarts_children_unless_told_not_to(tmp_path: Path) -> None:
    assert load_cluster_config(write(tmp_path, MINIMAL)).restart_children is True
    off = MINIMAL.replace('name = "t"\n', 'name = "t"\nrestart_children = false\n', 1)
    assert load_cluster_config(write(tmp_path, off)).restart_children is False
    path = write(tmp_path, MINIMAL.replace('name = "t"\n', 'name = "t"\nrestart_children = 1\n', 1))
    with pytest.raises(ClusterConfigError) as info:
        load_cluster_config(path)
    assert str(path) in str(info.value) and "key 'cluster.restart_children': expected true or false, got 1" in str(info.value)


def test_shipped_local_config_has_gateway_gw1_on_19000() -> None:
    cfg = load_cluster_config(ROOT / "configs" / "local.toml")
    gw = cfg.gateway(None)
    assert (gw.name, gw.host, gw.port, gw.tls_cert) == ("gw1", "127.0.0.1", 19000, None)
    assert gw.metrics_url == "http://127.0.0.1:19190/metrics"
    assert gw.logon_timeout_s > 0 and gw.max_logon_bytes >= 64


WITH_CUSTOMER = MINIMAL + '[[nodes]]\nname = "cfu1"\nrole = "customer"\nport = 1234\n'


def test_gateways_parse_with_defaults_and_tls_paths_relative_to_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, WITH_CUSTOMER + '[[gateways]]\nname = "gwa"\nport = 2000\n'
                 '[[gateways]]\nname = "gwb"\nport = 2001\ntls_cert = "c.pem"\ntls_key = "k.pem"\n'
                 'logon_timeout_s = 2.5\nmax_logon_bytes = 512\n')
    cfg = load_cluster_config(path)
    a, b = cfg.gateway("gwa"), cfg.gateway("gwb")
    assert (a.port, a.tls_cert, a.tls_key, a.logon_timeout_s, a.max_logon_bytes) == (2000, None, None, 10.0, 4096)
    assert (b.tls_cert, b.tls_key) == (tmp_path / "c.pem", tmp_path / "k.pem")
    assert (b.logon_timeout_s, b.max_logon_bytes) == (2.5, 512)
    with pytest.raises(ClusterConfigError, match="exactly one \\[\\[gateways\\]\\] entry"):
        cfg.gateway(None)
    with pytest.raises(ClusterConfigError, match="no gateway named 'gwc'"):
        cfg.gateway("gwc")


@pytest.mark.parametrize(
    "gateway, needle",
    [
        ('name = "gw"\n', "key 'gateways[0].port': expected an integer port 1..65535"),
        ('name = "gw"\nport = 2000\ntls_cert = "c.pem"\n', "key 'gateways[0].tls_key': expected a file path"),
        ('name = "gw"\nport = 2000\ntls_key = "k.pem"\n', "key 'gateways[0].tls_cert': expected a file path"),
        ('name = "gw"\nport = 2000\nlogon_timeout_s = 0\n', "key 'gateways[0].logon_timeout_s': expected a number"),
        ('name = "gw"\nport = 2000\nlogon_timeout_s = "5"\n', "key 'gateways[0].logon_timeout_s': expected"),
        ('name = "gw"\nport = 2000\nmax_logon_bytes = 10\n',
         "key 'gateways[0].max_logon_bytes': expected an integer number of bytes 64..1048576, got 10"),
        ('name = "cfu1"\nport = 2000\n', "key 'gateways[0].name': expected a name used by no other"),
        ('name = "gw"\nport = 2000\ncolour = "red"\n', "unknown key 'gateways[0].colour'"),
        ('name = "gw"\nport = 2000\nmetrics_port = 99999\n',
         "key 'gateways[0].metrics_port': expected an integer port 1..65535, got 99999"),
    ],
)
def test_gateway_mistakes_name_file_key_and_expectation(tmp_path: Path, gateway: str, needle: str) -> None:
    path = write(tmp_path, WITH_CUSTOMER + "[[gateways]]\n" + gateway)
    with pytest.raises(ClusterConfigError) as info:
        load_cluster_config(path)
    assert str(path) in str(info.value) and needle in str(info.value)


def test_a_gateway_needs_customer_utilities(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '[[gateways]]\nname = "gw"\nport = 2000\n')
    with pytest.raises(ClusterConfigError, match="key 'gateways': expected customer utilities"):
        load_cluster_config(path)

def test_bus_secrets_are_made_once_0600_and_a_missing_one_is_named(tmp_path: Path) -> None:
    import os
    import stat

    from replication.auth import AuthError
    from utilities.bus_access import cluster_access, monitor_login, node_login

    path = write(tmp_path, MINIMAL.replace('name = "t"', f'name = "t"\ndata_dir = "{tmp_path / "var"}"') +
                 '[[nodes]]\nname = "s1"\nrole = "street"\npassword_file = "s1.secret"\n'
                 '[[nodes]]\nname = "c1"\nrole = "customer"\nport = 19999\n')
    cfg = load_cluster_config(path)
    with pytest.raises(AuthError) as info:
        node_login(cfg, cfg.node("c1"))
    assert str(tmp_path / "var" / "secrets" / "c1.password") in str(info.value) and str(path) in str(info.value)
    access = cluster_access(cfg)
    assert {g.username for g in access.grants} == {"firm", "s1", "c1", "monitor"}
    for f in [tmp_path / "s1.secret", *(tmp_path / "var" / "secrets").iterdir()]:
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f
    assert stat.S_IMODE(os.stat(tmp_path / "var" / "secrets").st_mode) == 0o700
    login = node_login(cfg, cfg.node("s1"))
    assert login is not None and login.password == (tmp_path / "s1.secret").read_text().strip()
    assert cluster_access(cfg).login("s1").password == login.password  # kept across runs
    c1 = next(g for g in access.grants if g.username == "c1")
    assert "fixgw/t/cmd/s1" in c1.publish and "fixgw/t/alive/customer/c1" in c1.publish
    assert "fixgw/t/rec/customer/c1" in c1.publish and "fixgw/t/req/+/c1" in c1.publish
    # market data: only a street publishes quotes (under its own name), only a customer utility interest
    s1 = next(g for g in access.grants if g.username == "s1")
    assert "fixgw/t/quote/s1" in s1.publish and "fixgw/t/mdwant/c1" in c1.publish
    assert not [t for t in c1.publish if "/quote/" in t] and not [t for t in s1.publish if "/mdwant/" in t]
    assert next(g for g in access.grants if g.username == "monitor").publish == ()
    assert monitor_login(cfg) is not None and login.ca_file is None


def test_in_flight_bounds_and_behind_threshold(tmp_path: Path) -> None:
    # backpressure and lag (issue 19): defaults bound the default cluster; a customer may override
    cfg = load_cluster_config(ROOT / "configs" / "local.toml")
    lim = cfg.in_flight_limits()
    assert (lim.total, lim.per_session, lim.policy) == (500, 250, "pause") and cfg.behind_after_s == 5.0
    text = ('[cluster]\nname = "t"\nmax_in_flight = 40\nmax_in_flight_per_session = 10\nin_flight_policy = "reject"\n'
            'behind_after_s = 2.5\n[[nodes]]\nname = "firm"\nrole = "firm"\n[[accounts]]\nid = "A"\ncash = "1"\n'
            '[[customers]]\ncomp_id = "C"\naccounts = ["A"]\nmax_in_flight = 3\nin_flight_policy = "pause"\n'
            '[[customers]]\ncomp_id = "D"\naccounts = ["A"]\n')
    cfg = load_cluster_config(write(tmp_path, text))
    lim = cfg.in_flight_limits()
    assert (lim.total, lim.per_session, lim.policy, cfg.behind_after_s) == (40, 10, "reject", 2.5)
    assert lim.customer_bounds == {"C": 3} and lim.policy_of("C") == "pause" and lim.policy_of("D") == "reject"


@pytest.mark.parametrize(
    "cluster_line, customer_line, needle",
    [
        ("max_in_flight = 0", "", "key 'cluster.max_in_flight': expected a whole number of orders >= 1, got 0"),
        ('max_in_flight_per_session = "9"', "", "key 'cluster.max_in_flight_per_session': expected a whole number"),
        ('in_flight_policy = "drop"', "", """key 'cluster.in_flight_policy': expected one of "pause", "reject", got 'drop'"""),
        ("behind_after_s = 0", "", "key 'cluster.behind_after_s': expected a number of seconds > 0, got 0"),
        ("snapshot_every_records = -5", "", ("key 'cluster.snapshot_every_records': expected a whole number of "
         "records >= 0 (0: a snapshot only at start-up and at a clean stop), got -5")),
        ('snapshot_every_records = "1000"', "", "key 'cluster.snapshot_every_records': expected a whole number"),
        ("retention_days = -1", "", ("key 'cluster.retention_days': expected a whole number of closed trading days "
         "from 0 to 366, got -1")),
        ("retention_days = true", "", "key 'cluster.retention_days': expected a whole number of closed trading days"),
        ("", "max_in_flight = 1.5", "key 'customers[0].max_in_flight': expected a whole number of orders >= 1, got 1.5"),
        ("", 'in_flight_policy = "queue"', "key 'customers[0].in_flight_policy': expected one of"),
    ],
)
def test_in_flight_mistakes_name_file_key_and_expectation(tmp_path: Path, cluster_line: str, customer_line: str,
                                                          needle: str) -> None:
    text = (f'[cluster]\nname = "t"\n{cluster_line}\n[[nodes]]\nname = "firm"\nrole = "firm"\n'
            f'[[accounts]]\nid = "A"\ncash = "1"\n[[customers]]\ncomp_id = "C"\naccounts = ["A"]\n{customer_line}\n')
    path = write(tmp_path, text)
    with pytest.raises(ClusterConfigError) as info:
        load_cluster_config(path)
    assert str(path) in str(info.value) and needle in str(info.value)


def test_snapshot_every_records_defaults_and_is_read(tmp_path: Path) -> None:
    assert load_cluster_config(write(tmp_path, MINIMAL)).snapshot_every_records == 100_000
    text = MINIMAL.replace('name = "t"\n', 'name = "t"\nsnapshot_every_records = 0\n', 1)
    assert load_cluster_config(write(tmp_path, text)).snapshot_every_records == 0


def test_retention_days_defaults_and_is_read(tmp_path: Path) -> None:
    assert load_cluster_config(write(tmp_path, MINIMAL)).retention_days == 2
    text = MINIMAL.replace('name = "t"\n', 'name = "t"\nretention_days = 0\n', 1)
    assert load_cluster_config(write(tmp_path, text)).retention_days == 0
