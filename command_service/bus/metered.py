"""Metrics behaviour: every command counted by outcome and timed until it is answered."""

from __future__ import annotations

import logging
import time
from typing import Any

from command_service import metrics
from command_service.bus.pipeline import Dispatch
from command_service.bus.registry import command_name
from command_service.commands import Command
from command_service.domain.account import DomainError
from command_service.pending import Result
from shared_kernel.metric_children import child

log = logging.getLogger(__name__)


async def metered(command: Command[Any], proceed: Dispatch) -> Result:
    name = command_name(command)
    started = time.perf_counter()
    outcome = "ok"
    try:
        return await proceed(command)
    except DomainError as refusal:
        outcome = refusal.code
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "command refused",
                extra={
                    "command": name,
                    "code": refusal.code,
                    "stream_id": str(command.stream_id),
                    "correlation_id": command.correlation_id,
                },
            )
        raise
    except Exception as error:
        outcome = str(getattr(error, "code", type(error).__name__))
        raise
    finally:
        child(metrics.COMMANDS, name, outcome).inc()
        child(metrics.COMMAND_DURATION, name).observe(time.perf_counter() - started)
