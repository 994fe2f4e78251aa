"""The ledger's aggregate types, registered once for the unit of work to load any of them."""

from __future__ import annotations

from command_service.bus.aggregates import AggregateType, register_aggregate
from command_service.domain import account, hold, transfer
from command_service.event_store import project_account

ACCOUNTS = register_aggregate(
    AggregateType(
        "account", project_account, account.apply, account.ACCOUNT_EVENTS, snapshotted=True
    )
)
TRANSFERS = register_aggregate(
    AggregateType("transfer", transfer.fold, transfer.apply, transfer.TRANSFER_EVENTS)
)
HOLDS = register_aggregate(AggregateType("hold", hold.load, hold.apply, hold.HOLD_EVENTS))
