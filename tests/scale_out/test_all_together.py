"""Every scale-out part at once, with crashes: nothing lost or doubled, every read shows its write.

A three-master Redis Cluster; a PostgreSQL primary with a streaming standby;
two command services, two relays, two sagas and two projectors on the
primary, ``STREAM_PARTITIONS=4``; one query service reading the standby. Two
clients drive deposits, withdrawals and transfers, each through its own command
service, and read every acknowledged write back with ``min_position``. When
a third of the load is done, one projector and the leading relay are killed
with -9; when two thirds are done, both come back. Afterwards: the store holds
exactly the acknowledged movements (no loss, no double), money is conserved,
every transfer is terminal, and the standby's read models equal a fold of the store.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from shared_kernel.settings import url_as_role
from tests.support.postgres_server import PrivatePostgres
from tests.support.processes import Stack, wait_for_shares
from tests.support.redis_cluster import PrivateRedisCluster
from tests.support.reference_fold import expected_read_models, live_read_models, store_head
from tests.support.streams import wait_for

pytestmark = pytest.mark.processes

OPERATIONS_PER_CLIENT = 90
TERMINAL = {"completed", "refunded", "failed"}




@dataclass
class Client:
    """One client: its own accounts, one command service, and what it was told."""

    command_url: str
    query_url: str
    accounts: list[str] = field(default_factory=list)
    deposited: int = 0
    withdrawn: int = 0
    transfers: list[str] = field(default_factory=list)
    done: int = 0
    stale_reads: list[str] = field(default_factory=list)
    error: BaseException | None = None

    def open(self, owner: str, count: int) -> None:
        for _ in range(count):
            opened = httpx.post(f"{self.command_url}/accounts",
                                json={"owner": owner, "currency": "EUR"}, timeout=30)  # fmt: skip
            assert opened.status_code == 201, opened.text
            self.accounts.append(str(opened.json()["account_id"]))

    def run(self, payees: list[str]) -> None:
        try:
            with httpx.Client(timeout=30) as http:
                for step in range(OPERATIONS_PER_CLIENT):
                    self._operation(http, step, payees)
                    self.done += 1
        except BaseException as error:  # handed to the test thread
            self.error = error

    def _operation(self, http: httpx.Client, step: int, payees: list[str]) -> None:
        account = self.accounts[step % len(self.accounts)]
        key = {"Idempotency-Key": str(uuid.uuid4())}
        if step % 3 == 2:
            body = {"from_account": account, "to_account": payees[step % len(payees)],
                    "amount": 7}  # fmt: skip
            answer = http.post(f"{self.command_url}/transfers", json=body, headers=key)
            assert answer.status_code == 202, answer.text
            self.transfers.append(str(answer.json()["transfer_id"]))
            return
        kind, amount = ("withdrawals", 5) if step % 3 == 1 else ("deposits", 20)
        answer = http.post(f"{self.command_url}/accounts/{account}/{kind}",
                           json={"amount": amount}, headers=key)  # fmt: skip
        if answer.status_code == 422:  # insufficient funds: refused, nothing written
            return
        assert answer.status_code == 200, answer.text
        if kind == "deposits":
            self.deposited += amount
        else:
            self.withdrawn += amount
        acknowledged = answer.json()
        shown = http.get(f"{self.query_url}/accounts/{account}",
                         params={"min_position": acknowledged["position"]})  # fmt: skip
        assert shown.status_code == 200, shown.text
        if shown.json()["version"] < acknowledged["version"]:
            self.stale_reads.append(f"{account}: {shown.json()} before {acknowledged}")


def leading_relay(stack: Stack) -> str:
    for name in ("relay", "relay#2"):
        process = stack.process(name)
        if process.popen is None or process.popen.poll() is not None:
            continue
        ready = httpx.get(f"{process.url}/health/ready", timeout=5).json()
        if ready["checks"]["relay"] == "active":
            return name
    return ""  # none leads at this moment (a standby takes the lock within a second)


def money_in_store(url: str) -> dict[str, int]:
    """Deposits and withdrawals as the store recorded them, by the events themselves."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT topic, sum((convert_from(state, 'UTF8')::jsonb->>'amount')::bigint)"
            " FROM ledger_events WHERE topic LIKE 'ledger.MoneyDeposited.%'"
            " OR topic LIKE 'ledger.MoneyWithdrawn.%' GROUP BY topic"
        ).fetchall()
    totals = {"deposited": 0, "withdrawn": 0}
    for topic, amount in rows:
        totals["deposited" if "Deposited" in topic else "withdrawn"] += int(amount)
    return totals


