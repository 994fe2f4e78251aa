"""What the transfer reads answer with; the field names are the HTTP contract and the columns."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

TransferStatus = Literal["requested", "debited", "completed", "refunded", "failed"]


class TransferView(msgspec.Struct, frozen=True, kw_only=True):
    """A transfer as far as its saga has got; ``reason`` says why it was refunded or failed."""

    transfer_id: UUID
    from_account: UUID
    to_account: UUID
    amount: int
    currency: str
    status: TransferStatus
    reason: str | None
    requested_at: datetime
    debited_at: datetime | None
    finished_at: datetime | None
    version: int


class TransferPage(msgspec.Struct, frozen=True, kw_only=True):
    """An account's transfers (either side), newest first; ``next_cursor`` is null at the end."""

    items: list[TransferView]
    next_cursor: str | None
