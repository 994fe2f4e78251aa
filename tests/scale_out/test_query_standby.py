"""The query service reading a PostgreSQL hot standby, read-your-writes still exact.

A private primary and a streaming standby of it (``pg_basebackup -R``, its
own port). The command side, the relay, the saga and the projector use the
primary; the query service reads the standby (``QUERY_DATABASE_URL``), where
no LISTEN works, so it follows the checkpoints by polling, and time travel
(TEMP tables, which a standby refuses) goes to the primary
(``TIME_TRAVEL_DATABASE_URL``). Every read with ``min_position`` shows the
write it names, however far the standby lags, and the standby's read models
end equal to a fold of the store.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pydantic
import pytest

from query_service.projection_position import LISTENER_APPLICATION_NAME
from query_service.settings import QueryServiceSettings
from shared_kernel.settings import url_as_role
from tests.support.postgres_server import PrivatePostgres
from tests.support.processes import Stack, complete_transfer
from tests.support.reference_fold import expected_read_models, live_read_models, store_head
from tests.support.streams import wait_for

pytestmark = pytest.mark.processes



def in_recovery(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


def listeners(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (LISTENER_APPLICATION_NAME,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_reads_on_the_standby_show_every_write_they_name(
    servers: tuple[PrivatePostgres, PrivatePostgres], stream_name: str, tmp_path: Path
) -> None:
    primary, standby = servers
    primary_url, standby_url = primary.url(), standby.url()
    assert in_recovery(standby_url) and not in_recovery(primary_url)
    stack = Stack(database_url=primary_url, stream_name=stream_name, log_dir=tmp_path,
                  extra_env={
                      "QUERY_DATABASE_URL": url_as_role(standby_url, "ledger_query"),
                      "TIME_TRAVEL_DATABASE_URL": url_as_role(primary_url, "ledger_query"),
                  })  # fmt: skip
    try:
        stack.start()
        command, query = stack.process("command").url, stack.process("query").url
        opened = httpx.post(f"{command}/accounts", json={"owner": "ada", "currency": "EUR"})
        payee = httpx.post(f"{command}/accounts", json={"owner": "bob", "currency": "EUR"})
        account, other = opened.json()["account_id"], payee.json()["account_id"]
        balance, first_position = 0, None
        for amount in range(1, 31):
            deposit = httpx.post(f"{command}/accounts/{account}/deposits", json={"amount": amount})
            assert deposit.status_code == 200, deposit.text
            balance += amount
            position = deposit.json()["position"]
            first_position = first_position or position
            shown = httpx.get(f"{query}/accounts/{account}", params={"min_position": position})
            assert shown.status_code == 200, shown.text
            assert shown.json()["balance"] == balance  # never an older state
        complete_transfer(stack, account, other, 100)  # seen completed on the standby

        travelled = httpx.get(f"{query}/accounts/{account}", params={"as_of": first_position})
        assert travelled.status_code == 200, travelled.text
        assert travelled.json()["balance"] == 1
        assert listeners(standby_url) == 1 and listeners(primary_url) == 0

        head = store_head(primary_url)
        wait_for(lambda: store_head(standby_url) == head, timeout=30, what="standby replayed")
        wait_for(lambda: live_read_models(standby_url) == expected_read_models(standby_url),
                 timeout=60, what="the standby's read models equal the fold")  # fmt: skip
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()


def test_a_time_travel_url_that_names_no_postgresql_database_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="must look like postgresql://"):
        QueryServiceSettings(time_travel_database_url="redis://127.0.0.1:6379/0")
    url = "postgresql://ledger_query@primary:5432/ledger"
    assert QueryServiceSettings(time_travel_database_url=url).time_travel_database_url == url
