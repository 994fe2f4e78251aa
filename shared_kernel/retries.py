"""How a worker loop waits before it tries again after a failure.

The relay, the saga, the deadline runner and the projector retry whatever
failed (an outage or a bug) for ever: the pause grows from 50 ms with jitter,
so many processes that lost the same database do not all come back at once,
and is capped so that recovery is noticed within a couple of seconds.
"""

from __future__ import annotations

import asyncio

from redis.backoff import ExponentialWithJitterBackoff

#: The longest pause between two attempts.
RETRY_CAP_SECONDS = 2.0


class RetryPause:
    """The pause after each failure in a row; :meth:`recovered` starts the count again."""

    def __init__(self) -> None:
        self._backoff = ExponentialWithJitterBackoff(cap=RETRY_CAP_SECONDS, base=0.05)
        #: Failures since the loop last went well.
        self.failures = 0

    def recovered(self) -> None:
        self.failures = 0

    async def after_failure(self) -> None:
        """Wait the pause the failures so far earn, and count one more."""
        await asyncio.sleep(self._backoff.compute(self.failures))
        self.failures += 1
