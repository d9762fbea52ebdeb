"""Which processes make up a running cluster: ``<data_dir>/processes.json`` and the status files.

``fixgw up`` writes ``processes.json`` into the cluster's data directory once it has started its
children, before its ready line (its own pid, and each child's name, kind and pid: broker,
venues, nodes, gateways) and removes it on a clean stop. The
nodes also report their pid in their own status files (``utilities.node_status``), which is the
source for nodes started alone with ``fixgw node``. Looking processes up by name over the whole
machine would count another engineer's cluster on a shared host; these two files name exactly
ours. Used by ``fixgw bench --config`` to read each process's CPU over the load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from utilities.cluster_config import ClusterConfig
from utilities.node_status import pid_alive, read_status

PROCESSES_FILE = "processes.json"


def processes_path(data_dir: Path) -> Path:
    return data_dir / PROCESSES_FILE


def write_processes(data_dir: Path, up_pid: int, children: list[tuple[str, str, int]]) -> None:
    """Replace the cluster's process list (atomically): ``children`` as (name, kind, pid)."""
    path = processes_path(data_dir)
    tmp = path.with_suffix(".tmp")
    doc = {"up": up_pid, "children": [{"name": n, "kind": k, "pid": p} for n, k, p in children]}
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)


def remove_processes(data_dir: Path) -> None:
    processes_path(data_dir).unlink(missing_ok=True)


def cluster_processes(cfg: ClusterConfig) -> dict[str, tuple[str, int]]:
    """Every live process of the cluster of ``cfg`` on this machine: name -> (kind, pid).

    ``up`` itself is named ``up`` (kind ``supervisor``); the broker ``broker``; venues, nodes and
    gateways by their configured names. A node's pid comes from its status
    file, the others' from ``processes.json``; processes no longer alive are left out."""
    out: dict[str, tuple[str, int]] = {}
    try:
        doc: Any = json.loads(processes_path(cfg.data_dir).read_text())
    except (OSError, ValueError):
        doc = {}
    if isinstance(doc, dict):
        if isinstance(doc.get("up"), int):
            out["up"] = ("supervisor", doc["up"])
        for c in doc.get("children") or []:
            if isinstance(c, dict) and isinstance(c.get("pid"), int) and isinstance(c.get("name"), str):
                out[c["name"]] = (str(c.get("kind", "")), c["pid"])
    for n in cfg.nodes.values():
        st = read_status(cfg.node_data_dir(n.name))
        if st is not None and isinstance(st.get("pid"), int):
            out[n.name] = (n.role, st["pid"])
    return {name: kp for name, kp in out.items() if pid_alive(kp[1])}
