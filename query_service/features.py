"""Every feature the query service serves, registered here and only here."""

from __future__ import annotations

from query_service import accounts, holds, owners, totals, transfers
from query_service.feature import Feature

FEATURES: list[Feature] = [
    accounts.FEATURE, transfers.FEATURE, holds.FEATURE, totals.FEATURE, owners.FEATURE,
]  # fmt: skip
