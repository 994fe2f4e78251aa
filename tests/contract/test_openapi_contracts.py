"""Schemathesis against the real services' own OpenAPI documents: every contract holds.

The command and query services (with the relay, saga and projector, so what
the commands write becomes readable) run on a scratch database. Schemathesis
reads each ``/schema``, sends generated valid and invalid requests and
follows the documented links (stateful phase), and checks every answer: no
5xx, a documented status, content type, body schema and headers, and invalid
data refused. The CLI is the well-kept runner; its exit status is the verdict.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.infra import scratch_database, unique_stream_name
from tests.support.processes import Stack

pytestmark = pytest.mark.processes

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
        "negative_data_rejection",
    )
)
#: Examples per operation and phase: enough to reach every status, small enough for 2 cores.
EXAMPLES = "10"
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with scratch_database() as url:
        stack = Stack(
            database_url=url,
            stream_name=unique_stream_name(),
            log_dir=tmp_path_factory.mktemp("contract"),
            # A far min_position answers 412 after this wait: keep the generated ones quick.
            extra_env={"MAX_WAIT_SECONDS": "0.05", "ADMIN_TOKEN": "contract-token"},
        )
        query = stack.process("query")
        stack.extra_env["QUERY_SERVICE_PUBLIC_URL"] = query.url
        try:
            stack.start("query", "command", "relay", "saga", "projector")
            yield stack
        except BaseException:
            print(stack.logs())
            raise
        finally:
            stack.stop()


def run_schemathesis(base_url: str, tmp_path: Path, *options: str) -> tuple[int, str]:
    """Schemathesis's exit status and report for the service at ``base_url``."""
    answer = subprocess.run(
        [
            SCHEMATHESIS, "run", f"{base_url}/schema/openapi.json",
            "--checks", CHECKS, "--max-examples", EXAMPLES, "--workers", "1",
            "--seed", "1", "--exclude-path", "/metrics", "--suppress-health-check", "all",
            *options,
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    return answer.returncode, answer.stdout + answer.stderr


def generated(report: str) -> int:
    found = re.search(r"(\d+) generated, (\d+) passed", report)
    assert found is not None, report
    return int(found.group(1))


@pytest.mark.parametrize(
    ("service", "phases"),
    [
        ("command", "examples,coverage,fuzzing,stateful"),
        ("query", "examples,fuzzing,stateful"),
    ],
)
def test_every_answer_keeps_the_documented_contract(
    services: Stack, tmp_path: Path, service: str, phases: str
) -> None:
    status, report = run_schemathesis(services.process(service).url, tmp_path, "--phases", phases)
    print(report)
    assert status == 0, report
    assert generated(report) > 100
    assert "0 covered" not in report, "the stateful phase followed no link"


def test_the_documents_declare_what_the_wire_carries(services: Stack) -> None:
    command = httpx.get(f"{services.process('command').url}/schema").json()
    query = httpx.get(f"{services.process('query').url}/schema").json()
    opened = command["paths"]["/accounts"]["post"]["responses"]["201"]
    assert {"ETag", "Location", "X-Correlation-ID", "Idempotent-Replayed"} <= set(opened["headers"])
    assert {"deposit", "withdraw", "closeAccount"} <= set(opened["links"])
    assert command["components"]["schemas"]["MoneyRequest"]["additionalProperties"] is False
    account = query["paths"]["/accounts/{account_id}"]["get"]
    assert account["operationId"] == "getAccount"
    assert {"200", "304", "412", "503"} <= set(account["responses"])
    assert "X-Projection-Position" in account["responses"]["200"]["headers"]
    ready = query["paths"]["/health/ready"]["get"]["responses"]
    assert "503" in ready


def test_reads_are_conditional_and_commands_point_at_them(services: Stack) -> None:
    command, query = services.process("command").url, services.process("query").url
    opened = httpx.post(f"{command}/accounts", json={"owner": "ann", "currency": "EUR"})
    assert opened.status_code == 201, opened.text
    location, position = opened.headers["Location"], opened.json()["position"]
    assert location.startswith(query)
    read = httpx.get(location, params={"min_position": position})
    assert read.status_code == 200 and read.headers["ETag"] == '"1"'
    assert read.headers["X-Correlation-ID"]
    again = httpx.get(location, headers={"If-None-Match": 'W/"1"'})
    assert again.status_code == 304 and again.content == b""
    head = httpx.head(location)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["ETag"] == '"1"'
    stale = httpx.post(
        f"{command}/accounts/{opened.json()['account_id']}/deposits",
        json={"amount": 5},
        headers={"If-Match": '"7"'},
    )
    assert stale.status_code == 412 and stale.json()["current_version"] == 1


def test_parameters_are_validated_before_waiting_for_a_position(services: Stack) -> None:
    query = services.process("query").url
    answer = httpx.get(
        f"{query}/accounts",
        params={"status": "bogus"},
        headers={"X-Min-Position": str(2**62)},
        timeout=2.0,  # the wait would be MAX_WAIT_SECONDS; a 422 is immediate either way
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["instance"] == "/accounts"
