"""``fixgw dashboard``: the operators' web dashboard of a cluster (``fixgw up`` starts it).

    fixgw dashboard [--config configs/local.toml] [--host H] [--port P]

Host and port default to ``[cluster] dashboard_host`` / ``dashboard_port`` of the config.
It reads the nodes' status files and the firm node's log (read-only); see
``utilities/dashboard.py``.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from fixgw.cli import CliError


def register(sub: Any) -> None:
    from fixgw.cli.cluster import DEFAULT_CONFIG

    p = sub.add_parser("dashboard", help="serve the web dashboard of a cluster")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="cluster config (default: configs/local.toml)")
    p.add_argument("--host", default=None, help="address to listen on (default: [cluster] dashboard_host)")
    p.add_argument("--port", type=int, default=None, help="port (default: [cluster] dashboard_port)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from fixgw.cli.cluster import load_config
    from utilities.dashboard import DashboardSource, create_app
    from utilities.node_status import cluster_status

    cfg = load_config(args.config)
    host = args.host or cfg.dashboard_host
    port = args.port if args.port is not None else cfg.dashboard_port
    if port is None:
        raise CliError(f"{cfg.source}: key 'cluster.dashboard_port': expected a port (or pass --port)")
    if not 0 < port < 65536:
        raise CliError(f"--port {port}: expected 1..65535")
    firm = cfg.nodes_with_role("firm")[0]
    source = DashboardSource(lambda: cluster_status(cfg), cfg.node_data_dir(firm.name) / "log")
    logging.basicConfig(level=os.environ.get("FIXGW_LOG", "INFO"),
                        format="%(asctime)s dashboard %(levelname)s %(name)s: %(message)s")
    print(f"fixgw dashboard of {cfg.name} on http://{host}:{port}/", flush=True)
    # open event streams would hold a graceful shutdown forever: give them a second
    uvicorn.run(create_app(source), host=host, port=port, log_level="warning", timeout_graceful_shutdown=1)
    return 0
