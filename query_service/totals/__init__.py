"""Totals: per currency, the sum of all balances and the number of accounts."""

from __future__ import annotations

from query_service.feature import Feature
from query_service.totals.queries import handlers
from query_service.totals.routes import TotalsQueries

FEATURE = Feature(routes=[TotalsQueries], handlers=handlers)
