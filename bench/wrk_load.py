"""The load phase driven by wrk: the ledger's throughput, not the client's.

wrk posts fixed-amount deposits to most of the bench accounts from
BENCH_CLIENTS connections; meanwhile this process posts a few deposits a
second of its own to a handful of other accounts and follows each until the
query service shows it (the visibility lag). Balances of the wrk accounts are
checked in aggregate: wrk counts only answered requests, and requests still in
flight when it stops may commit too, so their sum must lie between what the
answered deposits add up to and that plus one deposit per connection.
"""

from __future__ import annotations

import asyncio
import random
import time
from http import HTTPStatus

from bench.lean_http import LeanHttp
from bench.load import LoadResult, _Account, probe_after, weighted_ids
from bench.settings import BenchSettings
from bench.wrk_driver import WrkResult, run_deposits

#: Amount of every wrk deposit, in minor units.
WRK_AMOUNT = 7
#: Accounts kept for the lag sampler, so their balances stay exactly checkable.
PROBE_ACCOUNTS = 10


def split_accounts(accounts: list[_Account]) -> tuple[list[_Account], list[_Account]]:
    """(accounts wrk loads, accounts the lag sampler uses)."""
    keep = min(PROBE_ACCOUNTS, max(1, len(accounts) // 10))
    return accounts[keep:], accounts[:keep]


async def load_with_wrk(
    sampler: LeanHttp,
    settings: BenchSettings,
    accounts: list[_Account],
    result: LoadResult,
) -> WrkResult:
    wrk_accounts, probe_accounts = split_accounts(accounts)
    for account in wrk_accounts:
        account.certain = False  # checked in aggregate afterwards
    started = time.perf_counter()
    cpu_started = time.process_time()
    wrk_run = asyncio.create_task(
        asyncio.to_thread(
            run_deposits,
            settings.command_service_url,
            weighted_ids(
                [account.account_id for account in wrk_accounts],
                result.hot_account,
                settings.bench_hot_share,
            ),
            amount=WRK_AMOUNT,
            clients=settings.bench_clients,
            seconds=settings.bench_seconds,
        )
    )
    probes: set[asyncio.Task[None]] = set()
    rng = random.Random()
    interval = 1.0 / settings.bench_lag_samples_per_second
    while not wrk_run.done():
        account = rng.choice(probe_accounts)
        amount = rng.randint(1, 1_000)
        try:
            answer = await sampler.request(
                "POST",
                f"{settings.command_service_url}/accounts/{account.account_id}/deposits",
                json={"amount": amount},
            )
        except OSError as error:  # ConnectionError, TimeoutError
            result.command_errors[type(error).__name__] += 1
            account.certain = False
            continue
        answered = time.perf_counter()
        if answer.status == HTTPStatus.OK:
            account.expected_balance += amount
            body = answer.body
            result.final_position = max(result.final_position, int(body["position"]))
            probe_after(sampler, settings, result, probes,
                        account_id=account.account_id, body=body, answered_at=answered)  # fmt: skip
        else:
            account.certain = account.certain and answer.status < HTTPStatus.INTERNAL_SERVER_ERROR
        await asyncio.sleep(interval)
    outcome = await wrk_run
    result.load_seconds = time.perf_counter() - started
    result.client_cpu_seconds = time.process_time() - cpu_started
    if probes:
        await asyncio.gather(*probes)
    # A last command after wrk stopped: its position covers every wrk deposit that committed.
    await asyncio.sleep(0.5)
    marker = probe_accounts[0]
    answer = await sampler.request(
        "POST",
        f"{settings.command_service_url}/accounts/{marker.account_id}/deposits",
        json={"amount": 1},
    )
    if answer.status == HTTPStatus.OK:
        marker.expected_balance += 1
        result.final_position = max(result.final_position, int(answer.body["position"]))
    result.wrk_accounts = len(wrk_accounts)
    result.wrk_expected_range = (
        WRK_AMOUNT * outcome.accepted,
        WRK_AMOUNT * (outcome.accepted + settings.bench_clients),
    )
    result.wrk_initial_total = sum(a.expected_balance for a in wrk_accounts)
    return outcome
