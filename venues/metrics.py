"""A venue's own Prometheus metrics (its FIX traffic comes from ``fixgw.metrics.EngineCollector``).

Read at scrape time from the count the venue application keeps anyway
(``VenueApplication.reports_sent``): nothing is added to the venue's message path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class CountsReports(Protocol):
    reports_sent: int


class VenueCollector(Collector):
    def __init__(self, app: CountsReports, labels: dict[str, str]) -> None:
        self._app = app
        self._labels = labels

    def collect(self) -> Iterator[Any]:
        c = CounterMetricFamily("fixgw_execution_reports_sent", "ExecutionReports (35=8) sent by the venue",
                                labels=list(self._labels))
        c.add_metric(list(self._labels.values()), self._app.reports_sent)
        yield c
