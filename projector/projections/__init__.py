"""Every read model the projector keeps, registered here and only here.

Adding a read model is one module (``NAME``, ``VERSION``, ``HANDLES``,
``TABLES``, ``REFERENCE`` and ``apply``; see :mod:`projector.projections.base`),
its DDL in ``schema/sql``, and one line in :data:`PROJECTIONS`. Nothing in the
projector's machinery changes: each projection has its own checkpoint row;
one added to a database the others have already projected starts at 0 and is
caught up from the event store when the projector starts (see
:meth:`projector.projector.Projector.catch_up`); ``python -m projector.rebuild``
and the admin routes rebuild any of them by name, from what they declare.
"""

from __future__ import annotations

from projector.projections import (
    account_balances,
    account_transactions,
    currency_totals,
    holds,
    owner_summaries,
    transfers,
)
from projector.projections.base import CannotProject, Projection, RecordedEvent

PROJECTIONS: list[Projection] = [
    account_balances,
    account_transactions,
    transfers,
    currency_totals,
    owner_summaries,
    holds,
]


class UnknownProjection(LookupError):
    """No registered projection has this name."""

    def __init__(self, name: str) -> None:
        known = ", ".join(projection.NAME for projection in PROJECTIONS)
        super().__init__(f"no projection named {name!r} (known: {known})")
        self.name = name


def projection_named(name: str) -> Projection:
    """The registered projection called ``name``; raises :class:`UnknownProjection`."""
    for projection in PROJECTIONS:
        if name == projection.NAME:
            return projection
    raise UnknownProjection(name)


__all__ = [
    "PROJECTIONS",
    "CannotProject",
    "Projection",
    "RecordedEvent",
    "UnknownProjection",
    "projection_named",
]
