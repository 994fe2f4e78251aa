"""What the hold reads answer with; the field names are the HTTP contract and the columns."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

HoldStatus = Literal["placed", "captured", "released", "expired"]


class HoldView(msgspec.Struct, frozen=True, kw_only=True):
    """A hold: ``placed`` until captured, released or expired; ``captured`` is what a capture
    withdrew (the rest of ``amount`` was released)."""

    hold_id: UUID
    account_id: UUID
    amount: int
    currency: str
    reference: str | None
    status: HoldStatus
    captured: int
    expires_at: datetime
    placed_at: datetime
    ended_at: datetime | None
    version: int


class HoldPage(msgspec.Struct, frozen=True, kw_only=True):
    """An account's holds, newest first; ``next_cursor`` is null at the end."""

    items: list[HoldView]
    next_cursor: str | None
