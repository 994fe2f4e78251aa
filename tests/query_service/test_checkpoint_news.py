"""What a batch's NOTIFY settles on its own, and what only a re-read may settle.

Pure rules of :mod:`shared_kernel.checkpoint_news`; the query service acting on them
is in ``test_read_your_writes``.
"""

from __future__ import annotations

import pytest

from shared_kernel.checkpoint_news import checkpoints_advanced, positions_told


def test_a_batch_of_one_partition_that_blocked_nothing_tells_its_positions() -> None:
    news = checkpoints_advanced(
        42, ["account_balances", "transfers"], partition=0, partitions=1, blocked=False
    )

    assert positions_told(news) == {"account_balances": 42, "transfers": 42}


@pytest.mark.parametrize(
    ("partition", "partitions", "blocked"),
    [(0, 1, True), (0, 2, False), (1, 2, False), (1, 3, True)],
    ids=["blocked a stream", "partition 0 of 2", "partition 1 of 2", "both"],
)
def test_a_batch_with_new_blocks_or_of_several_partitions_asks_for_a_re_read(
    partition: int, partitions: int, blocked: bool
) -> None:
    news = checkpoints_advanced(
        42, ["account_balances"], partition=partition, partitions=partitions, blocked=blocked
    )

    assert positions_told(news) is None


@pytest.mark.parametrize(
    "payload",
    ["42", "", "not json", '{"position": "42", "projections": []}', '{"projections": []}',
     '{"position": 42}', "[42]"],
)  # fmt: skip
def test_a_bare_number_or_anything_malformed_is_a_doorbell(payload: str) -> None:
    assert positions_told(payload) is None


def test_the_payload_stays_far_below_the_notify_limit() -> None:
    names = [f"projection_with_a_long_name_{k}" for k in range(40)]

    news = checkpoints_advanced(2**62, names, partition=7, partitions=8, blocked=True)

    assert len(news.encode()) < 8000
