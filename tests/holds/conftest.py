"""Every process of the ledger per test module, on the module's own database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.infra import scratch_database, unique_stream_name
from tests.support.processes import Stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with scratch_database() as url:
        stack = Stack(
            database_url=url,
            stream_name=unique_stream_name(),
            log_dir=tmp_path_factory.mktemp("holds"),
            # The saga's fallback poll only bounds how late a deadline may run.
            extra_env={"TRANSFER_SAGA_POLL_SECONDS": "0.2"},
        )
        stack.start("command", "saga", "relay", "projector", "query")
        yield stack
        stack.stop()
