"""The venues' exceptions, under one root: ``except VenueError`` catches anything a simulated
venue raises on purpose. Each keeps its built-in base (callers catch a bad command or a
config mistake as ValueError, a missing NAV as LookupError); the modules that raise them
import them from here (``from venues.commands import CommandError`` still works).
"""

from __future__ import annotations

__all__ = ["CommandError", "NavError", "VenueConfigError", "VenueError"]


class VenueError(Exception):
    """The root of the venues' exceptions."""


class CommandError(VenueError, ValueError):
    """A request that is malformed (not merely refusable)."""


class NavError(VenueError, LookupError):
    """No NAV can be given (unknown fund, bad file)."""


class VenueConfigError(VenueError, ValueError):
    """A configuration mistake; the message names file, key and expectation."""
