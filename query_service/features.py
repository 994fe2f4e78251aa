"""Every feature the query service serves, registered here and only here."""

from __future__ import annotations

from query_service import accounts, owners, totals, transfers
from query_service.feature import Feature

FEATURES: list[Feature] = [accounts.FEATURE, transfers.FEATURE, totals.FEATURE, owners.FEATURE]
