"""The library's PostgreSQL recorder, appending through the project's one-statement function.

Exactly once by construction: an append writes one ``ledger_commands`` row
per command it records, in the same transaction as the events and under the
same table lock, so the primary key on the command id refuses a second
recording of one command, whoever attempts it. The refusal is an
``IntegrityError`` like a version conflict; :func:`refused_by_recorded_command`
tells the two apart by the constraint that fired.

The row says where the command's event went, so when an append's outcome is
unknown (a lost COMMIT reply, a cut connection) :func:`recorded_commands`
finds out from the store, after waiting for any append still in flight to end.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
)
from eventsourcing.utils import retry

from shared_kernel.pools import adopt_library_pool
from shared_kernel.settings import EVENTS_TABLE

COMMANDS_TABLE = "ledger_commands"
COMMANDS_KEY = f"{COMMANDS_TABLE}_pkey"

#: The arrays go in PostgreSQL's binary format (``%b``): psycopg writes the text form of
#: an array element by element in Python, quoting and hex-escaping each event's bytes
#: (136 us for 15 events' states, 32 us for 15 ids), the binary form in about 6 us each.
_APPEND = (
    "SELECT notification_id FROM ledger_append("
    "%b::uuid[], %b::bigint[], %b::text[], %b::bytea[],"
    " %b::uuid[], %b::uuid[], %b::bigint[],"
    " %b::uuid[], %b::bigint[], %b::text[], %b::bytea[], %s) AS notification_id"
)
_SELECT_RECORDED = (
    "SELECT c.command_id, c.originator_id, c.originator_version, e.notification_id"
    f" FROM {COMMANDS_TABLE} c JOIN {EVENTS_TABLE} e"
    " USING (originator_id, originator_version) WHERE c.command_id = ANY(%s)"
)
#: SHARE conflicts with the EXCLUSIVE lock every append holds until it ends, so
#: once granted, no append that started earlier is still undecided.
_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '{:.0f}ms'"
_SETTLE = f"LOCK TABLE {EVENTS_TABLE} IN SHARE MODE"


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """What an append writes for one command: its id and its (first) event's key."""

    command_id: UUID
    stream_id: UUID
    version: int


@dataclass(frozen=True, slots=True)
class RecordedCommand:
    """A command the store holds: where its event is, and its global position."""

    command_id: UUID
    stream_id: UUID
    version: int
    position: int


class LedgerRecorder(PostgresApplicationRecorder):
    """Appends events, the command ids behind them and any snapshots due, in one statement.

    ``store.events.put(events, commands=[CommandRecord, ...], snapshots=[StoredEvent, ...])``
    passes the extra rows through the library's keyword arguments to here, and
    the project's ``ledger_append`` function (schema/sql/011_append_function.sql)
    writes them all on an autocommit connection: one round trip, the table lock
    held only while the server works.
    """

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        # Before the library opens the pool (it does so below): the project's pool policy.
        adopt_library_pool(datastore.pool)
        super().__init__(datastore, events_table_name=events_table_name)

    #: The library retries a failed append 10 times, each waiting up to the pool's
    #: timeout: over 20 s of a blocked writer in an outage. Three attempts ride out a
    #: dropped connection; beyond that the writer asks the store what was recorded.
    @retry((InterfaceError, OperationalError), max_attempts=3, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        if not stored_events:
            return []
        commands: Sequence[CommandRecord] = kwargs.get("commands") or ()
        snapshots: Sequence[StoredEvent] = kwargs.get("snapshots") or ()
        params = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
            [c.command_id for c in commands],
            [c.stream_id for c in commands],
            [c.version for c in commands],
            [s.originator_id for s in snapshots],
            [s.originator_version for s in snapshots],
            [s.topic for s in snapshots],
            [s.state for s in snapshots],
            f"{self.datastore.lock_timeout}s",
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            assert conn.autocommit  # the statement is its own transaction
            curs.execute(_APPEND, params, prepare=True)
            return [row["notification_id"] for row in curs.fetchall()]


def refused_by_recorded_command(error: IntegrityError) -> bool:
    """True when an append failed because one of its commands was recorded before."""
    cause = error.__cause__
    diag = getattr(cause, "diag", None)
    return getattr(diag, "constraint_name", None) == COMMANDS_KEY


def recorded_commands(
    datastore: PostgresDatastore,
    command_ids: Iterable[UUID],
    *,
    settle_seconds: float | None = None,
) -> dict[UUID, RecordedCommand]:
    """Which of ``command_ids`` the store recorded, and where.

    With ``settle_seconds``, first wait (that long at most) until every append
    that began earlier has committed or rolled back, so the answer cannot be
    overtaken by a commit still in flight: what is missing then was not recorded.
    """
    ids = list(dict.fromkeys(command_ids))
    if not ids:
        return {}
    with datastore.transaction(commit=False) as curs:
        if settle_seconds is not None:
            curs.execute(_LOCK_TIMEOUT.format(max(settle_seconds * 1000, 1)))
            curs.execute(_SETTLE)
        curs.execute(_SELECT_RECORDED, (ids,), prepare=True)
        rows = curs.fetchall()
    return {
        row["command_id"]: RecordedCommand(
            row["command_id"],
            row["originator_id"],
            int(row["originator_version"]),
            int(row["notification_id"]),
        )
        for row in rows
    }
