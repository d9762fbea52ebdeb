"""Inbound resends after a failover (issue 12, item 4), on a real cluster with a hand-driven client.

A request resent with PossDupFlag=Y whose ClOrdID the cluster holds is answered with the order's
current status (neither a new order nor a "Duplicate ClOrdID" reject); one the cluster never
recorded is processed as new; the same for cancels.
"""

from __future__ import annotations

import pytest

from fixgw.message import Message
from tests.fixgw.rawfix_client import RawFixClient
from tests.support.cluster import Cluster

pytestmark = pytest.mark.timeout(120)


def nos(cl: str) -> list[tuple[int, object]]:
    return [(11, cl), (21, "1"), (55, "IBM"), (54, "1"), (60, "20260101-00:00:00"), (38, "1"), (40, "2"),
            (44, "100"), (59, "0")]


def report_for(c: RawFixClient, cl: str, timeout: float = 20.0) -> Message:
    while True:
        m = c.expect("8", timeout)
        if m.get_str(11) == cl:
            return m


def test_resent_requests_are_matched_to_what_the_cluster_holds(cluster: Cluster) -> None:
    c = RawFixClient(cluster.ports["cfu1"], sender="CLIENT2", target="FIXGW")
    try:
        c.logon(reset=True)
        c.send("D", nos("PD1"))
        first = report_for(c, "PD1")
        assert first.get_str(150) == "A"
        # the same order again, resent (PossDupFlag=Y): its status, not a second order or a reject
        c.send("D", nos("PD1"), possdup=True)
        again = report_for(c, "PD1")
        assert again.get_str(150) == "I" and again.get_str(37) == first.get_str(37), again
        assert again.get_str(39) in ("A", "0") and again.get_str(103) is None
        # a resent order the cluster never recorded is a new order
        c.send("D", nos("PD2"), possdup=True)
        new = report_for(c, "PD2")
        assert new.get_str(150) == "A" and new.get_str(37) != first.get_str(37)
        # a cancel, then the same cancel resent: its status, not "Duplicate ClOrdID"
        cxl: list[tuple[int, object]] = [(41, "PD1"), (11, "PD1C"), (55, "IBM"), (54, "1"), (38, "1"), (60, "20260101-00:00:00")]
        c.send("F", cxl)
        pending = report_for(c, "PD1C")
        assert pending.get_str(150) in ("6", "4"), pending
        c.send("F", cxl, possdup=True)
        while True:
            m = c.recv(20)
            assert m is not None, "no answer to the resent cancel"
            if m.msg_type == b"9":
                raise AssertionError(f"the resent cancel was rejected: {m}")
            if m.msg_type == b"8" and m.get_str(11) == "PD1C" and m.get_str(150) == "I":
                assert m.get_str(37) == first.get_str(37)
                break
        c.send("F", [(41, "PD2"), (11, "PD2C"), (55, "IBM"), (54, "1"), (38, "1"), (60, "20260101-00:00:00")])
        assert report_for(c, "PD2C").get_str(150) in ("6", "4")
    finally:
        c.close()
