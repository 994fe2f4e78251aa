"""The projector's admin routes: a bearer token or nothing happens, one rebuild at a time.

Real projector process for the token checks, 404, 409 and 202; the routes
with no token configured (403) need no database, so they run in this process.
"""

from __future__ import annotations

import httpx
import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from projector.admin import ProjectionAdmin
from projector.projections import projection_named
from projector.rebuild.lock import REBUILD_LOCK_CLASS
from projector.settings import ProjectorSettings
from tests.rebuild.support import TOKEN, write_history
from tests.support.ledger_writer import LedgerWriter
from tests.support.processes import Stack
from tests.support.reference_fold import (
    PROJECTION_NAMES,
    expected_read_models,
    live_read_models,
    store_head,
    wait_until_projected,
)
from tests.support.sql import rows
from tests.support.streams import wait_for

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROUTES = (("GET", "/admin/projections"), ("POST", "/admin/projections/transfers/rebuild"))


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


def test_without_a_configured_token_the_admin_routes_are_off() -> None:
    for token in (None, ""):
        settings = ProjectorSettings(admin_token=token)  # type: ignore[arg-type]
        assert settings.admin_token is None
        app = Litestar(route_handlers=ProjectionAdmin(settings).routes())
        with TestClient(app) as client:
            for method, path in ROUTES:
                for headers in ({}, AUTH):
                    response = client.request(method, path, headers=headers)
                    assert_problem(response, 403, "admin-disabled")  # type: ignore[arg-type]


@pytest.mark.processes
def test_admin_routes_need_the_token_and_run_one_rebuild_at_a_time(
    database_url: str, stack: Stack, writer: LedgerWriter
) -> None:
    write_history(writer, seed=31, events=60)
    stack.extra_env.update(ADMIN_TOKEN=TOKEN, IDLE_CATCH_UP_SECONDS="0.2")
    projector = stack.process("projector").start()
    wait_until_projected(database_url)

    with httpx.Client(base_url=projector.url, timeout=10) as client:
        wrong: tuple[dict[str, str], ...] = (
            {}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": TOKEN}, {"Authorization": f"Bearer {TOKEN}x"},
        )  # fmt: skip
        for method, path in ROUTES:
            for headers in wrong:
                response = client.request(method, path, headers=headers)
                assert_problem(response, 401, "unauthorized")
                assert response.headers["www-authenticate"].startswith("Bearer")
        assert rows(database_url, "SELECT id FROM projection_rebuilds") == []

        unknown = client.post("/admin/projections/no_such_thing/rebuild", headers=AUTH)
        assert_problem(unknown, 404, "projection-not-found")

        with psycopg.connect(database_url, autocommit=True) as holder:
            # Whoever holds the projection's rebuild lock is running a rebuild of it.
            holder.execute(
                "SELECT pg_advisory_lock(%s, hashtext('transfers'))", (REBUILD_LOCK_CLASS,)
            )
            busy = client.post("/admin/projections/transfers/rebuild", headers=AUTH)
            assert_problem(busy, 409, "rebuild-running")
            listing = client.get("/admin/projections", headers=AUTH).json()["projections"]
            assert {p["name"]: p["state"] for p in listing}["transfers"] == "rebuilding"
        assert rows(database_url, "SELECT id FROM projection_rebuilds") == []

        accepted = client.post("/admin/projections/transfers/rebuild", headers=AUTH)
        assert accepted.status_code == 202, accepted.text
        rebuild_id = accepted.json()["rebuild_id"]

        def finished() -> bool:
            projections = client.get("/admin/projections", headers=AUTH).json()["projections"]
            [transfers] = [p for p in projections if p["name"] == "transfers"]
            return transfers["rebuild"]["state"] in ("swapped", "refused", "failed")

        wait_for(finished, timeout=60, what="the rebuild over HTTP")
        listing = client.get("/admin/projections", headers=AUTH).json()["projections"]

    head = store_head(database_url)
    assert [p["name"] for p in listing] == list(PROJECTION_NAMES)
    for status in listing:
        version = projection_named(status["name"]).VERSION
        assert (status["version"], status["live_tables_version"]) == (version, version)
        assert (status["checkpoint"], status["lag_events"], status["lag_seconds"]) == (head, 0, 0)
        assert status["state"] == "live"
    [transfers] = [p for p in listing if p["name"] == "transfers"]
    assert transfers["rebuild"]["rebuild_id"] == rebuild_id
    assert transfers["rebuild"]["state"] == "swapped"
    assert transfers["rebuild"]["events_done"] == transfers["rebuild"]["events_total"]
    assert transfers["rebuild"]["old_tables_kept"] is True
    assert live_read_models(database_url) == expected_read_models(database_url)
    assert TOKEN not in projector.logs()
