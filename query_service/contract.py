"""The query service's OpenAPI additions: response headers and links between reads.

Every answer carries ``X-Projection-Position``; a versioned read its ``ETag``
(also on 304); a 412 ``projection-behind`` or a 503 a ``Retry-After``. Links
lead from an account to its statement and transfers, and from a transfer to
the accounts on both sides.
"""

from __future__ import annotations

from query_service.read_your_writes import PROJECTION_POSITION_HEADER
from shared_kernel.openapi_contract import ETAG, RETRY_AFTER, Contract, header, link

_POSITION = header(
    "The event log position the read models had reached when this was read.",
    type="integer",
    minimum=0,
)
_VERSIONED = {"200": {"ETag": ETAG}, "304": {"ETag": ETAG}}
_OF_ACCOUNT = "$response.body#/account_id"

QUERY_CONTRACT = Contract(
    headers={
        "*": {
            "*": {PROJECTION_POSITION_HEADER: _POSITION},
            "412": {"Retry-After": RETRY_AFTER},
            "503": {"Retry-After": RETRY_AFTER},
        },
        "getAccount": _VERSIONED,
        "getTransfer": _VERSIONED,
    },
    links={
        ("getAccount", "200"): {
            "statement": link("listAccountTransactions", "The statement", account_id=_OF_ACCOUNT),
            "transfers": link("listAccountTransfers", "Its transfers", account_id=_OF_ACCOUNT),
        },
        ("getTransfer", "200"): {
            "source": link(
                "getAccount", "The source account", account_id="$response.body#/from_account"
            ),
            "target": link(
                "getAccount", "The target account", account_id="$response.body#/to_account"
            ),
        },
    },
)
