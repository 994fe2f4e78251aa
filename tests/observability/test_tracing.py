"""One trace from an HTTP command to the read model, across the real processes; no secrets in logs.

The processes run with ``LEDGER_TRACE_FILE``: each appends its finished spans
to one JSON-lines file (the SDK's console exporter pointed at a file), which
the test reads. The client sends a W3C ``traceparent``, so the trace id to
look for is the test's own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from shared_kernel.settings import EVENTS_TABLE
from tests.support.processes import Stack
from tests.support.reference_fold import wait_until_projected
from tests.support.streams import wait_for
from tests.transfers.commands import open_account

pytestmark = pytest.mark.processes

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRANSFER_TRACE_ID = "5c1e2d3f4a5b6c7d8e9f0a1b2c3d4e5f"
CORRELATION_ID = "obs-correlation-1"
#: What must never reach a log line or a span: a body value and a credential.
SECRETS = ("REF-7731-body-value", "tok-SECRET-4242", "Zebediah-Quux", "NaN-PAYLOAD-99")


@dataclass(frozen=True)
class Span:
    name: str
    service: str
    trace_id: str
    span_id: str
    parent_id: str | None
    kind: str
    links: tuple[tuple[str, str], ...]
    attributes: dict[str, Any]


def _hex(value: str | None) -> str | None:
    return value.removeprefix("0x") if value else None


def read_spans(path: Path) -> list[Span]:
    if not path.exists():
        return []
    spans = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        raw = json.loads(line)
        spans.append(
            Span(
                name=raw["name"],
                service=raw["resource"]["attributes"]["service.name"],
                trace_id=str(_hex(raw["context"]["trace_id"])),
                span_id=str(_hex(raw["context"]["span_id"])),
                parent_id=_hex(raw["parent_id"]),
                kind=raw["kind"].removeprefix("SpanKind."),
                links=tuple(
                    (str(_hex(link["context"]["trace_id"])), str(_hex(link["context"]["span_id"])))
                    for link in raw["links"]
                ),
                attributes=raw["attributes"],
            )
        )
    return spans


def one(spans: list[Span], **wanted: Any) -> Span:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in wanted.items())]
    assert len(found) == 1, f"{wanted}: {found}"
    return found[0]


def children(spans: list[Span], parent: Span) -> list[Span]:
    return [s for s in spans if s.parent_id == parent.span_id and s.trace_id == parent.trace_id]


def descendants(spans: list[Span], parent: Span) -> list[Span]:
    found, frontier = [], children(spans, parent)
    while frontier:
        found.extend(frontier)
        frontier = [child for span in frontier for child in children(spans, span)]
    return found


def linked(spans: list[Span], link: tuple[str, str]) -> Span:
    return one(spans, trace_id=link[0], span_id=link[1])


def stored_traceparents(database_url: str) -> dict[int, str | None]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(f"SELECT notification_id, state FROM {EVENTS_TABLE}").fetchall()
    return {int(at): json.loads(bytes(state))["metadata"].get("traceparent") for at, state in rows}


@pytest.fixture
def traced(stack: Stack, tmp_path: Path) -> tuple[Stack, Path]:
    spans = tmp_path / "spans.jsonl"
    stack.extra_env.update(
        LEDGER_TRACE_FILE=str(spans), OTEL_BSP_SCHEDULE_DELAY="100", LOG_LEVEL="DEBUG"
    )
    stack.start()
    return stack, spans


def test_the_projectors_spans_belong_to_the_commands_trace(
    traced: tuple[Stack, Path], database_url: str
) -> None:
    stack, path = traced
    command = stack.process("command").url
    with httpx.Client(base_url=command, timeout=15) as client:
        source = open_account(client, deposit=1_000)
        target = open_account(client)
        deposited = client.post(
            f"/accounts/{source}/deposits",
            json={"amount": 250},
            headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"},
        )
        assert deposited.status_code == 200, deposited.text
        position = int(deposited.json()["position"])
        requested = client.post(
            "/transfers",
            json={"from_account": source, "to_account": target, "amount": 100},
            headers={"traceparent": f"00-{TRANSFER_TRACE_ID}-{CLIENT_SPAN}-01"},
        )
        assert requested.status_code == 202, requested.text
    wait_until_projected(database_url, position)

    def projected(trace_id: str, count: int, name: str = "ledger.projector.apply") -> bool:
        return (
            len([s for s in read_spans(path) if s.trace_id == trace_id
                 and s.name == name]) >= count
        )  # fmt: skip

    # Each process exports on its own schedule, the command service's request span last
    # (it ends after the response is sent): wait for every process's span.
    wait_for(
        lambda: projected(TRACE_ID, 1) and projected(TRACE_ID, 1, "ledger.relay.publish")
        and projected(TRACE_ID, 1, "POST /accounts/{account_id}/deposits"),
        timeout=30,
        what="the command service's, the relay's and the projector's spans exported",
    )
    spans = read_spans(path)

    # The command service: request span (child of the client's), command span, its batch.
    server = one(spans, trace_id=TRACE_ID, kind="SERVER", service="command_service")
    assert server.parent_id == CLIENT_SPAN
    assert server.name == "POST /accounts/{account_id}/deposits"
    command_span = one(spans, trace_id=TRACE_ID, name="ledger.command deposit_money")
    assert command_span.parent_id == server.span_id
    assert command_span.attributes["ledger.position"] == position
    # The event carries the command span's context in its metadata.
    traceparents = stored_traceparents(database_url)
    assert traceparents[position] == f"00-{TRACE_ID}-{command_span.span_id}-01"
    [batch_link] = command_span.links
    batch = linked(spans, batch_link)
    assert batch.name == "ledger.append_batch" and batch.service == "command_service"
    assert (TRACE_ID, command_span.span_id) in batch.links
    [save] = [s for s in children(spans, batch) if s.name == "ledger.save"]
    assert any(s.attributes.get("db.system") == "postgresql" for s in children(spans, save))

    # The relay: a span in the command's trace, linked to its batch with the XADD under it.
    published = one(spans, trace_id=TRACE_ID, name="ledger.relay.publish")
    assert published.parent_id == command_span.span_id and published.service == "relay"
    assert published.attributes["ledger.position"] == position
    relay_batch = linked(spans, published.links[0])
    assert relay_batch.name == "ledger.relay.publish_batch"
    assert (TRACE_ID, command_span.span_id) in relay_batch.links
    # One pipeline of XADDs, one per event of the batch (several when events came together).
    [xadds] = [s.name.split() for s in children(spans, relay_batch)]
    assert set(xadds) == {"XADD"} and len(xadds) == relay_batch.attributes["ledger.events"]

    # The projector: a span in the command's trace, linked to the batch that wrote the rows.
    applied = one(spans, trace_id=TRACE_ID, name="ledger.projector.apply")
    assert applied.parent_id == command_span.span_id and applied.service == "projector"
    assert applied.attributes["ledger.position"] == position
    assert applied.attributes["ledger.event_type"] == "ledger.MoneyDeposited.v2"
    apply_batch = linked(spans, applied.links[0])
    assert apply_batch.name == "ledger.projector.apply_batch"
    assert (TRACE_ID, command_span.span_id) in apply_batch.links
    writes = [str(s.attributes.get("db.statement", "")) for s in children(spans, apply_batch)]
    assert any("account_balances" in w for w in writes), writes
    assert any("projection_checkpoints" in w for w in writes), writes

    # A transfer: the saga's steps and legs join the request's trace.
    wait_for(
        lambda: projected(TRANSFER_TRACE_ID, 4) and stepped(path)
        and projected(TRANSFER_TRACE_ID, 1, "ledger.command request_transfer"),
        timeout=30, what="the transfer's steps and legs exported",
    )  # fmt: skip
    spans = read_spans(path)
    assert_transfer_traced(spans)

    # No span without a parent is a lone SQL or Redis call (those are not sampled).
    assert not [s for s in spans if s.parent_id is None and s.kind == "CLIENT"]


def stepped(path: Path) -> bool:
    """Both of the saga's steps of the transfer are exported."""
    names = {s.name for s in read_spans(path) if s.trace_id == TRANSFER_TRACE_ID}
    return {"ledger.saga.debit", "ledger.saga.credit"} <= names


