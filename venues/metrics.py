"""A venue's own Prometheus metrics (its FIX traffic comes from ``fixgw.metrics.EngineCollector``).

Read at scrape time from the count the venue application keeps anyway
(``VenueApplication.reports_sent``, the market-data subscriptions per symbol): nothing is
added to the venue's message path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class CountsSubscriptions(Protocol):
    def subscriptions_by_symbol(self) -> dict[str, int]: ...


class CountsReports(Protocol):
    reports_sent: int

    @property
    def market_data(self) -> CountsSubscriptions: ...


class VenueCollector(Collector):
    def __init__(self, app: CountsReports, labels: dict[str, str]) -> None:
        self._app = app
        self._labels = labels

    def collect(self) -> Iterator[Any]:
        c = CounterMetricFamily("fixgw_execution_reports_sent", "ExecutionReports (35=8) sent by the venue",
                                labels=list(self._labels))
        c.add_metric(list(self._labels.values()), self._app.reports_sent)
        yield c
        g = GaugeMetricFamily("fixgw_venue_md_subscriptions", "market-data subscriptions per symbol at the venue",
                              labels=[*self._labels, "symbol"])
        for symbol, n in sorted(self._app.market_data.subscriptions_by_symbol().items()):
            g.add_metric([*self._labels.values(), symbol], n)
        yield g
