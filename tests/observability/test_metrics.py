"""/metrics of every real process moves as commands flow; the dashboard and `make status` agree.

One stack of the five processes serves the whole module: it is scraped, then
driven (accounts, deposits, a refused withdrawal, a version conflict, a
transfer, refusals by middlewares and the router, queries, a rebuild over the
admin route), then scraped again once everything has been projected. The tests
compare the two scrapes, check that every metric is named ``ledger_...`` and
that every metric the Grafana dashboard names is one a process exposes, that
``/metrics`` is what Prometheus 3 accepts, and run ``python -m ops.health``
(what ``make status`` runs) against the stack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from shared_kernel.settings import EVENTS_TABLE
from tests.observability.scrape import (
    Scrape,
    delta,
    metric_names,
    panel_expressions,
    parse_exposition,
    scrape,
)
from tests.rebuild.support import TOKEN
from tests.support.infra import free_port
from tests.support.processes import PROJECT_ROOT, SERVICES, Stack, scratch_stack
from tests.support.reference_fold import store_head, wait_until_projected
from tests.support.streams import wait_for
from tests.transfers.commands import open_account, transfer

pytestmark = pytest.mark.processes

DASHBOARD = PROJECT_ROOT / "ops" / "grafana" / "dashboards" / "ledger.json"
#: Series Prometheus makes itself rather than scraping them.
PROMETHEUS_OWN = {"up"}
DEPOSITS = 6
#: Over the command service's default MAX_BODY_BYTES (16 KiB).
TOO_LARGE = b'{"amount": 1, "reference": "' + b"x" * 20_000 + b'"}'
#: What Prometheus 3 sends: OpenMetrics first, the classic text format as a fallback.
PROMETHEUS_3_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
#: The standard collectors of prometheus-client keep their own names.
STANDARD_PREFIXES = ("process_", "python_")


@dataclass
class Observed:
    stack: Stack
    database_url: str
    before: dict[str, Scrape]
    after: dict[str, Scrape]
    head: int
    transfer_position: int


def _wait_for_metric(url: str, name: str, value: float, **labels: str) -> None:
    wait_for(lambda: scrape(url).value(name, **labels) == value, timeout=30, what=f"{name}={value}")


def _drive(stack: Stack) -> int:
    """Every kind of command and query, and one rebuild; returns the transfer's position."""
    command, query = stack.process("command").url, stack.process("query").url
    with httpx.Client(base_url=command, timeout=15) as client:
        source = open_account(client)
        target = open_account(client)
        for _ in range(DEPOSITS - 1):
            answer = client.post(f"/accounts/{source}/deposits", json={"amount": 100})
            assert answer.status_code == 200, answer.text
        answer = client.post(f"/accounts/{target}/deposits", json={"amount": 5})
        assert answer.status_code == 200, answer.text
        refused = client.post(f"/accounts/{target}/withdrawals", json={"amount": 10_000})
        assert refused.status_code == 422, refused.text
        conflict = client.post(
            f"/accounts/{source}/deposits", json={"amount": 1}, headers={"If-Match": '"1"'}
        )
        assert conflict.status_code == 412, conflict.text
        key = {"Idempotency-Key": f"observed-{source}"}
        for _ in range(2):  # the second answer is the first one, replayed
            again = client.post(f"/accounts/{target}/deposits", json={"amount": 7}, headers=key)
            assert again.status_code == 200, again.text
        _refusals_before_any_route(client, key, target)
        requested = transfer(client, source, target, 50)
        assert requested.status_code == 202, requested.text
        transfer_id, position = requested.json()["transfer_id"], requested.json()["position"]
    with httpx.Client(base_url=query, timeout=15) as client:
        assert client.get("/nowhere").status_code == 404
        seen = client.get(f"/accounts/{source}", params={"min_position": position})
        assert seen.status_code == 200, seen.text
        assert client.get(f"/accounts/{source}/transactions").status_code == 200
        assert client.get("/totals").status_code == 200

        def completed() -> bool:
            answer = client.get(f"/transfers/{transfer_id}")
            return answer.status_code == 200 and answer.json()["status"] == "completed"

        wait_for(completed, timeout=30, what="the transfer completed")
    projector = stack.process("projector").url
    with httpx.Client(base_url=projector, timeout=15) as client:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        started = client.post("/admin/projections/account_balances/rebuild", headers=auth)
        assert started.status_code == 202, started.text

        def swapped() -> bool:
            listing = client.get("/admin/projections", headers=auth).json()["projections"]
            [balances] = [p for p in listing if p["name"] == "account_balances"]
            return (balances["rebuild"] or {}).get("state") == "swapped"

        wait_for(swapped, timeout=60, what="the rebuild swapped in")
    return int(position)


