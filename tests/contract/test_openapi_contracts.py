"""Schemathesis against the real services' own OpenAPI documents: every contract holds.

The command and query services and the projector's admin routes (with the
relay and saga, so what the commands write becomes readable) run on a scratch
database. Schemathesis reads each ``/schema``, sends generated valid and
invalid requests and follows the documented links (stateful phase), and
checks every answer: no 5xx, a documented status, content type, body schema
and headers, and invalid data refused. The CLI is the well-kept runner; its
exit status is the verdict.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.contract.conftest import ADMIN_TOKEN
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
#: Examples per operation and phase: enough to reach every status and for the stateful
#: phase to follow links from an opened account, small enough for 2 cores.
EXAMPLES = "15"
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


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


ALL_PHASES = ("--phases", "examples,coverage,fuzzing,stateful")
WITH_TOKEN = ("--header", f"Authorization: Bearer {ADMIN_TOKEN}")


@pytest.mark.parametrize(
    ("service", "options", "least"),
    [
        ("command", ALL_PHASES, 100),
        # The coverage phase fails here on Schemathesis false positives (see the README).
        ("query", ("--phases", "examples,fuzzing,stateful"), 100),
        ("projector", (*ALL_PHASES, *WITH_TOKEN), 50),
        # Without the token every admin answer is the documented 401 problem.
        (
            "projector",
            ("--phases", "examples,coverage,fuzzing", "--include-path-regex", "^/admin"),
            20,
        ),
    ],
    ids=["command", "query", "projector-admin", "projector-admin-without-token"],
)
def test_every_answer_keeps_the_documented_contract(
    services: Stack, tmp_path: Path, service: str, options: tuple[str, ...], least: int
) -> None:
    process = services.process(service)
    status, report = run_schemathesis(process.url, tmp_path, *options)
    print(report)
    # The service's own log says why it answered 5xx.
    assert status == 0, f"{report}\n--- {service} log ---\n{process.logs()}"
    assert generated(report) > least
    if "stateful" in options[options.index("--phases") + 1]:
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
    admin = httpx.get(f"{services.process('projector').url}/schema").json()
    assert admin["components"]["securitySchemes"]["adminToken"]["scheme"] == "bearer"
    rebuild = admin["paths"]["/admin/projections/{name}/rebuild"]["post"]
    assert rebuild["operationId"] == "rebuildProjection"
    assert rebuild["security"] == [{"adminToken": []}]
    assert {"202", "401", "403", "404", "409", "503"} <= set(rebuild["responses"])
    refused = rebuild["responses"]["401"]
    assert "application/problem+json" in refused["content"]
    assert "WWW-Authenticate" in refused["headers"]


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
