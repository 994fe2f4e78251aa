"""Every retired version of an event: its shape as published, and how it reads today.

A retired version is never written again, but the store holds it forever.
Its struct here is frozen: the same class name and fields as when it was
current, so its JSON Schema stays what was published (the compatibility check
compares them), and its upcaster turns it into the next version. Deleting or
editing one of these breaks the history of every store that holds it.
"""

from __future__ import annotations

from typing import ClassVar

from shared_kernel.language import events
from shared_kernel.language.upcasting import retire


class MoneyDeposited(events.LedgerEvent, frozen=True, kw_only=True):
    # v1: before deposits had a channel.
    TOPIC: ClassVar[str] = "ledger.MoneyDeposited.v1"

    amount: int
    currency: str
    reference: str | None = None


def _deposit_v1_to_v2(old: MoneyDeposited) -> events.MoneyDeposited:
    """A v1 deposit came in through the API: the only channel there was."""
    fields = {name: getattr(old, name) for name in old.__struct_fields__}
    return events.MoneyDeposited(**fields, channel="api")


retire(MoneyDeposited, _deposit_v1_to_v2)
