"""Refusals that come from the state of the store rather than from the account's rules.

They extend :class:`~command_service.domain.account.DomainError` so the HTTP
layer turns every refusal into a problem document the same way: its ``code``,
the status :mod:`command_service.http.refusals` maps its type to, and its
``context`` as extra members.
"""

from __future__ import annotations

from uuid import UUID

from command_service.domain.account import DomainError


class AccountNotFound(DomainError):
    code = "account-not-found"

    def __init__(self, account_id: UUID) -> None:
        super().__init__(f"there is no account {account_id}", account_id=str(account_id))


class AccountAlreadyExists(DomainError):
    code = "account-exists"

    def __init__(self, account_id: UUID) -> None:
        super().__init__(f"account {account_id} already exists", account_id=str(account_id))


class VersionConflict(DomainError):
    """The account kept moving under a command that expected no version (retry it)."""

    code = "version-conflict"

    def __init__(self, account_id: UUID, current_version: int) -> None:
        super().__init__(
            f"account {account_id} kept changing concurrently (now at version"
            f" {current_version}); retry the command",
            account_id=str(account_id),
            current_version=current_version,
        )
        self.current_version = current_version


class PreconditionFailed(DomainError):
    """The account is at none of the versions ``If-Match`` named (RFC 9110's precondition)."""

    code = "precondition-failed"

    def __init__(
        self, account_id: UUID, current_version: int, expected_versions: frozenset[int]
    ) -> None:
        expected = sorted(expected_versions)
        super().__init__(
            f"account {account_id} is at version {current_version}, not one If-Match names"
            f" ({', '.join(map(str, expected)) or 'no version'})",
            account_id=str(account_id),
            current_version=current_version,
            expected_versions=expected,
        )
        self.current_version = current_version


def version_refusal(
    account_id: UUID, current_version: int, expected_versions: frozenset[int] | None
) -> DomainError:
    """The refusal of a command whose account is not at a version it can be decided on."""
    if expected_versions is None:
        return VersionConflict(account_id, current_version)
    return PreconditionFailed(account_id, current_version, expected_versions)


class ServiceUnavailable(Exception):
    """The command could not be decided for a reason of ours, not the client's (503)."""

    code = "service-unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class StoreUnavailable(ServiceUnavailable):
    code = "store-unavailable"

    @classmethod
    def because(cls, error: Exception) -> StoreUnavailable:
        """The answer to a failure of the event store (``error`` itself when it is one)."""
        if isinstance(error, StoreUnavailable):
            return error
        return cls(f"the event store is unavailable: {error}")


class AppenderStopped(ServiceUnavailable):
    code = "shutting-down"


class CommitOutcomeUnknown(ServiceUnavailable):
    """The store did not confirm whether the command was recorded, even when asked after.

    Retrying with the same Idempotency-Key is safe: the command id recorded
    with the events makes a second recording impossible.
    """

    code = "commit-outcome-unknown"


class CommandNotRecorded(ServiceUnavailable):
    """The command was not recorded (known for sure) and could not be after several attempts."""

    code = "command-not-recorded"


class WriterStalled(Exception):
    """Commands wait but the writer thread has not finished a batch for too long."""


class UnreadableSnapshot(ValueError):
    """A stored snapshot this code cannot read: loads fold from the events instead.

    Snapshots are a cache of a fold, never the truth, so one written by another
    version of the state is skipped, not a failure.
    """
