"""Start-up check: a process that cannot use PostgreSQL or Redis says why, in one line, and exits.

Each process checks its servers once, right after reading its settings and before
the seconds of imports and set-up that follow, so a wrong URL, a missing database
or role, or a server that is down shows at once as one line on stderr naming the
server (``host:port``) and the cause, and the process exits 1 (under supervisord it
is then retried with a growing back-off). Once running, an outage no longer stops
a process: its readiness check reports it and it recovers when the server returns.
"""

from __future__ import annotations

import re
import sys
from typing import TypeVar
from urllib.parse import unquote, urlsplit

import psycopg
import redis

from shared_kernel.redis_connection import connect_redis_blocking
from shared_kernel.settings import CommonSettings, load_settings

#: Longest each server may take to answer the check (a host that drops packets).
CHECK_TIMEOUT_SECONDS = 3

#: What libpq's messages say, as the cause an operator acts on (first match wins).
_POSTGRES_CAUSES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.I), cause)
    for pattern, cause in (
        (r"(database \"[^\"]*\" does not exist)", r"\1"),
        (r"(role \"[^\"]*\" does not exist)", r"\1"),
        (r"password authentication failed for user (\"[^\"]*\")", r"authentication failed for \1"),
        (r"no password supplied", "authentication failed: no password supplied"),
        (r"authentication failed for user (\"[^\"]*\")", r"authentication failed for \1"),
        (r"no pg_hba\.conf entry", "authentication failed: no pg_hba.conf entry for this client"),
        (r"connection refused", "connection refused"),
        (r"timeout expired", f"no answer within {CHECK_TIMEOUT_SECONDS}s"),
        (r"could not translate host name", "host name does not resolve"),
        (r"too many connections|remaining connection slots", "too many connections"),
        (r"the database system is (starting up|shutting down)", r"the server is \1"),
    )
)
_REDIS_CAUSES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.I), cause)
    for pattern, cause in (
        (r"connection refused", "connection refused"),
        (r"WRONGPASS|invalid username-password|invalid password", "authentication failed"),
        (
            r"NOAUTH|authentication required|HELLO must be called with the client already auth",
            "authentication failed: a password is required",
        ),
        (r"^AuthenticationError", "authentication failed"),
        (r"timeout|timed out", f"no answer within {CHECK_TIMEOUT_SECONDS}s"),
        (r"name or service not known|nodename nor servname", "host name does not resolve"),
    )
)


def _cause(error: Exception, causes: tuple[tuple[re.Pattern[str], str], ...]) -> str:
    """The cause ``error`` names, or else its type and the library's own words."""
    text = f"{type(error).__name__}: {' '.join(str(error).split())}"
    for pattern, cause in causes:
        match = pattern.search(text)
        if match:
            return match.expand(cause)
    return text


def postgres_problem(url: str) -> str | None:
    """None when ``url``'s database answers ``SELECT 1``, else where and why not, in one line."""
    parts = urlsplit(url)
    where = f"PostgreSQL at {parts.hostname or 'localhost'}:{parts.port or 5432}"
    database, user = parts.path.lstrip("/"), unquote(parts.username or "")
    try:
        with psycopg.connect(url, connect_timeout=CHECK_TIMEOUT_SECONDS) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        return f"{where} (database {database}, user {user}): {_cause(error, _POSTGRES_CAUSES)}"
    return None


def redis_problem(url: str, *, cluster: bool = False) -> str | None:
    """None when Redis at ``url`` answers PING, else where and why not, in one line."""
    parts = urlsplit(url)
    kind = "Redis Cluster node" if cluster else "Redis"
    where = f"{kind} at {parts.hostname or 'localhost'}:{parts.port or 6379}"
    try:
        client = connect_redis_blocking(
            url, cluster=cluster, socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
            socket_timeout=CHECK_TIMEOUT_SECONDS,
        )  # fmt: skip
    except redis.RedisError as error:  # the cluster client asks for the slots at once
        return f"{where}: {_cause(error, _REDIS_CAUSES)}"
    try:
        client.ping()
    except redis.RedisError as error:
        return f"{where}: {_cause(error, _REDIS_CAUSES)}"
    finally:
        client.close()
    return None


S = TypeVar("S", bound=CommonSettings)


def checked_settings(process_name: str, settings_class: type[S], *, uses_redis: bool = True) -> S:
    """The process's settings, once its servers answer; else one line on stderr and exit 1."""
    settings = load_settings(settings_class)
    problems = [postgres_problem(settings.database_url)]
    if uses_redis:
        problems.append(redis_problem(settings.redis_url, cluster=settings.redis_cluster))
    found = [problem for problem in problems if problem]
    if found:
        print(f"{process_name}: cannot start: {'; '.join(found)}", file=sys.stderr, flush=True)
        raise SystemExit(1)
    return settings
