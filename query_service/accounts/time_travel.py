"""``GET /accounts/{id}?as_of=N``: the account as the read models showed it at position N.

The one place the query service reads the event store rather than the read
models: the read models only hold the present, so the past is recomputed
from the account's own events at or below N, folded by the projector's own
projection code into scratch tables inside a transaction that is rolled back
(:mod:`projector.time_travel`). The live tables are never written; the
answer is what ``GET /accounts/{id}`` answered when the projection stood at N,
plus ``as_of``. The database role needs the TEMPORARY privilege for it.

When the balances projection refuses one of the account's events at or
below N, the projector blocks the account there: live reads answered 503
``read-model-blocked`` then, and so does this one (the same problem, its
``blocked`` naming the refused event), never a 200 that lacks an event. A
release whose code applies the event makes the same request answer 200.

It costs a fold of the account's history per request, so it is an audit
tool, not a hot path.
"""

from __future__ import annotations

import logging
from uuid import UUID

import psycopg
from litestar.status_codes import HTTP_503_SERVICE_UNAVAILABLE
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from projector.projections import account_balances
from projector.time_travel import Refused, StreamNotFound, scratch_read_models
from query_service.accounts.views import AccountAsOfView, AccountView
from query_service.blocked_streams import BlockedStream, ReadModelBlocked
from query_service.errors import AccountNotFound
from shared_kernel.language.events import utc_now
from shared_kernel.problems import problem

log = logging.getLogger(__name__)

_COLUMNS = ", ".join(
    "balance - held AS available" if name == "available" else name
    for name in AccountView.__struct_fields__
)
#: Unqualified, like the live query: inside the fold it finds the scratch twin.
_ACCOUNT = f"SELECT {_COLUMNS}, %s AS as_of FROM account_balances WHERE account_id = %s"


class AccountHistory:
    """Time-travelled views of accounts, folded on demand."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def account_as_of(self, account_id: UUID, position: int) -> AccountAsOfView:
        """The account as of ``position``; :class:`AccountNotFound` if it did not exist then."""
        async with self._pool.connection() as conn:
            try:
                async with scratch_read_models(conn, account_id, position) as fold:
                    if fold.kind != "account":
                        raise AccountNotFound(account_id)
                    refused = fold.blocked.get(account_balances.NAME)
                    if refused is not None:
                        raise _blocked(account_id, position, refused)
                    cursor = conn.cursor(row_factory=class_row(AccountAsOfView))
                    await cursor.execute(_ACCOUNT, (position, account_id))
                    view = await cursor.fetchone()
            except StreamNotFound:
                raise AccountNotFound(account_id) from None
            except psycopg.errors.InsufficientPrivilege as error:
                log.error("time travel needs the TEMPORARY privilege", extra={"error": str(error)})
                raise problem(
                    HTTP_503_SERVICE_UNAVAILABLE,
                    "time-travel-unavailable",
                    "Time travel is not available on this server",
                    "the query service's database role may not create temporary tables",
                ) from None
        if view is None:
            raise AccountNotFound(account_id)
        return view


def _blocked(account_id: UUID, position: int, refused: Refused) -> ReadModelBlocked:
    log.warning(
        "time travel refused by the projection code: the state is incomplete",
        extra={"account_id": str(account_id), "as_of": position,
               "position": refused.position, "error": refused.error},
    )  # fmt: skip
    # No block row exists for a fold: ``blocked_at`` is when this fold refused it.
    block = BlockedStream(
        refused.projection, account_id, refused.position, refused.error, utc_now().isoformat()
    )
    return ReadModelBlocked([block], f"account {account_id} as of position {position}")
