"""A command waiting for the writer thread: what its caller awaits, and its attempts so far."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from command_service import command_spans
from command_service.commands import Command

#: What a command is answered with: the ``R`` of its ``Command[R]``.
Result = Any
Outcome = Result | BaseException


@dataclass(slots=True, eq=False)
class Pending:
    """A submitted command, the future its caller awaits, and how its attempts went."""

    command: Command[Any]
    #: Where an async caller awaits the answer (None for a caller in the writer's thread).
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[Result] | None = None
    submitted_at: float = field(default_factory=time.perf_counter)
    #: Saves refused because of this command's own stream (another writer moved it).
    conflicts: int = 0
    #: Saves that failed for a reason of the store's (an outage, an unknown outcome).
    outages: int = 0
    #: Later attempts at the same command (same command id) in the same batch: they
    #: get this command's answer, since one command is recorded at most once.
    repeats: list[Pending] = field(default_factory=list)
    #: Only when tracing: where the writer thread tells the command's span its batch.
    trace: command_spans.CommandTrace | None = None
