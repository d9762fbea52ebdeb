"""``fixgw gateway --config F [--name N]``: run one gateway of a cluster (``utilities/gateway.py``).

The command only reads the config and wires the gateway: the customer utilities it may route
to, the broker and the heartbeat topic it learns their liveness from, TLS, the limits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

from fixgw import eventloop
from fixgw.cli import CliError
from fixgw.cli.cluster import DEFAULT_CONFIG, load_config


def register(sub: Any) -> None:
    p = sub.add_parser("gateway", help="run a gateway: one FIX address that routes customers to a live customer utility")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="cluster config (default: configs/local.toml)")
    p.add_argument("--name", default=None, help="gateway name ([[gateways]] name); optional when there is one")
    p.set_defaults(func=run_gateway)


def run_gateway(args: argparse.Namespace) -> int:
    from fixgw.metrics import serve_metrics
    from utilities.bus_access import monitor_login
    from utilities.cluster_config import ClusterConfigError
    from utilities.gateway import Gateway, GatewayError, Upstream, server_tls_context
    from utilities.metrics import GatewayCollector

    cfg = load_config(args.config)
    try:
        gw = cfg.gateway(args.name)
    except ClusterConfigError as exc:
        raise CliError(str(exc)) from None
    tls = None
    if gw.tls_cert is not None and gw.tls_key is not None:
        try:
            tls = server_tls_context(gw.tls_cert, gw.tls_key)
        except GatewayError as exc:
            raise CliError(f"{cfg.source}: gateway {gw.name!r} (tls_cert, tls_key): {exc}") from None
    upstreams = {n.name: Upstream(n.name, n.host, n.port or 0, n.comp_id) for n in cfg.nodes_with_role("customer")}
    logging.basicConfig(level=os.environ.get("FIXGW_LOG", "INFO"),
                        format=f"%(asctime)s {gw.name} %(levelname)s %(name)s: %(message)s")
    gateway = Gateway(
        name=gw.name, host=gw.host, port=gw.port, upstreams=upstreams, cluster=cfg.name,
        broker_host=cfg.broker.host, broker_port=cfg.broker.port, dead_after_s=cfg.dead_after_s,
        logon_timeout_s=gw.logon_timeout_s, max_logon_bytes=gw.max_logon_bytes, tls=tls,
        status_dir=cfg.data_dir / gw.name, bus_client_id=f"{cfg.name}-gateway-{gw.name}",
        login=monitor_login(cfg),   # it only listens to the heartbeats: the read-only login
    )

    async def serve() -> int:
        stop = asyncio.Event()
        eventloop.stop_on_signals(stop)
        try:
            await gateway.start()
        except GatewayError as exc:
            raise CliError(f"{cfg.source}: gateway {gw.name!r}: {exc}") from None
        metrics = None
        if gw.metrics_port is not None:
            try:
                metrics = serve_metrics(gw.host, gw.metrics_port, [GatewayCollector(gw.name, gateway)])
            except OSError as exc:
                await gateway.stop()
                raise CliError(f"{cfg.source}: gateway {gw.name!r} (metrics_port {gw.metrics_port}): "
                               f"cannot serve metrics: {exc.strerror or exc}") from None
        try:
            await stop.wait()
        finally:
            if metrics is not None:
                metrics.close()
            await gateway.stop()
        return 0

    return eventloop.run(serve())
