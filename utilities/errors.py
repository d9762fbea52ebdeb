"""What the utilities raise: one root, :class:`UtilitiesError`, so a caller can catch every
utilities failure in one clause, and each kind also keeps the built-in base its callers
already catch (``ValueError`` for bad values, ``TypeError`` for wrong types). A kind that
belongs to one module lives there, under this root: ``cluster_config.ClusterConfigError``.

The FIX-facing refusals (a logon refused, a bad tag value) are not here: they are the FIX
engine's exceptions (``fixgw.application``), raised for the engine to answer on the wire.
"""

from __future__ import annotations


class UtilitiesError(Exception):
    """The root of every exception the utilities raise."""


class MalformedMessage(UtilitiesError, ValueError):
    """A heartbeat or a command message from the bus that does not decode: set aside, logged."""


class InvalidValue(UtilitiesError, ValueError):
    """A value outside its domain: a transaction number, a fill, an order status, an account
    record's amounts, a limit."""


class WrongType(UtilitiesError, TypeError):
    """An argument of the wrong type (a programming mistake, not bad input)."""
