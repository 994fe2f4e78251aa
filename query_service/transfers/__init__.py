"""Transfers: one transfer by id, and an account's transfers (either side)."""

from __future__ import annotations

from query_service.feature import Feature
from query_service.transfers.queries import handlers
from query_service.transfers.routes import AccountTransferQueries, TransferQueries

FEATURE = Feature(routes=[TransferQueries, AccountTransferQueries], handlers=handlers)
