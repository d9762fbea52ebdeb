"""A node's status file (``<node dir>/status.json``) and the cluster's state read from them.

A running node rewrites its status file about once a second (``utilities.node_process``):
its state (starting / ready / stopping), its replication counters and high-water marks, its
FIX sessions and its role's counters. ``fixgw up`` reads it to know when a node is ready,
``fixgw status`` to show every node's state and replication lag (and each gateway's, from
the same kind of file), with no broker needed: a
file per node is what still answers when the broker or the node is gone. The file is
replaced atomically (written aside, then renamed), so a reader never sees half of it.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from replication.matrix import holding
from replication.record import Role
from utilities.cluster_config import ClusterConfig

STATUS_FILE = "status.json"
NEVER_STARTED = "never started"


def status_path(node_dir: Path) -> Path:
    return node_dir / STATUS_FILE


STATUS_SLACK = 4096  # bytes of trailing blanks kept in the file, for an in-place rewrite on a full disk


def write_status(node_dir: Path, status: dict[str, Any]) -> None:
    """Replace the node's status file with ``status`` (atomically); OSError when it cannot.

    A node whose disk is full must still say so (issue 14, item 5), but a file written aside
    needs new blocks. So the file is padded with blanks (JSON allows them) to the next 4 KiB
    past :data:`STATUS_SLACK`, blocks it already holds; when writing aside fails, the text is
    written over the file in place, within its size (a reader may then see it half written:
    :func:`read_status` reads again once)."""
    path = status_path(node_dir)
    text = json.dumps(status, sort_keys=True, default=str).encode()
    padded = text + b" " * (-(-(len(text) + STATUS_SLACK) // 4096) * 4096 - len(text))
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_bytes(padded)
        tmp.replace(path)
        return
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        size = path.stat().st_size   # OSError: no file to write over
        if len(text) > size:
            raise
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, text + b" " * (size - len(text)), 0)
    finally:
        os.close(fd)


def read_status(node_dir: Path) -> dict[str, Any] | None:
    """The node's last status, or None when it has none (never started) or it is unreadable."""
    for attempt in (1, 2):   # once more: a file rewritten in place (full disk) may be read half written
        try:
            st = json.loads(status_path(node_dir).read_text())
        except OSError:
            return None
        except ValueError:
            if attempt == 2:
                return None
            continue
        return st if isinstance(st, dict) else None
    return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cluster_status(cfg: ClusterConfig) -> dict[str, Any]:
    """Every node's state, high-water marks and lag behind the origins its role holds, and the
    cluster's FIX entry points (what ``fixgw status`` shows). A node whose process is gone is
    "down", whatever its file last said."""
    nodes = []
    heads: dict[str, int] = {}
    raw: dict[str, dict[str, Any]] = {}
    for n in cfg.nodes.values():
        st = read_status(cfg.node_data_dir(n.name)) or {"state": NEVER_STARTED}
        pid = st.get("pid")
        if st.get("state") != NEVER_STARTED and (not isinstance(pid, int) or not pid_alive(pid)):
            st["state"] = "down"
        raw[n.name] = st
        heads[n.name] = int(st.get("own_seq", 0) or 0)
    for n in cfg.nodes.values():
        st = raw[n.name]
        hwm = {k: int(v) for k, v in (st.get("hwm") or {}).items()}
        lag = {}
        for other in cfg.nodes.values():
            if other.name == n.name or holding(Role(n.role), Role(other.role)) is None:
                continue
            lag[other.name] = max(0, heads.get(other.name, 0) - hwm.get(other.name, 0))
        nodes.append({"name": n.name, "role": n.role, "state": st.get("state"), "pid": st.get("pid"),
                      "own_seq": heads[n.name], "hwm": hwm, "lag": lag, "connected": st.get("connected", False),
                      "fix_sessions": st.get("fix_sessions", {}), "fix_seqnums": st.get("fix_seqnums", {}),
                      "counters": st.get("counters", {}), "metrics_url": n.metrics_url,
                      # the node's own view (replication.lag): seconds behind each origin, and the
                      # origins it is more than cluster.behind_after_s behind
                      "lag_seconds": {o: float(v.get("seconds", 0.0))
                                      for o, v in (st.get("replication_lag") or {}).items()},
                      "behind": list(st.get("behind") or []),
                      "in_flight": st.get("in_flight"),
                      "malformed": int(st.get("malformed", 0) or 0), "conflicts": int(st.get("conflicts", 0) or 0),
                      "recent_conflicts": st.get("recent_conflicts", []),
                      "degraded": st.get("degraded"),   # why it cannot store (full disk or map), or None
                      "map": st.get("map")})  # the record log's map: used, size, limit, near_limit
    # the entry points, each with its kind: gateways first (the one address customers need)
    utility_comps = ", ".join(sorted({n.comp_id for n in cfg.nodes_with_role("customer")}))
    entry: list[dict[str, Any]] = [
        {"name": g.name, "kind": "gateway", "host": g.host, "port": g.port, "comp_id": utility_comps,
         "tls": g.tls_cert is not None} for g in cfg.gateways.values()]
    entry += [{"name": n.name, "kind": "customer", "host": n.host, "port": n.port, "comp_id": n.comp_id}
              for n in cfg.nodes_with_role("customer")]
    entry += [{"name": v.name, "kind": "venue", "host": v.host, "port": v.port, "comp_id": v.comp_id}
              for v in cfg.venues.values()]
    gateways = []
    for g in cfg.gateways.values():   # a gateway writes the same status file (utilities.gateway)
        st = read_status(cfg.data_dir / g.name) or {"state": NEVER_STARTED}
        pid = st.get("pid")
        if st.get("state") != NEVER_STARTED and (not isinstance(pid, int) or not pid_alive(pid)):
            st["state"] = "down"
        gateways.append({"name": g.name, "state": st.get("state"), "pid": pid, "connections": st.get("connections", {}),
                         "counters": st.get("counters", {}), "utilities": st.get("utilities", {}),
                         "metrics_url": g.metrics_url})
    # each customer session as its owner reports it (the live customer utilities' status files)
    sessions = [dict(s, owner=n.name) for n in cfg.nodes_with_role("customer") if raw[n.name].get("state") != "down"
                for s in raw[n.name].get("sessions") or ()]
    venues = [{"name": v.name, "kind": v.kind, "host": v.host, "port": v.port,
               "metrics_url": None if v.metrics_port is None else f"http://{v.host}:{v.metrics_port}/metrics"}
              for v in cfg.venues.values()]
    return {"cluster": cfg.name, "nodes": nodes, "gateways": gateways, "entry_points": entry,
            "sessions": sorted(sessions, key=lambda s: (s["client"], s["begin"])), "venues": venues,
            "dashboard_url": cfg.dashboard_url}
