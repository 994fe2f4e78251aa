"""The running stack connects only as the processes' own roles, and still does everything.

All five processes start with nothing but the owner's ``DATABASE_URL`` (a
superuser here); each derives its role's URL from it. PostgreSQL itself says
who is connected (``pg_stat_activity``), and a deposit read back, a time
travel read and a rebuild swapped in while the stack runs prove the grants
are enough.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from shared_kernel.settings import DEFAULT_ROLE_NAMES
from tests.support.processes import Stack
from tests.support.streams import wait_for

TOKEN = "least-privilege-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
_SESSIONS = (
    "SELECT a.usename, r.rolsuper FROM pg_stat_activity AS a JOIN pg_roles AS r"
    " ON r.oid = a.usesysid WHERE a.datname = %s AND a.backend_type = 'client backend'"
    " AND a.pid <> pg_backend_pid()"
)


def sessions(database_url: str) -> set[tuple[str, bool]]:
    """(user, is superuser) of every other client session on the test's database."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        dbname = urlsplit(database_url).path.lstrip("/")
        return {(str(user), bool(sup)) for user, sup in conn.execute(_SESSIONS, (dbname,))}


def deposit(command: httpx.Client, account_id: str, amount: int) -> int:
    response = command.post(f"/accounts/{account_id}/deposits", json={"amount": amount})
    assert response.status_code == 200, response.text
    return int(response.json()["position"])


def balance(query: httpx.Client, account_id: str, position: int) -> int:
    response = query.get(f"/accounts/{account_id}", params={"min_position": position})
    assert response.status_code == 200, response.text
    return int(response.json()["balance"])


@pytest.mark.processes
def test_the_stack_runs_as_its_roles_only(stack: Stack, database_url: str) -> None:
    stack.extra_env.update(ADMIN_TOKEN=TOKEN)
    stack.start()
    roles = set(DEFAULT_ROLE_NAMES.values())
    with (
        httpx.Client(base_url=stack.process("command").url, timeout=10) as command,
        httpx.Client(base_url=stack.process("query").url, timeout=10) as query,
        httpx.Client(base_url=stack.process("projector").url, timeout=10) as projector,
    ):
        opened = command.post("/accounts", json={"owner": "least", "currency": "EUR"})
        assert opened.status_code == 201, opened.text
        account_id = opened.json()["account_id"]
        first = deposit(command, account_id, 100)
        second = deposit(command, account_id, 20)
        assert balance(query, account_id, second) == 120

        then = query.get(f"/accounts/{account_id}", params={"as_of": first})
        assert then.status_code == 200, then.text
        assert (then.json()["balance"], then.json()["as_of"]) == (100, first)

        connected = sessions(database_url)
        assert {user for user, _ in connected} == roles, connected
        assert not any(superuser for _, superuser in connected), connected

        started = projector.post("/admin/projections/account_balances/rebuild", headers=AUTH)
        assert started.status_code == 202, started.text

        def swapped() -> bool:
            listing = projector.get("/admin/projections", headers=AUTH).json()["projections"]
            [balances] = [p for p in listing if p["name"] == "account_balances"]
            state = balances["rebuild"]["state"]
            assert state not in ("refused", "failed"), balances
            return bool(state == "swapped")

        wait_for(swapped, timeout=60, what="the rebuild of account_balances")
        # The rebuilt table is the projector's and the query role reads it at once.
        third = deposit(command, account_id, 3)
        assert balance(query, account_id, third) == 123
        with psycopg.connect(database_url) as conn:
            owner = conn.execute(
                "SELECT pg_get_userbyid(relowner) FROM pg_class"
                " WHERE oid = 'public.account_balances'::regclass"
            ).fetchone()
        assert owner == (DEFAULT_ROLE_NAMES["projector"],)
        assert {user for user, _ in sessions(database_url)} <= roles
