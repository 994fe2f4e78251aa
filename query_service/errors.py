"""What a read can find missing. No HTTP here: :mod:`query_service.responses` maps it to a 404."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID


class NotProjected(LookupError):
    """Nothing under this key has been projected (yet).

    ``kind`` names it in the problem type (``<kind>-not-found``), ``title`` is
    the problem's title, and ``fields`` say which key it was.
    """

    kind: ClassVar[str]
    title: ClassVar[str]

    def __init__(self, detail: str, **fields: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields = fields


class AccountNotFound(NotProjected):
    """No account with this id has been projected (yet)."""

    kind, title = "account", "No such account"

    def __init__(self, account_id: UUID) -> None:
        super().__init__(f"no account {account_id} in the read models", account_id=str(account_id))
        self.account_id = account_id
