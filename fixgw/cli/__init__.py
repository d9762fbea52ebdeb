"""The ``fixgw`` command line. The only place that wires the packages together.

Each sub-command lives in its own module here and exposes ``register(subparsers)``;
modules are imported lazily by name so that ``fixgw --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from fixgw.errors import FixgwError

# sub-command name -> module (under fixgw.cli) that registers it
COMMANDS: dict[str, str] = {
    "up": "up",
    "node": "up",
    "status": "up",
    "log": "log",
    "bench": "bench",
    "at-server": "at_server",
    "venue": "venue",
    "firm": "firm",
    "order": "order",
    "dashboard": "dashboard",
    "fix": "fix",
    "gateway": "gateway",
    "chaos": "chaos",
}


class CliError(FixgwError):
    """A user mistake on the command line or in a config: printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fixgw", description="FIX order gateway")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    seen: set[str] = set()
    for module_name in dict.fromkeys(COMMANDS.values()):
        if module_name in seen:
            continue
        seen.add(module_name)
        module = importlib.import_module(f"fixgw.cli.{module_name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except CliError as exc:
        print(f"fixgw: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:   # `fixgw ... | head`
        sys.stderr.close()
        return 0
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
