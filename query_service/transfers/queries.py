"""The questions about transfers, and the handler each is registered to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from uuid import UUID

from projector.projections import account_balances, transfers
from query_service.account_pages import AccountListing
from query_service.cursors import TransfersCursor
from query_service.feature import ReadSide
from query_service.query_bus import Handler, Query, names
from query_service.transfers.reads import TransferReads
from query_service.transfers.views import TransferPage, TransferView


@dataclass(frozen=True)
class GetTransfer(Query[TransferView]):
    READS: ClassVar[tuple[str, ...]] = names([transfers])
    transfer_id: UUID


@dataclass(frozen=True)
class ListAccountTransfers(AccountListing[TransferPage, TransfersCursor]):
    READS = names([transfers, account_balances])
    LISTING = "transfers"


def handlers(side: ReadSide) -> Mapping[type[Query[Any]], Handler]:
    reads = TransferReads(side.pool, side.blocked)

    async def get_transfer(query: GetTransfer) -> TransferView:
        return await reads.transfer(query.transfer_id)

    async def list_account_transfers(query: ListAccountTransfers) -> TransferPage:
        return await reads.of_account(query.account_id, limit=query.limit, after=query.after)

    return {GetTransfer: get_transfer, ListAccountTransfers: list_account_transfers}
