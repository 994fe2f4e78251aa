"""Accounts: one account (now or as of a position), its statement, and accounts by filter."""

from __future__ import annotations

from query_service.accounts.queries import handlers
from query_service.accounts.routes import AccountQueries
from query_service.feature import Feature

FEATURE = Feature(routes=[AccountQueries], handlers=handlers)
