"""Exactly-once, checked against the event store: each answered command, found by its key.

Every request's Idempotency-Key is also its correlation id, which every event
it caused carries. A command's own event (``AccountOpened`` for an open,
``MoneyDeposited`` for a deposit, ...) must be in the store exactly once if
the command was acknowledged (2xx), and not at all if it was refused (4xx);
an event of those kinds that no request can account for is as wrong. The
findings name the command, its account, amount and every copy's position, so
a failure says exactly what was doubled or lost.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from uuid import UUID

import psycopg

from shared_kernel.language.events import (
    AccountClosed,
    AccountOpened,
    LedgerEvent,
    MoneyDeposited,
    MoneyWithdrawn,
    TransferRequested,
)
from tests.chaos.load import Answered
from tests.support.reference_fold import stored_events

#: Where the command service registers each recorded command id (when the schema has it).
COMMANDS_TABLE = "ledger_commands"
#: The event a command of each kind records when it is accepted.
RECORDS: dict[str, type[LedgerEvent]] = {
    "open": AccountOpened,
    "deposit": MoneyDeposited,
    "withdrawal": MoneyWithdrawn,
    "transfer": TransferRequested,
    "close": AccountClosed,
}
_KIND_OF = {event_type: kind for kind, event_type in RECORDS.items()}


@dataclass
class Audit:
    acknowledged: int = 0
    refused: int = 0
    unanswered: int = 0
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    recorded_although_refused: list[str] = field(default_factory=list)
    unaccounted: list[str] = field(default_factory=list)
    unregistered: list[str] = field(default_factory=list)

    @property
    def findings(self) -> list[str]:
        """One line per finding, at most ``MOST_SHOWN`` of each kind (then how many more)."""
        return [
            *_shown("LOST (acknowledged, not in the store)", self.lost),
            *_shown("DOUBLED", self.doubled),
            *_shown("RECORDED ALTHOUGH REFUSED", self.recorded_although_refused),
            *_shown("RECORDED BY NO REQUEST", self.unaccounted),
            *_shown(f"NOT IN {COMMANDS_TABLE}", self.unregistered),
        ]


MOST_SHOWN = 20


def _shown(kind: str, lines: list[str]) -> list[str]:
    shown = [f"{kind}: {line}" for line in lines[:MOST_SHOWN]]
    if len(lines) > MOST_SHOWN:
        shown.append(f"{kind}: ... and {len(lines) - MOST_SHOWN} more")
    return shown


def recorded_by_key(database_url: str) -> dict[str, list[tuple[int, LedgerEvent]]]:
    """Per correlation id, the command events (position, event) it caused, in order."""
    found: dict[str, list[tuple[int, LedgerEvent]]] = defaultdict(list)
    for position, event in stored_events(database_url):
        if type(event) in _KIND_OF:
            found[event.metadata.correlation_id].append((position, event))
    return found


def registered_commands(database_url: str) -> dict[str, tuple[UUID, int]] | None:
    """command id -> (stream, version) of its event, from the table of recorded commands
    (None where the schema has no such table)."""
    with psycopg.connect(database_url) as conn:
        if conn.execute("SELECT to_regclass(%s)", (COMMANDS_TABLE,)).fetchone() == (None,):
            return None
        rows = conn.execute(
            f"SELECT command_id, originator_id, originator_version FROM {COMMANDS_TABLE}"
        ).fetchall()
    return {str(command_id): (stream, int(version)) for command_id, stream, version in rows}


def audit(database_url: str, answered: list[Answered]) -> Audit:
    """Every answered command against the store; see the module docstring."""
    recorded = recorded_by_key(database_url)
    registered = registered_commands(database_url)
    result = Audit()
    for answer in answered:
        copies = [
            (position, event)
            for position, event in recorded.pop(answer.key, [])
            if isinstance(event, RECORDS[answer.kind])
        ]
        described = _describe(answer, copies)
        _count(result, answer, len(copies), described)
        for position, event in copies if registered is not None else []:
            where = registered.get(event.metadata.causation_id) if registered else None
            if where != (event.originator_id, event.originator_version):
                result.unregistered.append(f"{described}; @{position} registered as {where}")
    for key, events in recorded.items():
        for position, event in events:
            result.unaccounted.append(
                f"{type(event).__name__} @{position} of {event.originator_id}"
                f" v{event.originator_version} with correlation id {key}"
            )
    return result


def _count(result: Audit, answer: Answered, copies: int, described: str) -> None:
    if answer.acknowledged:
        result.acknowledged += 1
        if copies == 0:
            result.lost.append(described)
        elif copies > 1:
            result.doubled.append(described)
    elif answer.refused:
        result.refused += 1
        if copies:
            result.recorded_although_refused.append(described)
    else:  # never answered: recorded once or not at all, either is right
        result.unanswered += 1
        if copies > 1:
            result.doubled.append(described)


def _describe(answer: Answered, copies: list[tuple[int, LedgerEvent]]) -> str:
    where = ", ".join(
        f"{type(e).__name__} @{position} v{e.originator_version}" for position, e in copies
    )
    return (
        f"{answer.kind} key={answer.key} account={answer.account_id} amount={answer.amount}"
        f" answered {answer.status} after {answer.attempts} attempt(s); in the store"
        f" {len(copies)}x: [{where}]"
    )