def _refusals_before_any_route(client: httpx.Client, key: dict[str, str], account: str) -> None:
    """Answers no route gives: the idempotency middleware's, the size limit's, the router's."""
    reused = client.post(f"/accounts/{account}/deposits", json={"amount": 8}, headers=key)
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency-key-reused"
    too_large = client.post(
        f"/accounts/{account}/deposits",
        content=TOO_LARGE,
        headers={"content-type": "application/json"},
    )
    assert too_large.status_code == 413, too_large.text
    # Chunked, so no Content-Length: the idempotency middleware finds the size while reading.
    streamed = client.post(
        f"/accounts/{account}/deposits",
        content=iter([TOO_LARGE]),
        headers={"content-type": "application/json", "Idempotency-Key": f"large-{account}"},
    )
    assert streamed.status_code == 413, streamed.text
    assert client.get("/nowhere").status_code == 404


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    with scratch_stack(
        tmp_path_factory.mktemp("observed"),
        ADMIN_TOKEN=TOKEN,
        IDLE_CATCH_UP_SECONDS="0.2",
        # Tracing off whatever the developer's shell exports: the off path is under test.
        OTEL_SDK_DISABLED="true",
    ) as stack:
        stack.start()
        database_url = stack.database_url
        before = {name: scrape(process.url) for name, process in stack.processes.items()}
        position = _drive(stack)
        head = store_head(database_url)
        wait_until_projected(database_url, head)
        urls = {name: process.url for name, process in stack.processes.items()}
        _wait_for_metric(urls["relay"], "ledger_relay_position", head)
        _wait_for_metric(urls["projector"], "ledger_projector_position", head)
        _wait_for_metric(urls["projector"], "ledger_projector_lag_events", 0)
        _wait_for_metric(urls["projector"], "ledger_projector_lag_seconds", 0)
        _wait_for_metric(urls["saga"], "ledger_saga_position", head)
        after = {name: scrape(url) for name, url in urls.items()}
        yield Observed(stack, database_url, before, after, head, position)


def test_command_service_counts_commands_latency_appends_and_responses(observed: Observed) -> None:
    before, after = observed.before["command"], observed.after["command"]
    moved = {
        ("open_account", "ok"): 2,
        ("deposit_money", "ok"): DEPOSITS + 1,
        ("deposit_money", "precondition-failed"): 1,
        ("withdraw_money", "insufficient-funds"): 1,
        ("request_transfer", "ok"): 1,
    }
    for (command, outcome), count in moved.items():
        assert (
            delta(before, after, "ledger_commands_total", command=command, outcome=outcome) == count
        )
    assert (
        delta(before, after, "ledger_command_duration_seconds_count", command="deposit_money") == 8
    )
    # Millisecond buckets: the smallest bound is below a millisecond.
    bounds = after.label_values("ledger_command_duration_seconds_bucket", "le")
    assert min(float(bound) for bound in bounds) <= 0.001
    # Two opens, seven deposits and the transfer request; the saga's legs are not the command's.
    assert delta(before, after, "ledger_appended_events_total") == 2 + DEPOSITS + 1 + 1
    for outcome in ("first", "replayed"):
        assert delta(before, after, "ledger_idempotent_requests_total", outcome=outcome) == 1
    assert delta(before, after, "ledger_append_batch_commands_count") >= 1
    assert after.has("ledger_append_conflicts_total") and after.has("ledger_append_retries_total")
    assert delta(before, after, "ledger_idempotent_requests_total", outcome="reused") == 1


def test_every_answer_is_counted_with_its_real_status(observed: Observed) -> None:
    """Refusals by middlewares and the router count like a route's; probes and scrapes do not."""
    before, after = observed.before["command"], observed.after["command"]
    answered = {"201": 2, "200": DEPOSITS + 2, "202": 1, "412": 1, "422": 2, "413": 2, "404": 1}
    for code, count in answered.items():
        assert delta(before, after, "ledger_http_responses_total", code=code) == count, code
    assert after.label_values("ledger_http_responses_total", "code") == set(answered)
    query = observed.after["query"]
    assert delta(observed.before["query"], query, "ledger_http_responses_total", code="404") == 1
    for scrape_ in observed.after.values():
        assert "none" not in scrape_.label_values("ledger_http_responses_total", "code")


