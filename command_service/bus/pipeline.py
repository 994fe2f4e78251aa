"""The bus's pipeline: behaviours around the dispatch of any command.

A behaviour receives the command and the rest of the pipeline, and may act
before, after or instead of it (time it, trace it, refuse it). The last
step queues the command for the writer thread (:mod:`.batching`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from command_service.commands import Command
from command_service.pending import Result

Dispatch = Callable[[Command[Any]], Awaitable[Result]]
Behaviour = Callable[[Command[Any], Dispatch], Awaitable[Result]]


def compose(behaviours: Iterable[Behaviour], last: Dispatch) -> Dispatch:
    """``last`` inside ``behaviours``, the first one outermost."""
    dispatch = last
    for behaviour in reversed(list(behaviours)):
        dispatch = functools.partial(_around, behaviour, dispatch)
    return dispatch


async def _around(behaviour: Behaviour, inner: Dispatch, command: Command[Any]) -> Result:
    return await behaviour(command, inner)
