"""Prometheus metrics of a node (customer, street, firm), read at scrape time.

Everything here reads counters the node keeps anyway (``ReplicationNode.stats``, the log
writer's commit histogram, the role's ``counters`` dict and the customer utility's ack
latency histogram) when Prometheus scrapes: no metric object is touched per order or per
record. The cost of the metrics is the scrapes plus a handful of int additions and one
histogram observation per order and per commit. Measured on the shared 2-core machine
(README "Metrics and the dashboard"): a scrape costs a node 2.8-4.9 ms of CPU; the per-order
additions about 9 us (timeit, machine saturated); against 2.3-3.5 ms of cluster CPU per order
at ``fixgw bench --rate 1000`` that is 1.4-2.1% with every endpoint scraped every second
(0.8-1.2% at Prometheus' usual 15 s). End to end, the cluster's CPU per order with metrics
(3.46, 2.26 ms) and without (3.15, 3.33 ms) differed by less than the run-to-run noise.

Metric names (all with labels ``node`` and ``role``):

- ``fixgw_orders_received_total``, ``fixgw_orders_accepted_total``,
  ``fixgw_orders_rejected_total``, ``fixgw_execution_reports_sent_total`` (customer utilities)
- ``fixgw_ack_latency_seconds`` histogram: NewOrderSingle read -> PendingNew handed to the engine
- ``fixgw_record_appends_total``, ``fixgw_record_commits_total``,
  ``fixgw_record_commit_latency_seconds`` histogram (LMDB transaction incl. sync)
- ``fixgw_replication_head``: the node's own last sequence number;
  ``fixgw_replication_high_water_mark{origin}``, ``fixgw_replication_lag_records{origin}``
  (the origin's last announced head minus what is held contiguously),
  ``fixgw_replication_lag_seconds{origin}`` (the age of the oldest announced record not yet
  held) and ``fixgw_replication_behind{origin}`` (1 while over ``cluster.behind_after_s``:
  ``replication.lag``)
- ``fixgw_orders_in_flight`` (customer utilities): orders taken and not yet answered by a
  venue, bounded by ``cluster.max_in_flight`` (``utilities.in_flight``)
- ``fixgw_node_degraded`` (0/1: cannot store, a full disk or map), ``fixgw_storage_write_failures_total``,
  ``fixgw_records_not_stored_total`` (received batches refused by a full disk, asked again later)
- ``fixgw_broker_connected`` (0/1), ``fixgw_broker_connects_total``,
  ``fixgw_malformed_payloads_total``, ``fixgw_records_received_total``
- ``fixgw_role_events_total{counter}``: the role's other counters, those of status.json
  (routed, takeovers, ...; a customer utility's market data's md_requests, md_rejects, ...; a
  street's quote feed's md_subscribes, quote_messages, ...; the fence's fence_*)
- the FIX engine's metrics (``fixgw.metrics.EngineCollector``)

A gateway (``GatewayCollector``, labels ``gateway``) reads its ``status()`` at scrape time, the
dict it writes to its status file anyway: ``fixgw_gateway_events_total{counter}`` (connections
accepted, Logons routed to the owner or by load, each refusal reason, closes on a utility's
death), ``fixgw_gateway_connections{utility}`` (customers relayed now),
``fixgw_gateway_utility_state{utility,state}`` (1 for the state the gateway sees: routable,
alive or dead) and ``fixgw_broker_connected``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from fixgw.metrics import histogram_family
from replication.node import ReplicationNode

# role counters with a metric of their own (the rest go to fixgw_role_events_total)
ORDER_COUNTERS = {
    "orders": ("fixgw_orders_received", "NewOrderSingle messages received"),
    "accepted": ("fixgw_orders_accepted", "orders made durable and acknowledged (PendingNew)"),
    "rejects": ("fixgw_orders_rejected", "orders refused (recorded, then Rejected sent)"),
    "execution_reports": ("fixgw_execution_reports_sent", "ExecutionReports (35=8) sent to customers"),
}


class HasStatus(Protocol):
    def status(self) -> dict[str, Any]: ...


UTILITY_STATES = ("routable", "alive", "dead")


class GatewayCollector(Collector):
    """A gateway's metrics, from its ``status()`` when scraped: nothing per relayed message."""

    def __init__(self, name: str, gateway: HasStatus) -> None:
        self._name = name
        self._gateway = gateway

    def collect(self) -> Iterator[Any]:
        st = self._gateway.status()
        keys, base = ["gateway"], [self._name]
        ev = CounterMetricFamily("fixgw_gateway_events", "customer connections accepted, routed and refused, by reason",
                                 labels=keys + ["counter"])
        for key, value in sorted(st.get("counters", {}).items()):
            ev.add_metric(base + [key], value)
        yield ev
        conns = GaugeMetricFamily("fixgw_gateway_connections", "customer connections relayed now, per customer utility",
                                  labels=keys + ["utility"])
        state = GaugeMetricFamily("fixgw_gateway_utility_state",
                                  "1 for the state the gateway sees a customer utility in", labels=keys + ["utility", "state"])
        connections: dict[str, int] = st.get("connections", {})
        for utility, seen in sorted(st.get("utilities", {}).items()):
            conns.add_metric(base + [utility], connections.get(utility, 0))
            for s in UTILITY_STATES:
                state.add_metric(base + [utility, s], 1 if seen == s else 0)
        yield conns
        yield state
        g = GaugeMetricFamily("fixgw_broker_connected", "1 while connected to the MQTT broker", labels=keys)
        g.add_metric(base, 1 if st.get("broker") == "up" else 0)
        yield g


