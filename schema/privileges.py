"""What each process role may do with each table: the one place privileges are declared.

``make migrate`` applies this after every SQL file, on every run: for each
table it revokes what the roles had and grants what this table says, in the
migration's transaction, so an entry that loses a privilege takes it away and
nobody ever sees a half-granted schema. A table of the ``public`` schema with
no entry here stops the migration with its name: a new table is one line (none
for a projection's tables, which the projections' registry names).

Roles (``shared_kernel.settings.DatabaseRole``):

- writer: command service, transfer saga, outbox relay, ``make replay``,
  ``make republish``;
- projector: the projector, ``make rebuild``. It OWNS the read-model tables:
  a rebuild builds copies in a schema of its own and swaps them in with
  ``ALTER TABLE ... SET SCHEMA``, which only a table's owner may do (and only
  into a schema it may CREATE in, hence CREATE on the database and on
  ``public``);
- query: the query service, time travel (``as_of``, ``make replay AT=``),
  ``make status``. Read-only: SELECT on what it reads, TEMPORARY on the
  database for time travel's scratch tables, SELECT on ``ledger_events`` for
  the folds those need, nothing on snapshots, keys or commands.

LISTEN/NOTIFY and advisory locks need no privilege; sequences follow INSERT.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from projector.projections import PROJECTIONS
from shared_kernel.settings import DatabaseRole

#: In place of a privilege list: the role owns the table (and may alter or drop it).
OWNS: Final = "OWNER"

#: A read model: the projector owns it (rebuild swaps it), the query service reads it.
READ_MODEL: Final[Mapping[DatabaseRole, str]] = {"projector": OWNS, "query": "SELECT"}

TABLE_PRIVILEGES: Final[Mapping[str, Mapping[DatabaseRole, str]]] = {
    # The event store. The writer's UPDATE is not for updating: the eventsourcing
    # library takes LOCK TABLE ledger_events IN EXCLUSIVE MODE on every append,
    # which PostgreSQL allows only with UPDATE, DELETE or TRUNCATE. UPDATE is the
    # least of them, and the append-only trigger (schema/append_only.sql) refuses
    # the UPDATE itself to anyone but the owner.
    "ledger_events": {"writer": "SELECT, INSERT, UPDATE", "projector": "SELECT", "query": "SELECT"},
    "ledger_snapshots": {"writer": "SELECT, INSERT"},
    "ledger_commands": {"writer": "SELECT, INSERT"},
    "idempotency_keys": {"writer": "SELECT, INSERT, UPDATE, DELETE"},
    "saga_positions": {"writer": "SELECT, INSERT, UPDATE"},
    "scheduled_commands": {"writer": "SELECT, INSERT, DELETE"},
    # query: `make status` shows how far the relay has published.
    "relay_positions": {"writer": "SELECT, INSERT, UPDATE", "query": "SELECT"},
    "projection_checkpoints": {"projector": "SELECT, INSERT, UPDATE", "query": "SELECT"},
    "projection_rebuilds": {"projector": "SELECT, INSERT, UPDATE"},
    # Streams a projection refused: the projector blocks and (after a replay) unblocks
    # them; the query service answers reads of a blocked stream with a problem.
    "projection_blocks": {"projector": "SELECT, INSERT, UPDATE, DELETE", "query": "SELECT"},
    # Every table of every registered projection is a read model: a new projection
    # needs no line here.
    **{table: READ_MODEL for projection in PROJECTIONS for table in projection.TABLES},
    "schema_migrations": {},
}

#: Privileges on the database itself (PUBLIC keeps none of them).
DATABASE_PRIVILEGES: Final[Mapping[DatabaseRole, str]] = {
    "writer": "CONNECT",
    "projector": "CONNECT, CREATE",  # CREATE SCHEMA rebuild_<id>, retired_<id>
    "query": "CONNECT, TEMPORARY",  # time travel folds into TEMP tables
}

#: Privileges on schema ``public`` beyond the USAGE everyone has.
PUBLIC_SCHEMA_PRIVILEGES: Final[Mapping[DatabaseRole, str]] = {
    "projector": "CREATE",  # a rebuild's copies move into public at the swap
}


def owner_of(table: str) -> DatabaseRole | None:
    """The role that owns ``table``, or None when the migrating user keeps it."""
    owners = [role for role, what in TABLE_PRIVILEGES[table].items() if what == OWNS]
    return owners[0] if owners else None


def grants_on_owned_tables(owner: DatabaseRole) -> dict[DatabaseRole, str]:
    """What the other roles get on every table ``owner`` owns.

    A table a rebuild creates starts with no grants; the migration makes these
    the owner's default privileges, so the copy swapped in is readable at once.
    They must be the same for every table of one owner, or a swap would change
    who may read it.
    """
    found = {
        frozenset((r, w) for r, w in grants.items() if r != owner)
        for table, grants in TABLE_PRIVILEGES.items()
        if owner_of(table) == owner
    }
    if len(found) > 1:
        msg = f"tables owned by {owner} grant different privileges: {sorted(found, key=str)}"
        raise ValueError(msg)
    return dict(found.pop()) if found else {}
