"""The gateway's routing rule, without sockets: heartbeats in, an ordered list of utilities out
(the owner of the customer's session first, then the least loaded, ties by name), on a frozen clock."""

from __future__ import annotations

from utilities.gateway import Directory, Upstream
from utilities.liveness import Heartbeat

UPS = {n: Upstream(n, "127.0.0.1", p, "FIXGW") for n, p in (("cfu1", 1001), ("cfu2", 1002), ("cfu3", 1003))}


def directory(now: list[float]) -> Directory:
    return Directory(UPS, dead_after_s=3.0, monotonic=lambda: now[0])


def beat(d: Directory, node: str, *sessions: str, state: str = "ready", instance: str = "i1") -> None:
    assert d.saw(Heartbeat(node, "customer", state, (), 1, f"{node}/{instance}", tuple(sessions)))


def names(d: Directory, client: str, load: dict[str, int] | None = None, target: str = "FIXGW") -> list[str]:
    return [r.upstream.name for r in d.candidates(client, target, load or {})]


def test_nothing_heard_nothing_routable() -> None:
    d = directory([0.0])
    assert names(d, "CLIENT1") == []


def test_by_load_ties_by_name_and_the_owner_first() -> None:
    d = directory([0.0])
    for n in ("cfu2", "cfu1", "cfu3"):
        beat(d, n)
    assert names(d, "CLIENT1") == ["cfu1", "cfu2", "cfu3"]
    assert names(d, "CLIENT1", {"cfu1": 2, "cfu2": 1}) == ["cfu3", "cfu2", "cfu1"]
    # heartbeats' session lists count as load too (other gateways' customers)
    beat(d, "cfu3", "A", "B", "C")
    assert names(d, "CLIENT1", {"cfu1": 2, "cfu2": 1}) == ["cfu2", "cfu1", "cfu3"]
    # the owner of CLIENT1's session comes first, however loaded
    beat(d, "cfu1", "CLIENT1", "X", "Y", "Z")
    routes = d.candidates("CLIENT1", "FIXGW", {"cfu1": 9})
    assert [(r.upstream.name, r.reason) for r in routes] == [("cfu1", "owner"), ("cfu2", "load"), ("cfu3", "load")]


def test_dead_starting_stopping_and_unknown_are_not_routed_to() -> None:
    now = [0.0]
    d = directory(now)
    beat(d, "cfu1")
    beat(d, "cfu2", state="starting")
    assert names(d, "C") == ["cfu1"]
    assert not d.saw(Heartbeat("ssu1", "street", "ready"))      # not a customer utility
    assert not d.saw(Heartbeat("cfu9", "customer", "ready"))    # not in the config
    now[0] = 3.5                                                # cfu1 silent past dead_after_s
    assert names(d, "C") == [] and not d.alive("cfu1")
    beat(d, "cfu1")
    beat(d, "cfu2", "C", state="stopping")                      # an owner on its way out is no owner
    assert names(d, "C") == ["cfu1"] and not d.alive("cfu2")
    beat(d, "cfu2", "C", state="degraded")                      # cannot store (full disk): no new Logon,
    assert names(d, "C") == ["cfu1"] and d.alive("cfu2")        # but alive: its connections stay


def test_the_target_comp_id_must_be_a_utilitys() -> None:
    d = directory([0.0])
    beat(d, "cfu1")
    assert names(d, "C", target="OTHER") == [] and not d.knows_target("OTHER") and d.knows_target("FIXGW")


def test_a_utility_that_refused_a_connection_is_avoided_until_heard_anew_or_dead_after() -> None:
    now = [0.0]
    d = directory(now)
    beat(d, "cfu1", "C")
    beat(d, "cfu2")
    d.suspect("cfu1")
    assert names(d, "C") == ["cfu2"]
    now[0] = 1.0
    beat(d, "cfu1", "C")                     # the same run's heartbeat (sent before it died)
    assert names(d, "C") == ["cfu2"]
    beat(d, "cfu1", "C", instance="i2")      # a new run of cfu1: the owner again
    assert names(d, "C") == ["cfu1", "cfu2"]
    d.suspect("cfu2")
    now[0] = 4.1
    beat(d, "cfu2")
    beat(d, "cfu1")
    assert names(d, "C") == ["cfu1", "cfu2"]  # the suspicion lapses after dead_after_s


def test_the_shipped_quickfix_config_has_a_session_through_the_shipped_gateway() -> None:
    from pathlib import Path

    import quickfix as fix

    from utilities.cluster_config import load_cluster_config

    root = Path(__file__).resolve().parents[2]
    gw = load_cluster_config(root / "configs" / "local.toml").gateway(None)
    settings = fix.SessionSettings(str(root / "configs" / "quickfix-customer.cfg"))
    d = settings.get(fix.SessionID("FIX.4.4", "CLIENT2", "FIXGW"))
    assert (d.getString("SocketConnectHost"), d.getInt("SocketConnectPort")) == (gw.host, gw.port)
