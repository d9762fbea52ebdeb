"""Where the shared material next to the project lives (QuickFIX's acceptance scripts).

The scripts are not in the repository: they sit in a ``shared/`` folder beside it, whose depth
differs between a checkout (``<repo>/../shared``) and a git worktree kept in a sibling folder
(``/work/wt/<branch>`` next to ``/work/shared``). Three tests used to compute it three ways,
each right for one layout only; this is the one place, trying each ancestor of the project.
"""

from __future__ import annotations

import functools
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


@functools.cache
def shared_root() -> Path:
    """The nearest ``shared/`` above the project holding ``quickfix-at/definitions``."""
    for ancestor in PROJECT.parents:
        cand = ancestor / "shared"
        if (cand / "quickfix-at" / "definitions" / "server" / "fix42").is_dir():
            return cand
    raise FileNotFoundError(
        f"no shared/quickfix-at/definitions/server/fix42 in any folder above {PROJECT}: "
        "the QuickFIX acceptance scripts are expected in a shared/ folder next to the project"
    )


def at_root() -> Path:
    """QuickFIX's acceptance-test folder (``definitions/``, ``fields.fmt``...)."""
    return shared_root() / "quickfix-at"
