"""Placeholder: filled in by the work on this command."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    pass
