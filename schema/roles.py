"""The login roles the processes connect as, created by ``make migrate``.

Roles belong to the whole PostgreSQL cluster, not to one database, so several
migrations (of several databases, or tests running side by side) may create
the same role at the same moment: each creates it in its own autocommit
statement and takes "already exists" (duplicate_object, or unique_violation
when the other creation commits while this one waits) as success.

A role's name and password come from its URL (``<ROLE>_DATABASE_URL``, see
:mod:`shared_kernel.settings`). A password, when given, is hashed here with
SCRAM (libpq's ``PQencryptPasswordConn``) so the server, and its statement
log, never see it in clear. Without one the role has none: trust or peer
authentication, as on a developer's machine.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql

from shared_kernel.settings import DatabaseRole

log = logging.getLogger("schema.roles")


class RoleRefused(ValueError):
    """A role URL names a user that must not run the processes (a superuser, the owner)."""


@dataclass(frozen=True, slots=True)
class RoleLogin:
    role: DatabaseRole
    name: str
    password: str | None


def role_logins(role_urls: Mapping[DatabaseRole, str]) -> dict[DatabaseRole, RoleLogin]:
    """Each role's login name and password, read from its URL."""
    logins = {}
    for role, url in role_urls.items():
        parts = urlsplit(url)
        if not parts.username:
            msg = f"{role.upper()}_DATABASE_URL names no user"
            raise RoleRefused(msg)
        password = unquote(parts.password) if parts.password else None
        logins[role] = RoleLogin(role, unquote(parts.username), password)
    return logins


def ensure_roles(conn: psycopg.Connection[Any], logins: Mapping[DatabaseRole, RoleLogin]) -> None:
    """Create each role if missing (race-safe), and set the passwords given.

    ``conn`` must be in autocommit: a failed CREATE ROLE must not abort anything.
    """
    superuser = _is_superuser(conn)
    for login in logins.values():
        name = sql.Identifier(login.name)
        try:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(name))
            log.info("created role", extra={"role": login.name})
        except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
            pass  # it exists, or another migration created it meanwhile
        _refuse_privileged(conn, login)
        if login.password is not None:
            hashed = conn.pgconn.encrypt_password(
                login.password.encode(), login.name.encode(), b"scram-sha-256"
            )
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(name, sql.Literal(hashed.decode()))
            )
        if not superuser:
            # An owner that is no superuser must be a member of the roles it hands
            # tables to, or it could not alter them (nor grant on them) next time.
            conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(name))


def _is_superuser(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


def _refuse_privileged(conn: psycopg.Connection[Any], login: RoleLogin) -> None:
    row = conn.execute(
        "SELECT rolsuper OR rolbypassrls, rolname = current_user FROM pg_roles WHERE rolname = %s",
        (login.name,),
    ).fetchone()
    if row is None:
        return
    privileged, is_owner = row
    if privileged or is_owner:
        what = "the owner that migrates" if is_owner else "a superuser (or bypasses RLS)"
        msg = (
            f"{login.role.upper()}_DATABASE_URL connects as {login.name}, which is {what};"
            f" the {login.role} processes must run as a role of their own without such powers"
        )
        raise RoleRefused(msg)
