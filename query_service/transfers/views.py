"""What the transfer reads answer with; the field names are the HTTP contract and the columns."""

from __future__ import annotations

import msgspec

from projector.projections.transfers import TransferState


class TransferView(TransferState, frozen=True, kw_only=True):
    """A transfer as far as its saga has got; ``reason`` says why it was refunded or failed."""


class TransferPage(msgspec.Struct, frozen=True, kw_only=True):
    """An account's transfers (either side), newest first; ``next_cursor`` is null at the end."""

    items: list[TransferView]
    next_cursor: str | None
