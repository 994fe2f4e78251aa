"""Every read model the projector keeps, registered here and only here.

Adding a read model is one module with ``NAME``, ``HANDLES`` and ``apply``
(see :mod:`projector.projections.base`) and one line in :data:`PROJECTIONS`.
Each has its own checkpoint row; one added to a database the others have
already projected starts at 0 and is caught up from the event store when the
projector starts (see :meth:`projector.projector.Projector.catch_up`).
"""

from __future__ import annotations

from projector.projections import (
    account_balances,
    account_transactions,
    currency_totals,
    transfers,
)
from projector.projections.base import CannotProject, Projection, RecordedEvent

PROJECTIONS: list[Projection] = [account_balances, account_transactions, transfers, currency_totals]

__all__ = ["PROJECTIONS", "CannotProject", "Projection", "RecordedEvent"]
