"""The environment of a Python child process of ours (a snapshot writer, a replay worker, the
scale bench's restart): this checkout's root first on ``PYTHONPATH``, so the child imports the
same code as its parent whatever its working directory, and nothing else added (an empty
``PYTHONPATH`` entry would put the child's working directory on its path)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]   # where the fixgw packages are imported from


def child_env() -> dict[str, str]:
    """``os.environ`` with :data:`ROOT` first on ``PYTHONPATH``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


__all__ = ["ROOT", "child_env"]
