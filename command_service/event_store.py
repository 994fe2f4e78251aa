"""The event store: the eventsourcing library's PostgreSQL recorder with msgspec encoding.

Events are stored under their published wire name (``TOPIC``) with their
msgspec JSON bytes as the state, so the relay can forward stored bytes to
Redis unchanged and the projector decodes exactly what was written.
Snapshots are private to the command side: they hold an encoded
:class:`~command_service.domain.account.Account` and never leave this process.

Snapshot v2 adds the account's pending transfers. A v1 snapshot decodes as a
v2 with none pending, which is exactly true: the code that wrote v1 snapshots
never recorded a transfer leg. So v1 snapshots are upcast in place rather
than ignored, and an existing database keeps its fast loads.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, ClassVar, TypeVar, cast
from urllib.parse import unquote, urlsplit
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, PersistenceError, StoredEvent, Transcoder
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import get_topic, register_topic

from command_service.bulk_loading import load_streams
from command_service.bus.aggregates import AggregateType
from command_service.domain import transfer as transfers
from command_service.domain.account import Account, apply
from command_service.domain.transfer import Transfer
from command_service.errors import UnreadableSnapshot
from command_service.recorder import (
    CommandRecord,
    LedgerRecorder,
    RecordedCommand,
    recorded_commands,
)
from shared_kernel.language.events import LedgerEvent, decode_event, encode_event, utc_now
from shared_kernel.observability import mask_secrets, redacted_url
from shared_kernel.pools import event_store_pool_env
from shared_kernel.settings import EVENT_STORE_NAME

T = TypeVar("T")
log = logging.getLogger(__name__)


class AccountSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The encoded state of an account at one version."""

    TOPIC: ClassVar[str] = "ledger.AccountSnapshot.v2"

    originator_id: UUID
    originator_version: int
    timestamp: datetime = msgspec.field(default_factory=utc_now)
    state: Account

    @classmethod
    def take(cls, account: Account) -> AccountSnapshot:
        return cls(originator_id=account.id, originator_version=account.version, state=account)


#: Every snapshot topic this code reads; v1 lacks ``pending_transfers`` (decoded as none).
SNAPSHOT_TOPICS = frozenset({"ledger.AccountSnapshot.v1", AccountSnapshot.TOPIC})
SNAPSHOT_TOPIC_PREFIX = "ledger.AccountSnapshot."
for _topic in SNAPSHOT_TOPICS:
    register_topic(_topic, AccountSnapshot)
_snapshot_decoder = msgspec.json.Decoder(AccountSnapshot)
_snapshot_encoder = msgspec.json.Encoder()


def project_account(
    account: Account | None, events: Iterable[LedgerEvent | AccountSnapshot]
) -> Account | None:
    """Repository projector: start from a snapshot when one comes first, then fold."""
    for event in events:
        if isinstance(event, AccountSnapshot):
            account = event.state
            continue
        account = apply(account, event)
    return account


class MsgspecMapper(Mapper[UUID]):
    """Maps events to rows by wire name and msgspec JSON, never by Python class path."""

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        if isinstance(domain_event, AccountSnapshot):
            topic, state = AccountSnapshot.TOPIC, _snapshot_encoder.encode(domain_event)
        else:
            event = cast(LedgerEvent, domain_event)
            topic, state = event.TOPIC, encode_event(event)
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=topic,
            state=state,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        state = bytes(stored_event.state)
        topic = stored_event.topic
        if topic.startswith(SNAPSHOT_TOPIC_PREFIX):
            if topic not in SNAPSHOT_TOPICS:
                raise UnreadableSnapshot(f"{topic} is a snapshot version this code does not know")
            try:
                return cast(DomainEventProtocol[UUID], _snapshot_decoder.decode(state))
            except msgspec.MsgspecError as error:
                raise UnreadableSnapshot(f"{topic} does not decode: {error}") from error
        return cast(DomainEventProtocol[UUID], decode_event(topic, state))


class UnusedTranscoder(Transcoder):
    """The mapper encodes with msgspec itself; the library still asks for a transcoder."""

    def encode(self, obj: Any) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> Any:
        raise NotImplementedError


