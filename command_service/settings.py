"""Settings of the command service and of the outbox relay."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field

from shared_kernel.settings import WriterDatabaseSettings


class CommandServiceSettings(WriterDatabaseSettings):
    command_service_port: int = Field(default=8001, ge=1, le=65535)
    query_service_public_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:8002"),
        description="The query service as clients reach it: the base of the Location of a"
        " 201 or 202.",
    )
    snapshot_interval: int = Field(
        default=100, ge=2, description="Take a snapshot of an account every N events."
    )
    append_retries: int = Field(
        default=5, ge=0, le=100, description="Retries of a conflicting append without If-Match."
    )
    batch_max_commands: int = Field(
        default=500, ge=1, description="Most commands saved together in one transaction."
    )
    max_body_bytes: int = Field(
        default=16_384, ge=256, description="Larger request bodies get 413."
    )
    postgres_pool_size: int = Field(default=5, ge=1)
    commit_settle_seconds: float = Field(
        default=5.0,
        gt=0,
        description="After a save fails with the store, how long to keep asking whether it"
        " committed before answering 503 commit-outcome-unknown.",
    )
    writer_stall_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Not ready once commands have waited this long without the writer"
        " finishing a batch.",
    )
    aggregate_cache_size: int = Field(
        default=10_000, ge=0, description="Accounts kept in memory between commands (0: none)."
    )
    idempotency_ttl_seconds: float = Field(
        default=24 * 3600, gt=0, description="How long an Idempotency-Key and its answer are kept."
    )
    idempotency_lease_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long an attempt may execute before a retry of its key takes over.",
    )
    idempotency_wait_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long a duplicate request waits for the first attempt's answer (then 409).",
    )
    idempotency_purge_seconds: float = Field(
        default=300.0, gt=0, description="How often expired idempotency keys are deleted."
    )


class RelaySettings(WriterDatabaseSettings):
    relay_port: int = Field(default=8004, ge=1, le=65535)
    relay_batch_size: int = Field(default=1_000, ge=1, le=100_000)
    relay_poll_seconds: float = Field(
        default=1.0, gt=0, description="Fallback poll when no NOTIFY arrives."
    )
    stream_max_length: int = Field(
        default=1_000_000, ge=1_000, description="Approximate MAXLEN the stream is trimmed to."
    )


class TransferSagaSettings(WriterDatabaseSettings):
    transfer_saga_port: int = Field(default=8005, ge=1, le=65535)
    transfer_saga_batch_size: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Log events read (and transfers advanced) per pass.",
    )
    transfer_saga_poll_seconds: float = Field(
        default=1.0, gt=0, description="Fallback poll when no NOTIFY arrives."
    )
    transfer_saga_sweep_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often every unfinished transfer is looked at again, beside the log.",
    )
    snapshot_interval: int = Field(
        default=100, ge=2, description="Snapshot an account when a leg crosses a multiple of N."
    )
    postgres_pool_size: int = Field(default=3, ge=1)