def assert_transfer_traced(spans: list[Span]) -> None:
    """The saga's steps and the projector's apply of every leg are in the request's trace."""
    legs = {
        s.attributes["ledger.event_type"]
        for s in spans
        if s.trace_id == TRANSFER_TRACE_ID and s.name == "ledger.projector.apply"
    }
    assert {"ledger.TransferRequested.v1", "ledger.MoneyTransferredOut.v1",
            "ledger.MoneyTransferredIn.v1", "ledger.TransferCompleted.v1"} <= legs  # fmt: skip
    request = one(spans, trace_id=TRANSFER_TRACE_ID, name="ledger.command request_transfer")
    for step in ("debit", "credit"):
        stepped = one(spans, trace_id=TRANSFER_TRACE_ID, name=f"ledger.saga.{step}")
        assert stepped.parent_id == request.span_id and stepped.service == "transfer_saga"
        step_batch = linked(spans, stepped.links[0])
        assert step_batch.name == f"ledger.saga.{step}_batch"
        # Its SQL: the credit step decides on what the debit step loaded, so its only
        # statement is the append, under the save span.
        assert any(s.attributes.get("db.system") == "postgresql"
                   for s in descendants(spans, step_batch))  # fmt: skip


def test_logs_carry_trace_and_correlation_ids_and_no_secrets(
    traced: tuple[Stack, Path], database_url: str
) -> None:
    stack, path = traced
    command = stack.process("command")
    secret_headers = {"Authorization": "Bearer tok-SECRET-4242", "X-Correlation-ID": CORRELATION_ID}
    with httpx.Client(base_url=command.url, timeout=15, headers=secret_headers) as client:
        opened = client.post("/accounts", json={"owner": "Zebediah-Quux", "currency": "EUR"})
        assert opened.status_code == 201, opened.text
        account = opened.json()["account_id"]
        deposited = client.post(
            f"/accounts/{account}/deposits", json={"amount": 5, "reference": "REF-7731-body-value"}
        )
        assert deposited.status_code == 200, deposited.text
        refused = client.post(f"/accounts/{account}/withdrawals", json={"amount": 500})
        assert refused.status_code == 422
        invalid = client.post(f"/accounts/{account}/deposits", json={"amount": "NaN-PAYLOAD-99"})
        assert invalid.status_code in (400, 422)
    position = int(deposited.json()["position"])
    wait_until_projected(database_url, position)
    wait_for(
        lambda: any(s.name == "ledger.append_batch" for s in read_spans(path)),
        timeout=30, what="the append's span exported",
    )  # fmt: skip
    stack.stop()  # SIGTERM: each process flushes its last spans at exit

    lines = [json.loads(line) for line in command.logs().splitlines() if line.strip()]
    for record in lines:
        assert {"time", "level", "process", "message", "trace_id", "span_id"} <= record.keys()
        assert "correlation_id" in record and record["process"] == "command_service"
    assert any(record["level"] == "DEBUG" for record in lines)  # LOG_LEVEL=DEBUG
    # The appender logs inside the batch's span, with the request's correlation id.
    appended = [r for r in lines if r["message"] == "appended batch"]
    assert appended and all(r["correlation_id"] == CORRELATION_ID for r in appended)
    batch_traces = {s.trace_id for s in read_spans(path) if s.name == "ledger.append_batch"}
    assert {r["trace_id"] for r in appended} <= batch_traces
    refusal = one_record(lines, "command refused")
    assert refusal["correlation_id"] == CORRELATION_ID and refusal["trace_id"]

    everything = "\n".join(process.logs() for process in stack.processes.values())
    everything += path.read_text(encoding="utf-8")
    for secret in SECRETS:
        assert secret not in everything, secret


def one_record(lines: list[dict[str, Any]], message: str) -> dict[str, Any]:
    [record] = [r for r in lines if r["message"] == message]
    return record
