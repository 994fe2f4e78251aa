"""A validation problem names every parameter as the client sent it, never by its Python name.

The parameters whose handler argument differs from their wire name
(``x_min_position`` for ``X-Min-Position``) are found in the apps themselves,
so one added later is checked too; each then gets a bad value over HTTP, and
the problem's ``errors`` must name it by its wire name and source.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from command_service.http.app import create_app as command_app
from projector.bootstrap import create_app as projector_app
from projector.settings import ProjectorSettings
from query_service.bootstrap import build_app as query_app
from query_service.settings import QueryServiceSettings
from shared_kernel.problems import renamed_parameters
from tests.contract.conftest import ADMIN_TOKEN
from tests.support.infra import REDIS_URL
from tests.support.processes import Stack

pytestmark = pytest.mark.processes

#: A value each renamed parameter refuses, by wire name. A renamed parameter missing
#: here fails the test until it gets one.
BAD_VALUES = {
    "If-Match": "3",  # an entity tag is quoted
    "If-None-Match": "3",
    "X-Correlation-ID": "not an id",
    "X-Min-Position": "soon",
    "Idempotency-Key": "not a key",
}
#: A body each command route accepts, so only the parameter can be refused.
BODIES = {
    "/accounts": {"owner": "ann", "currency": "EUR"},
    "/accounts/{account_id:uuid}/deposits": {"amount": 1},
    "/accounts/{account_id:uuid}/withdrawals": {"amount": 1},
    "/transfers": {"from_account": str(uuid.uuid4()), "to_account": str(uuid.uuid4()), "amount": 1},
    "/accounts/{account_id:uuid}/holds": {"amount": 1, "reference": "r", "expires_in_seconds": 9},
    "/holds/{hold_id:uuid}/capture": {"amount": 1},
}
#: The parameters known to be renamed: the search must find at least these.
KNOWN = {
    "command": {"If-Match", "X-Correlation-ID", "Idempotency-Key"},
    "query": {"If-None-Match", "X-Min-Position"},
    "projector": set(),
}


def _apps(database_url: str) -> dict[str, Litestar]:
    """Each service's app, built but never started (nothing connects)."""
    unused: Any = None
    return {
        "command": command_app(
            unused,
            idempotency_keys=unused,
            idempotency_wait_seconds=1.0,
            health_checks={},
            max_body_bytes=1024,
        ),
        "query": query_app(QueryServiceSettings(database_url=database_url, redis_url=REDIS_URL)),
        "projector": projector_app(
            ProjectorSettings(database_url=database_url, redis_url=REDIS_URL)
        ),
    }


def renamed(app: Litestar) -> list[tuple[str, str, str, str]]:
    """(method, path, wire name, source) of every parameter whose Python name differs."""
    found = {
        (method, route.path, wire, source)
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for method, (_handler, model) in route.route_handler_map.items()
        for wire, source in renamed_parameters(model).values()
    }
    return sorted(found)


@pytest.mark.parametrize("service", ["command", "query", "projector"])
def test_a_refused_parameter_is_named_as_sent(services: Stack, service: str) -> None:
    renamed_here = renamed(_apps(services.database_url)[service])
    assert KNOWN[service] <= {name for _m, _p, name, _s in renamed_here}, renamed_here

    wrong = []
    with httpx.Client(base_url=services.process(service).url, timeout=10) as client:
        for method, path, name, source in renamed_here:
            if method in ("HEAD", "OPTIONS"):
                continue  # HEAD is the GET without a body; OPTIONS is litestar's own
            assert name in BAD_VALUES, f"give {name} ({method} {path}) a bad value here"
            url = re.sub(r"\{\w+:uuid\}", str(uuid.uuid4()), re.sub(r"\{\w+:str\}", "ann", path))
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            params = {}
            if source == "header":
                headers[name] = BAD_VALUES[name]
            else:
                params[name] = BAD_VALUES[name]
            answer = client.request(
                method, url, headers=headers, params=params, json=BODIES.get(path)
            )
            problem = (
                answer.json() if answer.headers.get("content-type", "").endswith("json") else {}
            )
            named = [(e.get("source"), e.get("key")) for e in problem.get("errors", [])]
            if answer.status_code != 422 or named != [(source, name)]:
                wrong.append((method, path, name, answer.status_code, named))
    assert not wrong, wrong