class NodeCollector(Collector):
    def __init__(self, name: str, role: str, node: Callable[[], ReplicationNode | None],
                 role_obj: Callable[[], Any], counters: Callable[[], Mapping[str, int]]) -> None:
        """``counters``: the role's counters with its parts' (the ones status.json shows)."""
        self._labels = {"node": name, "role": role}
        self._node = node
        self._role_obj = role_obj
        self._counters = counters

    def collect(self) -> Iterator[Any]:
        keys, base = list(self._labels), list(self._labels.values())
        yield from self._role_metrics(keys, base)
        node = self._node()
        if node is None:
            return
        try:
            st = node.stats
            digests = node.peer_digests()
        except Exception:  # noqa: BLE001 - the log is closed while the node stops: nothing to report
            return
        for name, doc, value in (
            ("fixgw_record_appends", "own records appended to the LMDB log", node.appends),
            ("fixgw_record_commits", "LMDB transactions committed", st.commits),
            ("fixgw_records_received", "records of other nodes newly inserted", st.received),
            ("fixgw_malformed_payloads", "replication payloads that did not decode (dropped)", st.malformed),
            ("fixgw_broker_connects", "connections made to the MQTT broker", st.connects),
        ):
            c = CounterMetricFamily(name, doc, labels=keys)
            c.add_metric(base, value)
            yield c
        hist = node.commit_latency
        if hist is not None:
            yield histogram_family("fixgw_record_commit_latency_seconds",
                                   "wall time of an LMDB commit (write and sync)", hist, self._labels)
        g = GaugeMetricFamily("fixgw_broker_connected", "1 while connected to the MQTT broker", labels=keys)
        g.add_metric(base, 1 if st.connected else 0)
        yield g
        storage = node.storage
        g = GaugeMetricFamily("fixgw_node_degraded", "1 while the node cannot store (a full disk or map)",
                              labels=keys)
        g.add_metric(base, 0 if storage.ok else 1)
        yield g
        c = CounterMetricFamily("fixgw_storage_write_failures", "writes refused by a full disk or map", labels=keys)
        c.add_metric(base, storage.write_failures)
        yield c
        c = CounterMetricFamily("fixgw_records_not_stored", "batches of received records that could not be stored "
                                "(asked again once the node can write)", labels=keys)
        c.add_metric(base, st.not_stored)
        yield c
        g = GaugeMetricFamily("fixgw_replication_head", "the node's own last record sequence number", labels=keys)
        g.add_metric(base, st.head)
        yield g
        okeys = keys + ["origin"]
        hwm = GaugeMetricFamily("fixgw_replication_high_water_mark",
                                "per origin: every record up to this sequence number is held", labels=okeys)
        lag = GaugeMetricFamily("fixgw_replication_lag_records",
                                "per origin: its last announced head minus the high-water mark", labels=okeys)
        for origin, mark in sorted(st.hwms.items()):
            if origin == st.node_id:
                continue
            hwm.add_metric(base + [origin], mark)
            head = digests[origin].head if origin in digests else mark
            lag.add_metric(base + [origin], max(0, head - mark))
        for origin in sorted(set(digests) - set(st.hwms)):
            hwm.add_metric(base + [origin], 0)
            lag.add_metric(base + [origin], digests[origin].head)
        yield hwm
        yield lag
        secs = GaugeMetricFamily("fixgw_replication_lag_seconds",
                                 "per origin: the age of the oldest of its announced records not yet held",
                                 labels=okeys)
        behind = GaugeMetricFamily("fixgw_replication_behind",
                                   "per origin: 1 while more than cluster.behind_after_s behind it", labels=okeys)
        try:
            lags = node.replication_lag()
        except Exception:  # noqa: BLE001 - the log is closed while the node stops
            lags = {}
        for origin, ol in sorted(lags.items()):
            secs.add_metric(base + [origin], ol.seconds)
            behind.add_metric(base + [origin], 1 if origin in node.lag.behind else 0)
        yield secs
        yield behind

    def _role_metrics(self, keys: list[str], base: list[str]) -> Iterator[Any]:
        role = self._role_obj()
        counters = dict(self._counters())
        for key, (name, doc) in ORDER_COUNTERS.items():
            if key in counters:
                c = CounterMetricFamily(name, doc, labels=keys)
                c.add_metric(base, counters.pop(key))
                yield c
        if counters:
            other = CounterMetricFamily("fixgw_role_events", "the role's other counters", labels=keys + ["counter"])
            for key, value in sorted(counters.items()):
                other.add_metric(base + [key], value)
            yield other
        flight = getattr(role, "in_flight", None)
        if flight is not None and hasattr(flight, "total"):
            g = GaugeMetricFamily("fixgw_orders_in_flight", "orders taken and not yet answered by a venue", labels=keys)
            g.add_metric(base, flight.total)
            yield g
        ack = getattr(role, "ack_latency", None)
        if ack is not None:
            yield histogram_family("fixgw_ack_latency_seconds",
                                   "NewOrderSingle read -> PendingNew or Rejected handed to the engine",
                                   ack, self._labels)
