"""Tracing behaviour: each command in its own span, its events carrying the trace context."""

from __future__ import annotations

from typing import Any

from command_service import command_spans
from command_service.bus.pipeline import Dispatch
from command_service.commands import Command
from command_service.pending import Result


async def traced(command: Command[Any], proceed: Dispatch) -> Result:
    return await command_spans.traced(command, proceed)