def test_the_whole_scale_out_path_survives_kills_without_losing_or_doubling(
    cluster: PrivateRedisCluster,
    servers: tuple[PrivatePostgres, PrivatePostgres],
    tmp_path: Path,
) -> None:
    primary, standby = servers
    primary_url, standby_url = primary.url(), standby.url()
    stack = Stack(database_url=primary_url, stream_name="ledger:events", log_dir=tmp_path,
                  extra_env={
                      "REDIS_URL": cluster.url, "REDIS_CLUSTER": "true",
                      "STREAM_PARTITIONS": "4", "PARTITION_BALANCE_SECONDS": "0.2",
                      "QUERY_DATABASE_URL": url_as_role(standby_url, "ledger_query"),
                      "TIME_TRAVEL_DATABASE_URL": url_as_role(primary_url, "ledger_query"),
                      "MAX_WAIT_SECONDS": "30",
                  })  # fmt: skip
    try:
        stack.start("command", "command#2", "relay", "relay#2", "saga", "saga#2",
                    "projector", "projector#2", "query")  # fmt: skip
        query = stack.process("query").url
        clients = [Client(stack.process(name).url, query) for name in ("command", "command#2")]
        for index, client in enumerate(clients):
            client.open(f"owner-{index}", 4)
        payees = [account for client in clients for account in client.accounts]
        # Each client pays the other's accounts: transfers cross command services.
        threads = [
            threading.Thread(target=client.run, args=(other.accounts,))
            for client, other in zip(clients, reversed(clients), strict=True)
        ]
        for thread in threads:
            thread.start()

        def progressed(share: float) -> bool:
            failed = [c.error for c in clients if c.error is not None]
            if failed:
                raise AssertionError(f"a client failed: {failed[0]!r}")
            return sum(c.done for c in clients) >= share * OPERATIONS_PER_CLIENT * len(clients)

        wait_for(lambda: progressed(1 / 3), timeout=120, what="a third of the load")
        leader = leading_relay(stack)
        assert leader, "no relay leads"
        stack.process("projector#2").kill()
        stack.process(leader).kill()
        survivor = "relay#2" if leader == "relay" else "relay"
        wait_for_shares(stack, {"projector": 4})
        wait_for(lambda: leading_relay(stack) == survivor, what=f"{survivor} leading")
        wait_for(lambda: progressed(2 / 3), timeout=180, what="two thirds of the load")
        stack.process("projector#2").start()
        stack.process(leader).start()
        wait_for_shares(stack, {"projector": 2, "projector#2": 2})
        for thread in threads:
            thread.join(timeout=300)
        assert not any(thread.is_alive() for thread in threads)
        assert [c.error for c in clients] == [None, None]
        assert [read for c in clients for read in c.stale_reads] == []

        # Every transfer terminal, as the standby shows it.
        transfers = [t for c in clients for t in c.transfers]

        def all_terminal() -> bool:
            return all(
                httpx.get(f"{query}/transfers/{t}", timeout=10).json().get("status") in TERMINAL
                for t in transfers
            )

        wait_for(all_terminal, timeout=120, what="every transfer terminal")
        # Exactly the acknowledged movements are in the store: none lost, none doubled.
        assert money_in_store(primary_url) == {
            "deposited": sum(c.deposited for c in clients),
            "withdrawn": sum(c.withdrawn for c in clients),
        }
        head = store_head(primary_url)
        wait_for(lambda: store_head(standby_url) == head, timeout=60, what="standby replayed")
        wait_for(lambda: live_read_models(standby_url) == expected_read_models(standby_url),
                 timeout=120, what="the standby's read models equal the fold")  # fmt: skip
        balances = [
            httpx.get(f"{query}/accounts/{account}").json()["balance"] for account in payees
        ]
        assert min(balances) >= 0
        # Transfers move money between accounts and create none: conserved.
        assert sum(balances) == money_in_store(primary_url)["deposited"] - money_in_store(
            primary_url
        )["withdrawn"]
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()
