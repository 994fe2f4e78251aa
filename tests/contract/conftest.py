"""One stack for every contract test: the ledger's processes on a scratch database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.processes import Stack, scratch_stack

#: The projector's ADMIN_TOKEN in these tests.
ADMIN_TOKEN = "contract-token"


@pytest.fixture(scope="package")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # A far min_position answers 412 after this wait: keep the generated ones quick.
    log_dir = tmp_path_factory.mktemp("contract")
    with scratch_stack(log_dir, MAX_WAIT_SECONDS="0.05", ADMIN_TOKEN=ADMIN_TOKEN) as stack:
        stack.extra_env["QUERY_SERVICE_PUBLIC_URL"] = stack.process("query").url
        yield stack.start("query", "command", "relay", "saga", "projector")
