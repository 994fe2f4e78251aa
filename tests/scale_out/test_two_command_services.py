"""Two command service processes on one store: safe behind one address.

Each process caches the accounts it decided on, so each one's cache goes
stale whenever the other writes. The version key refuses an append decided
on a stale state (it is decided again on fresh state), and a refusal is
never answered from the cache alone: the account is read again first. So a
withdrawal that only the other process's deposit makes possible succeeds,
and under concurrent load through both no money appears or vanishes.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.infra import free_port
from tests.support.processes import SERVICES, ServiceProcess, Stack
from tests.support.reference_fold import expected_read_models

pytestmark = pytest.mark.processes


def second_command_service(stack: Stack, log_dir: Path) -> ServiceProcess:
    port = free_port()
    env = stack.env() | {SERVICES["command"][1]: str(port)}
    return ServiceProcess(name="command", env=env, log_path=log_dir / "command-2.log", port=port)


def test_a_stale_cache_never_decides_a_refusal_and_money_is_conserved(
    stack: Stack, tmp_path: Path
) -> None:
    first = stack.process("command").start().url
    other = second_command_service(stack, tmp_path).start()
    second = other.url
    try:
        opened = httpx.post(f"{first}/accounts", json={"owner": "ada", "currency": "EUR"})
        account = opened.json()["account_id"]
        assert httpx.post(f"{first}/accounts/{account}/deposits", json={"amount": 10}).is_success
        assert httpx.post(f"{second}/accounts/{account}/deposits", json={"amount": 100}).is_success
        # The first process has the account cached at 10: only a fresh read allows this.
        withdrawn = httpx.post(f"{first}/accounts/{account}/withdrawals", json={"amount": 60})
        assert withdrawn.status_code == 200, withdrawn.text
        assert withdrawn.json()["balance"] == 50
        refused = httpx.post(f"{second}/accounts/{account}/withdrawals", json={"amount": 51})
        assert refused.status_code == 422, refused.text  # 50 left: a true refusal
        assert refused.json()["code"] == "insufficient-funds"

        accounts = [account] + [
            httpx.post(f"{first}/accounts", json={"owner": "bob", "currency": "EUR"}).json()[
                "account_id"
            ]
            for _ in range(3)
        ]
        rng = random.Random(11)
        plan = [
            (rng.choice((first, second)), rng.choice(accounts), rng.random() < 0.6,
             rng.randint(1, 40))
            for _ in range(400)
        ]  # fmt: skip

        def send(step: tuple[str, str, bool, int]) -> tuple[str, int, int]:
            url, target, deposit, amount = step
            kind = "deposits" if deposit else "withdrawals"
            with httpx.Client(timeout=30) as client:
                answer = client.post(f"{url}/accounts/{target}/{kind}", json={"amount": amount})
            assert answer.status_code in (200, 422), answer.text
            if answer.status_code == 422:
                assert answer.json()["code"] == "insufficient-funds", answer.text
                return target, 0, 0
            return target, amount if deposit else -amount, 1

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(send, plan))
        moved = {target: 0 for target in accounts}
        moved[account] = 50
        for target, signed, _accepted in results:
            moved[target] += signed
        balances = expected_read_models(stack.database_url).balances
        for target in accounts:
            row = balances[next(key for key in balances if str(key) == target)]
            assert row.balance == moved[target] >= 0
        assert sum(accepted for _, _, accepted in results) > 200
    except BaseException:
        print(stack.logs(), other.logs())
        raise
    finally:
        other.stop()