class LedgerEventStore(Application[UUID]):
    """The ledger's event store: ``ledger_events`` and ``ledger_snapshots`` in PostgreSQL.

    Tables come from ``schema/sql`` (``make migrate``); the library is told not
    to create them.
    """

    name = EVENT_STORE_NAME
    snapshot_class = AccountSnapshot  # type: ignore[assignment]
    env: ClassVar[dict[str, str]] = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "MAPPER_TOPIC": get_topic(MsgspecMapper),
        "TRANSCODER_TOPIC": get_topic(UnusedTranscoder),
        "APPLICATION_RECORDER_TOPIC": get_topic(LedgerRecorder),
        "IS_SNAPSHOTTING_ENABLED": "y",
        "CREATE_TABLE": "no",
    }

    def record(
        self,
        events: Iterable[LedgerEvent],
        commands: Iterable[CommandRecord] = (),
        snapshots: Iterable[Account] = (),
    ) -> list[int]:
        """Save ``events``, the ids of the ``commands`` behind them and ``snapshots``
        of accounts as those events leave them, in one statement and one transaction.

        Positions of the events, in order. Raises ``IntegrityError`` when an
        event's version is taken (another writer) or a command was recorded
        before (:func:`~command_service.recorder.refused_by_recorded_command`).
        A snapshot shares its events' fate: a refused append leaves none.
        """
        snapshot_rows = [self.mapper.to_stored_event(AccountSnapshot.take(a)) for a in snapshots]
        # The library's event store, not ``Application.save``: that one first asks of each
        # event ``isinstance(event, DomainEventProtocol)``, a runtime protocol check of
        # about 9 us, then takes snapshots of and notifies about aggregates, of which
        # these are none (the writer passes events and takes its own snapshots).
        recordings = self.events.put(list(events), commands=list(commands), snapshots=snapshot_rows)
        return [recording.notification.id for recording in recordings]

    def recorded(
        self, command_ids: Iterable[UUID], *, settle_seconds: float | None = None
    ) -> dict[UUID, RecordedCommand]:
        """Which of ``command_ids`` are recorded (see :func:`recorded_commands`)."""
        return recorded_commands(self._datastore(), command_ids, settle_seconds=settle_seconds)

    def get_account(self, account_id: UUID, version: int | None = None) -> Account:
        """The account from its latest snapshot (at or below ``version``) plus the tail.

        A snapshot this code cannot read (written by another version of the
        account's state) is passed over: the account is folded from its events.
        """
        try:
            account: Account = self.repository.get(
                account_id, version=version, projector_func=project_account
            )
        except UnreadableSnapshot as error:
            log.warning(
                "snapshot unreadable; folding the account from its events",
                extra={"account_id": str(account_id), "error": str(error)},
            )
            events = cast(Iterable[LedgerEvent], self.events.get(account_id, lte=version))
            folded = project_account(None, events)
            if folded is None:
                raise AggregateNotFoundError(account_id) from None
            return folded
        return account

    def get_streams(self, kind: AggregateType, ids: Iterable[UUID]) -> dict[UUID, Any]:
        """Many aggregates of ``kind`` in one statement (:mod:`command_service.bulk_loading`),
        each from its latest snapshot (when ``kind`` has them) plus the tail; None for an id
        that names no stream."""
        return load_streams(
            self._datastore(), self.mapper, ids, kind.load_fold, snapshots=kind.snapshotted
        )

    def get_accounts(self, account_ids: Iterable[UUID]) -> dict[UUID, Account | None]:
        """Many accounts in one statement; None for an id that names no account."""
        return load_streams(
            self._datastore(), self.mapper, account_ids, project_account, snapshots=True
        )

    def get_transfers(self, transfer_ids: Iterable[UUID]) -> dict[UUID, Transfer | None]:
        """Many transfers in one statement; None for an id that names no transfer."""
        return load_streams(
            self._datastore(), self.mapper, transfer_ids, transfers.fold, snapshots=False
        )

    def _datastore(self) -> PostgresDatastore:
        recorder = self.recorder
        assert isinstance(recorder, PostgresApplicationRecorder)
        return recorder.datastore

    def get_transfer(self, transfer_id: UUID) -> Transfer | None:
        """The transfer folded from its whole stream (a few events; never snapshotted)."""
        events = cast(Iterable[LedgerEvent], self.events.get(transfer_id))
        return transfers.fold(None, events)


def event_store_env(database_url: str, pool_size: int = 5, cache_size: int = 0) -> dict[str, str]:
    """The library's POSTGRES_* settings, derived from one ``DATABASE_URL``."""
    parts = urlsplit(database_url)
    env = {
        "POSTGRES_DBNAME": parts.path.lstrip("/"),
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        # The library insists on a password even under trust authentication.
        "POSTGRES_PASSWORD": unquote(parts.password or "unused"),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size * 2),
        **event_store_pool_env(),  # checked connections, bounded waits (shared_kernel.pools)
    }
    if cache_size > 0:
        env["AGGREGATE_CACHE_MAXSIZE"] = str(cache_size)
    return env


def build_or_exit(process_name: str, database_url: str, build: Callable[[], T]) -> T:
    """``build()``, or one line on stderr and exit 1 when the event store is unusable.

    The store's recorder connects when it is built, so a process that builds one
    at start-up says here, rather than in a traceback, that PostgreSQL is missing.
    """
    try:
        return build()
    except PersistenceError as error:
        print(
            f"{process_name}: cannot use the event store at {redacted_url(database_url)}:"
            f" {mask_secrets(str(error))}",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
