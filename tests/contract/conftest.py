"""One stack for every contract test: the ledger's processes on a scratch database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.infra import scratch_database, unique_stream_name
from tests.support.processes import Stack

#: The projector's ADMIN_TOKEN in these tests.
ADMIN_TOKEN = "contract-token"


@pytest.fixture(scope="package")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with scratch_database() as url:
        stack = Stack(
            database_url=url,
            stream_name=unique_stream_name(),
            log_dir=tmp_path_factory.mktemp("contract"),
            # A far min_position answers 412 after this wait: keep the generated ones quick.
            extra_env={"MAX_WAIT_SECONDS": "0.05", "ADMIN_TOKEN": ADMIN_TOKEN},
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