def test_relay_saga_and_projector_name_their_lag_alike(observed: Observed) -> None:
    for process in ("relay", "saga", "projector"):
        for unit in ("events", "seconds"):
            name = f"ledger_{process}_lag_{unit}"
            assert observed.after[process].has(name), name
            assert observed.after[process].value(name) == 0, name  # everything was handled


def test_every_metric_is_named_ledger_but_the_standard_collectors(observed: Observed) -> None:
    for process, exposed in observed.after.items():
        assert exposed.has("process_cpu_seconds_total") or exposed.has("python_info"), process
        foreign = {
            name for name in exposed.names if not name.startswith(("ledger_", *STANDARD_PREFIXES))
        }
        assert not foreign, f"{process} exposes metrics outside ledger_: {sorted(foreign)}"


def test_every_process_froze_its_startup_heap_and_times_collector_pauses(
    observed: Observed,
) -> None:
    for process, exposed in observed.after.items():
        # The full collection that precedes freezing the heap at start is the first pause.
        assert exposed.value("ledger_gc_pause_seconds_count", generation="2") >= 1, process


@pytest.mark.parametrize("accept", [None, PROMETHEUS_3_ACCEPT], ids=["no-accept", "prometheus-3"])
def test_metrics_carry_one_charset_and_parse(observed: Observed, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    for name, process in observed.stack.processes.items():
        answer = httpx.get(f"{process.url}/metrics", headers=headers, timeout=10)
        assert answer.status_code == 200, name
        content_type = answer.headers["content-type"]
        assert content_type.lower().count("charset=") == 1, (name, content_type)
        families = parse_exposition(content_type, answer.text)
        assert any(f.name.startswith("ledger_") for f in families), name
    refused = httpx.post(f"{observed.stack.process('command').url}/metrics", timeout=10)
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"


def test_relay_and_saga_report_positions_and_lag(observed: Observed) -> None:
    relay = observed.after["relay"]
    assert (
        delta(observed.before["relay"], relay, "ledger_relay_published_events_total")
        == observed.head
    )
    assert (
        relay.value("ledger_relay_position")
        == relay.value("ledger_relay_store_head")
        == observed.head
    )
    assert relay.has("ledger_relay_lag_events") and relay.value("ledger_relay_lag_events") == 0
    assert relay.value("ledger_relay_active") == 1
    saga = observed.after["saga"]
    assert (
        delta(observed.before["saga"], saga, "ledger_saga_transfers_total", outcome="completed")
        == 1
    )
    assert saga.value("ledger_saga_position") >= observed.transfer_position


def test_projector_reports_checkpoint_lag_batches_dead_letters_and_rebuild(
    observed: Observed,
) -> None:
    before, after = observed.before["projector"], observed.after["projector"]
    assert after.value("ledger_projector_position") == observed.head
    assert delta(before, after, "ledger_projector_applied_events_total") == observed.head
    assert delta(before, after, "ledger_projector_batch_events_count") >= 1
    assert delta(before, after, "ledger_projector_batch_events_sum") >= observed.head
    # Every batch counted is timed; the live ones also say how old their newest event was.
    batches = delta(before, after, "ledger_projector_batch_events_count")
    assert delta(before, after, "ledger_projector_batch_seconds_count") == batches
    assert delta(before, after, "ledger_projector_batch_seconds_sum") > 0
    aged = delta(before, after, "ledger_projector_applied_event_age_seconds_count")
    assert 1 <= aged <= batches
    # An event is applied after it was decided, and well within the test's own time.
    mean_age = delta(before, after, "ledger_projector_applied_event_age_seconds_sum") / aged
    assert 0 < mean_age < 60
    assert after.value("ledger_projector_lag_events") == 0
    assert (
        after.has("ledger_projector_lag_seconds")
        and after.value("ledger_projector_lag_seconds") == 0
    )
    assert after.has("ledger_projector_dead_lettered_events_total")
    assert after.value("ledger_projector_dead_lettered_events_total") == 0
    done = after.value("ledger_projector_rebuild_replayed_events", projection="account_balances")
    target = after.value("ledger_projector_rebuild_target_events", projection="account_balances")
    assert done == target > 0


def test_query_service_times_each_route(observed: Observed) -> None:
    before, after = observed.before["query"], observed.after["query"]
    routes = after.label_values("ledger_query_duration_seconds_count", "route")
    account = next(route for route in routes if route.startswith("/accounts/{account_id"))
    assert delta(before, after, "ledger_query_duration_seconds_count", route=account) >= 1
    assert any("transactions" in route for route in routes)
    assert any(route.startswith("/transfers/") for route in routes)
    assert delta(before, after, "ledger_query_read_your_writes_wait_seconds_count") >= 1
    assert after.value("ledger_query_projection_position") >= observed.transfer_position


def test_every_metric_of_the_dashboard_is_exposed_by_a_process(observed: Observed) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exposed = set().union(*(s.names for s in observed.after.values())) | PROMETHEUS_OWN
    named: dict[str, set[str]] = {}
    for title, expression in panel_expressions(dashboard):
        names = metric_names(expression)
        assert names, f"{title}: {expression} names no metric"
        for name in names:
            named.setdefault(name, set()).add(title)
    missing = {name: titles for name, titles in named.items() if name not in exposed}
    assert not missing, f"dashboard panels name metrics no process exposes: {missing}"
    # The questions the dashboard is for: command rate and latency, both lags, errors.
    for needed in (
        "ledger_commands_total", "ledger_command_duration_seconds_bucket",
        "ledger_projector_lag_events", "ledger_projector_lag_seconds", "ledger_relay_lag_events",
        "ledger_saga_lag_events", "ledger_projector_dead_lettered_events_total",
        "ledger_http_responses_total",
    ):  # fmt: skip
        assert needed in named, needed


def test_the_promql_reader_finds_metric_names() -> None:
    expression = (
        "histogram_quantile(0.99, sum by (le, route) (rate(ledger_query_duration_seconds_bucket"
        '{route=~"/a.*", code!="5xx"}[1m]))) / ignoring(x) rate(up[5m]) > bool 1e3'
    )
    assert metric_names(expression) == {"ledger_query_duration_seconds_bucket", "up"}


def _status(observed: Observed, **ports: int) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.endswith("_PORT")}
    env["DATABASE_URL"] = observed.database_url
    for name, process in observed.stack.processes.items():
        env[SERVICES[name][1]] = str(ports.get(name, process.port))
    return subprocess.run(
        [sys.executable, "-m", "ops.health"], cwd=PROJECT_ROOT, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_make_status_prints_health_head_and_each_projections_lag(observed: Observed) -> None:
    shown = _status(observed)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    lines = shown.stdout.splitlines()
    for name in SERVICES:
        [line] = [line for line in lines if line.startswith(f"{name} ") and "http://" in line]
        assert " ready " in f"{line} ", line
    assert f"event store head: position {observed.head}" in shown.stdout
    with psycopg.connect(observed.database_url) as conn:
        rows = conn.execute("SELECT projection FROM projection_checkpoints").fetchall()
    projections = [str(row[0]) for row in rows]
    assert projections
    for projection in projections:
        [line] = [line for line in lines if line.startswith(f"{projection} ")]
        assert line.split()[1:3] == [str(observed.head), "0"], line

    # A process that does not answer is shown, and the status fails.
    down = _status(observed, query=free_port())
    assert down.returncode == 1
    [query] = [line for line in down.stdout.splitlines() if line.startswith("query  ")]
    assert "NOT READY" in query and "no answer" in query


def test_logs_of_the_stack_are_json_lines_at_the_configured_level(observed: Observed) -> None:
    for process in observed.stack.processes.values():
        text = Path(process.log_path).read_text(encoding="utf-8")
        for line in text.splitlines():
            record = json.loads(line)
            for key in ("time", "level", "process", "message", "trace_id", "span_id"):
                assert key in record, (process.name, line)
            assert "correlation_id" in record
            assert record["level"] != "DEBUG", line  # LOG_LEVEL=INFO


def test_with_tracing_off_no_trace_context_is_stored_or_logged(observed: Observed) -> None:
    with psycopg.connect(observed.database_url) as conn:
        states = [bytes(row[0]) for row in conn.execute(f"SELECT state FROM {EVENTS_TABLE}")]
    assert len(states) == observed.head
    assert not any(b"traceparent" in state for state in states)
    for process in observed.stack.processes.values():
        for line in process.logs().splitlines():
            assert json.loads(line)["trace_id"] is None, line
