"""Configuration from the environment, validated once at start-up.

Every process reads a subclass of :class:`CommonSettings`. A bad value stops
the process before it serves anything, with one line per problem naming the
environment variable, instead of a stack trace minutes later.
"""

from __future__ import annotations

import sys
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class CommonSettings(BaseSettings):
    """What every process needs: where the store, the stream and the logs go."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/ledger",
        description="PostgreSQL holding the event store, read models and checkpoints.",
    )
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis for the stream.")
    stream_name: str = Field(
        default="ledger:events", min_length=1, description="Redis Stream key of the event log."
    )
    log_level: LogLevel = "INFO"
    host: str = "127.0.0.1"

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
            msg = "must look like postgresql://user@host:port/dbname"
            raise ValueError(msg)
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            msg = "must look like redis://host:port/db"
            raise ValueError(msg)
        return value

    @property
    def dead_letter_stream(self) -> str:
        """Where events the projector cannot apply are parked for an operator."""
        return f"{self.stream_name}:dead-letter"


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
