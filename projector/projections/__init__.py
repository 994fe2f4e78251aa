"""Every read model the projector keeps, registered here and only here.

Adding a read model is one module with ``NAME``, ``HANDLES`` and ``apply``
(see :mod:`projector.projections.base`) and one line in :data:`PROJECTIONS`.
"""

from __future__ import annotations

from projector.projections import account_balances, account_transactions
from projector.projections.base import CannotProject, Projection, RecordedEvent

PROJECTIONS: list[Projection] = [account_balances, account_transactions]

__all__ = ["PROJECTIONS", "CannotProject", "Projection", "RecordedEvent"]
