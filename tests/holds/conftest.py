"""Every process of the ledger per test module, on the module's own database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.processes import Stack, scratch_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # The saga's fallback poll only bounds how late a deadline may run.
    log_dir = tmp_path_factory.mktemp("holds")
    with scratch_stack(log_dir, TRANSFER_SAGA_POLL_SECONDS="0.2") as stack:
        yield stack.start("command", "saga", "relay", "projector", "query")
