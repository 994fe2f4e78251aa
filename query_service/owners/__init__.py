"""Owners: one owner's accounts and balances per currency, and every owner page by page."""

from __future__ import annotations

from query_service.feature import Feature
from query_service.owners.queries import handlers
from query_service.owners.routes import OwnerQueries

FEATURE = Feature(routes=[OwnerQueries], handlers=handlers)
