"""Holds: one hold by id, and an account's holds."""

from __future__ import annotations

from query_service.feature import Feature
from query_service.holds.queries import handlers
from query_service.holds.routes import AccountHoldQueries, HoldQueries

FEATURE = Feature(routes=[HoldQueries, AccountHoldQueries], handlers=handlers)
