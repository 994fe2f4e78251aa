"""What the hold reads answer with; the field names are the HTTP contract and the columns."""

from __future__ import annotations

import msgspec

from projector.projections.holds import HoldState


class HoldView(HoldState, frozen=True, kw_only=True):
    """A hold: ``placed`` until captured, released or expired; ``captured`` is what a capture
    withdrew (the rest of ``amount`` was released)."""


class HoldPage(msgspec.Struct, frozen=True, kw_only=True):
    """An account's holds, newest first; ``next_cursor`` is null at the end."""

    items: list[HoldView]
    next_cursor: str | None
