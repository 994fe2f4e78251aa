"""Configuration from the environment, validated once at start-up.

Every process reads a subclass of :class:`CommonSettings`. A bad value stops
the process before it serves anything, with one line per problem naming the
environment variable, instead of a stack trace minutes later.
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared_kernel.partitions import dead_letter_stream, partition_streams

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["console", "json"]

#: The kinds of process, each with its own PostgreSQL role (granted by ``make migrate``).
DatabaseRole = Literal["writer", "projector", "query"]
DATABASE_ROLES: tuple[DatabaseRole, ...] = ("writer", "projector", "query")
#: The role each kind connects as when its ``<ROLE>_DATABASE_URL`` is not set.
DEFAULT_ROLE_NAMES: dict[DatabaseRole, str] = {
    "writer": "ledger_writer",
    "projector": "ledger_projector",
    "query": "ledger_query",
}
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ledger"


def url_as_role(database_url: str, role_name: str) -> str:
    """``database_url`` with its user replaced by ``role_name`` (and no password).

    The owner's password is never handed on: a role that needs one has it in
    its own ``<ROLE>_DATABASE_URL``; under trust authentication none does.
    """
    parts = urlsplit(database_url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = f"{role_name}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def default_role_urls(database_url: str) -> dict[DatabaseRole, str]:
    """Each role's URL when none is configured: ``database_url`` as the role's default name."""
    return {role: url_as_role(database_url, DEFAULT_ROLE_NAMES[role]) for role in DATABASE_ROLES}


def checked_postgres_url(value: str | None) -> str | None:
    """``value`` when it names a PostgreSQL database (or is None); else a one-line error."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
        msg = "must look like postgresql://user@host:port/dbname"
        raise ValueError(msg)
    return value


def has_hash_tag(key: str) -> bool:
    """True when ``key`` carries a Redis Cluster hash tag (a non-empty ``{...}``)."""
    opening = key.find("{")
    closing = key.find("}", opening + 1)
    return opening >= 0 and closing > opening + 1


