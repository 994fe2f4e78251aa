"""kill -9 of the command service, the saga, the relay and the projector under transfer load.

Clients request transfers among a few accounts over HTTP (a tenth of them to
an account that does not exist, to be refunded), each with its own
Idempotency-Key, and retry it through every crash until it is answered
(the retry after a kill takes over the dead attempt's claim and recovers
what it recorded). Meanwhile the command service, the saga, the relay and the
projector are killed with SIGKILL and restarted on a fixed schedule, each at
least once, each kill after a given number of transfers were accepted. Then
everything is let settle, and the event store must say:

- every requested transfer reached completed, refunded or failed;
- each transfer's legs are exactly those of its outcome, none twice;
- no client request was recorded twice, none answered was lost;
- no balance below zero, and the sum of balances equals deposits minus
  withdrawals: no money created or destroyed, nothing left in flight.

and the read models must equal a fresh fold of that store (every transfer
terminal there too, no statement line twice).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from tests.support.processes import Stack
from tests.support.reference_fold import (
    expected_read_models,
    live_read_models,
    wait_until_projected,
)
from tests.transfers.commands import open_account
from tests.transfers.ledger_view import EXPECTED_LEGS, wait_until_finished

ACCOUNTS = 5
#: Who is killed, in order; the next kill waits until this many more transfers were
#: accepted, so every process is killed under load however slow the machine is.
KILL_SCHEDULE = ("command", "saga", "relay", "projector", "command", "saga")
TRANSFERS_BETWEEN_KILLS = 15


@pytest.fixture
def crash_stack(database_url: str, stream_name: str, tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(
        database_url=database_url,
        stream_name=stream_name,
        log_dir=tmp_path,
        # A retry after a kill waits for the dead attempt's lease: keep it short.
        extra_env={"IDEMPOTENCY_LEASE_SECONDS": "1", "IDEMPOTENCY_WAIT_SECONDS": "5"},
    )
    stack.start("command", "saga", "relay", "projector")
    yield stack
    stack.stop()


class TransferClients:
    """Threads requesting transfers until told to stop, each retried until answered."""

    def __init__(self, url: str, accounts: list[str], threads: int = 4) -> None:
        self._url = url
        self._accounts = accounts
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(seed,), daemon=True) for seed in range(threads)
        ]
        self._lock = threading.Lock()
        self.answers: dict[str, httpx.Response] = {}
        self.retries = 0
        self.errors: list[BaseException] = []

    def __enter__(self) -> TransferClients:
        for thread in self._threads:
            thread.start()
        return self

    def wait_for_answers(self, count: int, timeout: float = 90.0) -> None:
        """Block until ``count`` requests in all were answered; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while len(self.answers) < count:
            assert not self.errors, self.errors
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.answers)} of {count} transfers answered")
            time.sleep(0.05)

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        try:
            with httpx.Client(base_url=self._url, timeout=30) as client:
                while not self._stopping.is_set():
                    source, target = rng.sample(self._accounts, 2)
                    if rng.random() < 0.1:
                        target = str(uuid.uuid4())  # no such account: refunded
                    amount = rng.randint(1, 400)
                    body = {"from_account": source, "to_account": target, "amount": amount}
                    self._request_until_answered(client, f"crash-{uuid.uuid4()}", body)
        except BaseException as error:
            self.errors.append(error)

    def _request_until_answered(
        self, client: httpx.Client, key: str, body: dict[str, object]
    ) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                response = client.post("/transfers", json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError:  # the service is down: same key, again
                response = None
            if response is not None and response.status_code < 500 and response.status_code != 409:
                with self._lock:
                    self.answers[key] = response
                return
            with self._lock:
                self.retries += 1
            time.sleep(0.05)
        raise AssertionError(f"request {key} was never answered")


def test_transfers_survive_kill_9_of_every_process(
    crash_stack: Stack, database_url: str
) -> None:
    command = crash_stack.process("command")
    with httpx.Client(base_url=command.url, timeout=30) as client:
        accounts = [open_account(client, deposit=1_000) for _ in range(ACCOUNTS)]
    kills: Counter[str] = Counter()

    with TransferClients(command.url, accounts) as clients:
        for number, victim in enumerate(KILL_SCHEDULE, start=1):
            clients.wait_for_answers(number * TRANSFERS_BETWEEN_KILLS)
            crash_stack.process(victim).kill()
            kills[victim] += 1
            crash_stack.process(victim).start()
        clients.wait_for_answers((len(KILL_SCHEDULE) + 1) * TRANSFERS_BETWEEN_KILLS)
    assert not clients.errors, clients.errors

    view = wait_until_finished(database_url, timeout=90)

    answered = {key: r for key, r in clients.answers.items()}
    assert all(r.status_code == 202 for r in answered.values()), {
        r.status_code for r in answered.values()
    }
    answered_ids = {UUID(r.json()["transfer_id"]) for r in answered.values()}
    assert len(answered_ids) == len(answered), "two keys were answered with one transfer"
    assert set(view.requests) == answered_ids, "a request was recorded twice, or one was lost"
    outcomes = Counter(view.status.values())
    assert set(outcomes) <= set(EXPECTED_LEGS), outcomes
    for transfer_id, status in view.status.items():
        assert view.legs.get(transfer_id, Counter()) == EXPECTED_LEGS[status], transfer_id
    assert all(balance >= 0 for balance in view.balances.values())
    assert view.in_flight == 0
    assert sum(view.balances.values()) == view.deposited - view.withdrawn == ACCOUNTS * 1_000
    assert clients.retries > 0, "no request ever had to be retried: no kill was felt"

    wait_until_projected(database_url, timeout=90)
    expected = expected_read_models(database_url)
    assert live_read_models(database_url) == expected
    assert {row.status for row in expected.transfers.values()} <= set(EXPECTED_LEGS)
    assert len(expected.transfers) == len(view.status)
    assert outcomes["completed"] > 0 and outcomes["refunded"] > 0
    command_log = command.log_path.read_text(errors="replace")
    recovered = Counter(
        '"found": true' in line
        for line in command_log.splitlines()
        if "recovering an idempotent request" in line
    )
    print(
        f"\ntransfers: {len(answered)} ({dict(outcomes)}), kills: {dict(kills)},"
        f" client retries: {clients.retries}, take-overs that found the dead attempt's"
        f" event: {recovered[True]}, that did not: {recovered[False]}"
    )
