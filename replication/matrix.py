"""The replication matrix, written once as a role-to-role table (DESIGN.md).

| record written by | copied into, as authoritative | copied into, as read-only          |
| ----------------- | ----------------------------- | ---------------------------------- |
| customer utility  | every other customer utility  | the firm node                      |
| street utility    | every other street utility    | every customer utility, the firm   |
| firm node         | --                            | every customer and street utility  |

A node's own records are always authoritative. Everything else (subscriptions, where an
arriving record is stored, what ``fixgw log verify`` expects) is derived from this table.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from replication.record import Role


class Holding(str, enum.Enum):
    """How a node holds a copy of another node's records."""

    AUTHORITATIVE = "authoritative"
    READ_ONLY = "read_only"


# writer role -> holder role -> how the holder keeps the writer's records
MATRIX: Mapping[Role, Mapping[Role, Holding]] = {
    Role.CUSTOMER: {Role.CUSTOMER: Holding.AUTHORITATIVE, Role.FIRM: Holding.READ_ONLY},
    Role.STREET: {
        Role.STREET: Holding.AUTHORITATIVE,
        Role.CUSTOMER: Holding.READ_ONLY,
        Role.FIRM: Holding.READ_ONLY,
    },
    Role.FIRM: {Role.CUSTOMER: Holding.READ_ONLY, Role.STREET: Holding.READ_ONLY},
}


def holding(holder_role: Role, writer_role: Role) -> Holding | None:
    """How a node of ``holder_role`` keeps records of another node of ``writer_role``.

    ``None`` means it does not hold them at all (and does not subscribe to them).
    """
    return MATRIX[writer_role].get(holder_role)


def holding_for(holder: str, holder_role: Role, origin: str, origin_role: Role) -> Holding | None:
    """Like :func:`holding`, but a node's own records are always authoritative."""
    if origin == holder:
        return Holding.AUTHORITATIVE
    return holding(holder_role, origin_role)


def roles_held_by(holder_role: Role) -> dict[Role, Holding]:
    """Every writer role whose records a node of ``holder_role`` holds, and how."""
    return {writer: h for writer, held in MATRIX.items() if (h := held.get(holder_role)) is not None}
