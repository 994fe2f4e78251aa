"""The command service's OpenAPI additions: response headers and links between operations.

The links let a client (and Schemathesis's stateful phase) go from an opened
account to its deposits, withdrawals and close, and from an answer's ETag to
the next command's If-Match. Reads live on the query service; the ``Location``
of a 201 or 202 is their absolute URL.
"""

from __future__ import annotations

from command_service.idempotency.middleware import REPLAYED_HEADER
from shared_kernel.language.money import MINOR_UNITS
from shared_kernel.openapi_contract import ETAG, RETRY_AFTER, Contract, header, link

_LOCATION = header("The absolute URL where the query service shows the resource.", format="uri")
_REPLAYED = header(
    "true when this is the stored answer of an earlier request with the same Idempotency-Key.",
    required=False,
    enum=["true"],
)
#: The account just changed, at the version its ETag names.
_ACCOUNT = {"account_id": "$response.body#/account_id", "header.If-Match": "$response.header.ETag"}
_HOLD_ID = "$response.body#/hold_id"
_THEN = {
    "deposit": link("deposit", "Deposit into the account", **_ACCOUNT),
    "withdraw": link("withdraw", "Withdraw from the account", **_ACCOUNT),
    "closeAccount": link("closeAccount", "Close the account", **_ACCOUNT),
    "placeHold": link("placeHold", "Hold money of the account", account_id=_ACCOUNT["account_id"]),
}

COMMAND_CONTRACT = Contract(
    headers={
        "*": {"503": {"Retry-After": RETRY_AFTER}},
        "openAccount": {
            "201": {"ETag": ETAG, "Location": _LOCATION},
            "*": {REPLAYED_HEADER: _REPLAYED},
        },
        "deposit": {"200": {"ETag": ETAG}, "*": {REPLAYED_HEADER: _REPLAYED}},
        "withdraw": {"200": {"ETag": ETAG}, "*": {REPLAYED_HEADER: _REPLAYED}},
        "closeAccount": {"200": {"ETag": ETAG}, "*": {REPLAYED_HEADER: _REPLAYED}},
        "requestTransfer": {"202": {"Location": _LOCATION}, "*": {REPLAYED_HEADER: _REPLAYED}},
        "placeHold": {"201": {"Location": _LOCATION}, "*": {REPLAYED_HEADER: _REPLAYED}},
        "captureHold": {"*": {REPLAYED_HEADER: _REPLAYED}},
        "releaseHold": {"*": {REPLAYED_HEADER: _REPLAYED}},
    },
    properties={"OpenAccountRequest": {"currency": {"enum": sorted(MINOR_UNITS)}}},
    links={
        ("openAccount", "201"): _THEN,
        ("deposit", "200"): _THEN,
        ("withdraw", "200"): _THEN,
        ("placeHold", "201"): {
            "captureHold": link("captureHold", "Capture the hold", hold_id=_HOLD_ID),
            "releaseHold": link("releaseHold", "Release the hold", hold_id=_HOLD_ID),
        },
    },
)
