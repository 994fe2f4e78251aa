"""Settings of the projector."""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from shared_kernel.settings import ProjectorDatabaseSettings


class ProjectorSettings(ProjectorDatabaseSettings):
    projector_port: int = Field(default=8003, ge=1, le=65535)
    consumer_group: str = Field(default="projector", min_length=1)
    consumer_name: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}", min_length=1
    )
    projector_batch_size: int = Field(
        default=5_000,
        ge=1,
        le=10_000,
        description="Most stream entries read, applied and committed together. Live entries"
        " arrive a few at a time whatever the bound; a backlog drains faster in large batches"
        " (500 drained 15k events/s, 5,000 drained 20k on 2 cores).",
    )
    projector_block_ms: int = Field(default=1_000, ge=1)
    claim_idle_ms: int = Field(
        default=30_000, ge=100, description="Claim pending entries idle this long (dead consumer)."
    )
    partition_balance_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often a projector counts its peers and takes or hands back partitions"
        " (a dead peer's partitions move within about this long).",
    )
    catch_up_batch_size: int = Field(default=5_000, ge=1)
    idle_catch_up_seconds: float = Field(
        default=3.0,
        gt=0,
        description="With nothing arriving on the stream this long, catch up from the store"
        " if it is ahead (covers a flushed stream with no later traffic).",
    )
    projector_stall_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Not ready once the store has been ahead of an unchanged checkpoint this long.",
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bearer token of the /admin routes; unset (or empty) turns them off (403).",
    )
    on_stale_projection: Literal["rebuild", "flag"] = Field(
        default="rebuild",
        description="A projection whose version changed: rebuild it at start-up, or only flag"
        " it stale. Either way the projector stops applying to its old tables.",
    )
    rebuild_batch_size: int = Field(
        default=10_000, ge=1, le=200_000, description="Events per batch of a rebuild."
    )
    rebuild_swap_within: int = Field(
        default=2_000,
        ge=0,
        description="A rebuild enters its swap once its tables are this close to the head.",
    )
    rebuild_lock_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Longest the swap waits for its locks (queries queue behind it meanwhile).",
    )
    rebuild_retention_hours: float = Field(
        default=168.0, gt=0, description="Tables a rebuild replaced are dropped after this long."
    )

    @field_validator("admin_token")
    @classmethod
    def _no_empty_token(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None
