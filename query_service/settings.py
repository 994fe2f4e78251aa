"""Settings of the query service."""

from __future__ import annotations

from pydantic import Field, field_validator

from shared_kernel.settings import QueryDatabaseSettings, checked_postgres_url


class QueryServiceSettings(QueryDatabaseSettings):
    query_service_port: int = Field(default=8002, ge=1, le=65535)
    max_wait_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Longest a read waits for ?min_position."
    )
    postgres_pool_size: int = Field(default=10, ge=1)
    page_size_max: int = Field(default=500, ge=1)
    projection_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Re-read the checkpoints this often even without a notification.",
    )
    standby_poll_seconds: float = Field(
        default=0.005,
        gt=0,
        le=5,
        description="On a hot standby (no LISTEN there), re-read the checkpoints this often"
        " while a read waits for a position.",
    )
    time_travel_database_url: str | None = Field(
        default=None,
        description="Where ?as_of= builds its scratch tables (TEMP tables, which a hot standby"
        " refuses): the primary's query-role URL when QUERY_DATABASE_URL names a standby;"
        " default: QUERY_DATABASE_URL.",
    )

    @field_validator("time_travel_database_url")
    @classmethod
    def _time_travel_url(cls, value: str | None) -> str | None:
        return checked_postgres_url(value)
