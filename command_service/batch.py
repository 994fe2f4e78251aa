"""Deciding a batch of commands against working copies of their accounts.

Which state may a decision trust?

- An *accepted* command may be decided on a cached state: its event carries
  version ``n + 1``, and the store's primary key rejects it if the account had
  moved past ``n``. The commit is the check.
- A *refusal* (insufficient funds, version conflict, ...) writes nothing, so
  nothing would catch a stale state. It is only given on a state read from the
  store in this attempt, or on one that this batch's commit will verify. A
  refusal first decided on a cached state is decided again on a fresh load.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, LRUCache
from eventsourcing.persistence import PersistenceError

from command_service.commands import Command, OpenAccount, RequestTransfer
from command_service.domain.account import Account, DomainError, apply
from command_service.errors import StoreUnavailable
from command_service.event_store import LedgerEventStore
from command_service.handlers import handle, request_transfer
from shared_kernel.events import LedgerEvent, TransferRequested


class AccountStates:
    """The accounts one attempt at a batch works on: where each came from, where it is now."""

    def __init__(
        self,
        store: LedgerEventStore,
        cache: LRUCache[UUID, Account] | None,
        preloaded: dict[UUID, Account | None],
    ) -> None:
        self._store = store
        self._cache = cache
        self._preloaded = preloaded
        #: The state each account had when this attempt first needed it.
        self.base: dict[UUID, Account | None] = {}
        #: The state after the commands accepted so far in this attempt.
        self.working: dict[UUID, Account | None] = {}
        #: Accounts read from the store in this attempt: safe grounds for a refusal.
        self.fresh: set[UUID] = set()
        #: Accounts with events in this attempt: the commit will verify their base.
        self.changed: set[UUID] = set()

    def current(self, command: Command) -> Account | None:
        """The account ``command`` acts on (its source, for a transfer request)."""
        return self.get(command.account_id, known_new=_known_new(command))

    def get(self, account_id: UUID, *, known_new: bool = False) -> Account | None:
        """The account's working state, loaded (cache, then store) the first time."""
        if account_id in self.working:
            return self.working[account_id]
        if account_id in self._preloaded:
            account = self._preloaded[account_id]
            self.fresh.add(account_id)
        elif known_new:
            account = None
            self.fresh.add(account_id)
        else:
            account = self._cached(account_id)
            if account is None:
                account = self.load_from_store(account_id)
                self.fresh.add(account_id)
        self.base[account_id] = self.working[account_id] = account
        return account

    def may_be_stale(self, account_id: UUID) -> bool:
        return account_id not in self.fresh and account_id not in self.changed

    def refresh(self, account_id: UUID) -> Account | None:
        """Read an unchanged account again from the store (before refusing on it)."""
        account = self.load_from_store(account_id)
        self.base[account_id] = self.working[account_id] = account
        self.fresh.add(account_id)
        return account

    def record(self, account: Account) -> None:
        self.working[account.id] = account
        self.changed.add(account.id)

    def base_version(self, account_id: UUID) -> int:
        account = self.base.get(account_id)
        return account.version if account is not None else 0

    def load_from_store(self, account_id: UUID) -> Account | None:
        """The account from its latest snapshot plus the tail; None when it does not exist."""
        try:
            return self._store.get_account(account_id)
        except AggregateNotFoundError:
            return None
        except PersistenceError as error:
            raise StoreUnavailable.because(error) from error

    def _cached(self, account_id: UUID) -> Account | None:
        return cached_account(self._cache, account_id)


def cached_account(cache: LRUCache[UUID, Account] | None, account_id: UUID) -> Account | None:
    """The account as the cache holds it, or None (no cache, or not in it)."""
    if cache is None:
        return None
    try:
        return cache.get(account_id)
    except KeyError:
        return None


def uncached_accounts(
    commands: Iterable[Command], cache: LRUCache[UUID, Account] | None
) -> list[UUID]:
    """The accounts ``commands`` read that ``cache`` does not hold: what to load."""
    wanted: dict[UUID, None] = {}
    for command in commands:
        if not _known_new(command):
            wanted[command.account_id] = None
        if isinstance(command, RequestTransfer):
            wanted[command.to_account] = None
    return [i for i in wanted if cached_account(cache, i) is None]


def _known_new(command: Command) -> bool:
    """A server-made uuid4 names no existing account; the primary key agrees. Not so
    when recovering: the attempt it replaces may have opened it already."""
    return (
        isinstance(command, OpenAccount)
        and not command.client_supplied_id
        and not command.recovering
    )


@dataclass
class Decision:
    """What one attempt decided: events to save in order, and each command's fate by index."""

    events: list[LedgerEvent] = field(default_factory=list)
    #: Index of the command behind each event, in the order of ``events``.
    accepted: list[int] = field(default_factory=list)
    #: The account after each accepted command on an account.
    after: dict[int, Account] = field(default_factory=dict)
    #: The request recorded for each accepted transfer request.
    transfers: dict[int, TransferRequested] = field(default_factory=dict)
    refusals: dict[int, Exception] = field(default_factory=dict)


def decide_batch(commands: list[Command], states: AccountStates) -> Decision:
    """Decide ``commands`` in order; a refusal affects only its own command."""
    decision = Decision()
    for index, command in enumerate(commands):
        if isinstance(command, RequestTransfer):
            _decide_transfer_request(index, command, states, decision)
            continue
        account_id = command.account_id
        try:
            account = states.current(command)
            try:
                event = handle(command, account)
            except DomainError:
                if not states.may_be_stale(account_id):
                    raise
                account = states.refresh(account_id)
                event = handle(command, account)
        except (DomainError, StoreUnavailable) as refusal:
            decision.refusals[index] = refusal
            continue
        after = apply(account, event)
        states.record(after)
        decision.events.append(event)
        decision.accepted.append(index)
        decision.after[index] = after
    return decision


def _decide_transfer_request(
    index: int, command: RequestTransfer, states: AccountStates, decision: Decision
) -> None:
    """A transfer request writes only its own new stream, and reads both accounts.

    Its refusals never need a fresh state: an account never stops existing and
    never changes currency, so a cached account is as good as a fresh one for
    "is there a source" and "do the currencies match".
    """
    try:
        source = states.get(command.account_id)
        target = states.get(command.to_account)
        event = request_transfer(command, source, target)
    except (DomainError, StoreUnavailable) as refusal:
        decision.refusals[index] = refusal
        return
    decision.events.append(event)
    decision.accepted.append(index)
    decision.transfers[index] = event