class CommonSettings(BaseSettings):
    """What every process needs: where the store, the stream and the logs go.

    ``DATABASE_URL`` is the owner's (``make migrate`` connects with it). A
    process connects as the role of its kind instead: its settings class names
    the role (``database_role``), and its ``database_url`` is that role's
    ``<ROLE>_DATABASE_URL``, or ``DATABASE_URL`` with the user replaced by the
    role's default name. So every ``settings.database_url`` in a process is its
    own role's, and a local trust-auth install needs no setting at all.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    #: The role this kind of process connects as; None: the owner (migrations).
    database_role: ClassVar[DatabaseRole | None] = None

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="PostgreSQL holding the event store, read models and checkpoints: the"
        " owner's URL (migrate); in a process's settings, the URL of the process's role.",
    )
    writer_database_url: str | None = Field(
        default=None,
        description="The writer role's URL (command service, relay, saga, replay, republish);"
        " default DATABASE_URL with user ledger_writer.",
    )
    projector_database_url: str | None = Field(
        default=None,
        description="The projector role's URL (projector, rebuild); default DATABASE_URL with"
        " user ledger_projector.",
    )
    query_database_url: str | None = Field(
        default=None,
        description="The read-only query role's URL (query service, time travel, status);"
        " default DATABASE_URL with user ledger_query.",
    )
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis for the stream.")
    redis_cluster: bool = Field(
        default=False,
        description="REDIS_URL names a node of a Redis Cluster: use redis-py's cluster client.",
    )
    stream_name: str = Field(
        default="ledger:events", min_length=1, description="Redis Stream key of the event log."
    )
    stream_partitions: int = Field(
        default=1,
        ge=1,
        le=1024,
        description="Streams the log is published to (an event's partition follows its stream"
        " id); more than 1 lets projector replicas share the work. 1: STREAM_NAME itself.",
    )
    log_level: LogLevel = "INFO"
    log_format: LogFormat | None = Field(
        default=None,
        description="console (readable lines) or json (one object per line); default: console"
        " when stderr is a terminal, json otherwise.",
    )
    host: str = "127.0.0.1"

    @model_validator(mode="before")
    @classmethod
    def _connect_as_role(cls, data: Any) -> Any:
        """In a process's settings, ``database_url`` becomes its role's URL."""
        if cls.database_role is None or not isinstance(data, dict):
            return data
        own = data.get(f"{cls.database_role}_database_url")
        if own:
            return {**data, "database_url": own}
        owner = data.get("database_url") or DEFAULT_DATABASE_URL
        if isinstance(owner, str) and urlsplit(owner).scheme:
            owner = url_as_role(owner, DEFAULT_ROLE_NAMES[cls.database_role])
        return {**data, "database_url": owner}

    @field_validator(
        "database_url", "writer_database_url", "projector_database_url", "query_database_url"
    )
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        return checked_postgres_url(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            msg = "must look like redis://host:port/db"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _one_slot_per_stream(self) -> CommonSettings:
        # Every key of a stream (dead letters, a republish beside it) is the stream's
        # name plus a suffix, and some commands touch two of them at once: on a cluster
        # only a hash tag puts them in one slot. Partitions get a tag each (see
        # shared_kernel.partitions), which a tag in the name would override.
        if not self.redis_cluster:
            return self
        if self.stream_partitions == 1 and not has_hash_tag(self.stream_name):
            msg = (
                f"STREAM_NAME {self.stream_name!r} needs a Redis Cluster hash tag with"
                " REDIS_CLUSTER=true, e.g. {ledger}:events, so all its keys share one slot"
            )
            raise ValueError(msg)
        if self.stream_partitions > 1 and has_hash_tag(self.stream_name):
            msg = (
                f"STREAM_NAME {self.stream_name!r} must not carry a hash tag with"
                f" STREAM_PARTITIONS={self.stream_partitions} on a Redis Cluster: each"
                " partition gets its own tag, so partitions spread over the cluster's nodes"
            )
            raise ValueError(msg)
        return self

    @property
    def partition_streams(self) -> list[str]:
        """The Redis key of every partition of the log, partition 0 first."""
        return partition_streams(self.stream_name, self.stream_partitions)

    @property
    def dead_letter_stream(self) -> str:
        """Where events the projector cannot apply are parked for an operator."""
        return dead_letter_stream(self.stream_name)

    def role_urls(self) -> dict[DatabaseRole, str]:
        """Each role's URL, as the processes of each kind will connect (for migrate)."""
        configured = {
            "writer": self.writer_database_url,
            "projector": self.projector_database_url,
            "query": self.query_database_url,
        }
        defaults = default_role_urls(self.database_url)
        return {role: configured[role] or defaults[role] for role in DATABASE_ROLES}


class WriterDatabaseSettings(CommonSettings):
    """Processes and tools that append events or publish them: the writer role."""

    database_role: ClassVar[DatabaseRole | None] = "writer"


class ProjectorDatabaseSettings(CommonSettings):
    """The projector and the rebuild tooling: the projector role (owns the read models)."""

    database_role: ClassVar[DatabaseRole | None] = "projector"


class QueryDatabaseSettings(CommonSettings):
    """Readers of the read models, time travel and status: the read-only query role."""

    database_role: ClassVar[DatabaseRole | None] = "query"


#: Name of the eventsourcing application, and so of its tables
#: ``ledger_events`` and ``ledger_snapshots`` (see ``schema/sql``).
EVENT_STORE_NAME = "ledger"
EVENTS_TABLE = f"{EVENT_STORE_NAME}_events"
SNAPSHOTS_TABLE = f"{EVENT_STORE_NAME}_snapshots"
#: LISTEN/NOTIFY channel the event store signals on every append.
EVENTS_CHANNEL = EVENTS_TABLE
#: LISTEN/NOTIFY channel the projector signals with its new checkpoint.
PROJECTION_CHANNEL = "ledger_projection"


S = TypeVar("S", bound=BaseSettings)


def load_settings(settings_class: type[S]) -> S:
    """Read ``settings_class`` from the environment or exit with a clear message."""
    try:
        return settings_class()
    except ValidationError as error:
        lines = [f"invalid configuration for {settings_class.__name__}:"]
        for problem in error.errors():
            variable = "_".join(str(part) for part in problem["loc"]).upper()
            lines.append(f"  {variable}: {problem['msg']} (got {problem.get('input')!r})")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None
