"""Settings of the projector."""

from __future__ import annotations

import os
import socket

from pydantic import Field

from shared_kernel.settings import CommonSettings


class ProjectorSettings(CommonSettings):
    projector_port: int = Field(default=8003, ge=1, le=65535)
    consumer_group: str = Field(default="projector", min_length=1)
    consumer_name: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}", min_length=1
    )
    projector_batch_size: int = Field(default=500, ge=1, le=10_000)
    projector_block_ms: int = Field(default=1_000, ge=1)
    claim_idle_ms: int = Field(
        default=30_000, ge=100, description="Claim pending entries idle this long (dead consumer)."
    )
    catch_up_batch_size: int = Field(default=5_000, ge=1)
    idle_catch_up_seconds: float = Field(
        default=3.0,
        gt=0,
        description="With nothing arriving on the stream this long, catch up from the store"
        " if it is ahead (covers a flushed stream with no later traffic).",
    )
