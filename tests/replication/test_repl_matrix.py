from __future__ import annotations

from replication.matrix import Holding, holding, holding_for, roles_held_by
from replication.record import Role

A, R = Holding.AUTHORITATIVE, Holding.READ_ONLY


def test_matrix_as_in_the_design() -> None:
    # customer records -> other customers (authoritative), firm (read-only)
    assert holding(Role.CUSTOMER, Role.CUSTOMER) is A
    assert holding(Role.FIRM, Role.CUSTOMER) is R
    assert holding(Role.STREET, Role.CUSTOMER) is None
    # street records -> other streets (authoritative), customers and firm (read-only)
    assert holding(Role.STREET, Role.STREET) is A
    assert holding(Role.CUSTOMER, Role.STREET) is R
    assert holding(Role.FIRM, Role.STREET) is R
    # firm records -> customers and streets (read-only)
    assert holding(Role.CUSTOMER, Role.FIRM) is R
    assert holding(Role.STREET, Role.FIRM) is R
    assert holding(Role.FIRM, Role.FIRM) is None


def test_own_records_are_always_authoritative() -> None:
    for role in Role:
        assert holding_for("n1", role, "n1", role) is A
    assert holding_for("firm1", Role.FIRM, "firm2", Role.FIRM) is None


def test_roles_held_by() -> None:
    assert roles_held_by(Role.CUSTOMER) == {Role.CUSTOMER: A, Role.STREET: R, Role.FIRM: R}
    assert roles_held_by(Role.STREET) == {Role.STREET: A, Role.FIRM: R}
    assert roles_held_by(Role.FIRM) == {Role.CUSTOMER: R, Role.STREET: R}
