"""Mixed HTTP load that never gives up on a request: the client side of the chaos suite.

Several client threads open accounts, deposit, withdraw, transfer, close and
read. Every command carries an Idempotency-Key, sent again unchanged after a
timeout, a dropped connection, a 5xx or a 409 "still executing", until the
command service gives a final answer (any other status). The key doubles as
the request's ``X-Correlation-Id``, so every event a request caused names it:
the audit finds a command in the event store by it.

The operations are drawn from a seeded generator: the load is the same mix on
every run, while the faults come from the schedule, never from chance.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx

CLIENT_TIMEOUT = httpx.Timeout(2.0, connect=1.0)
#: A request unanswered this long fails the test (a wedged service, not a slow one).
REQUEST_DEADLINE = 150.0
#: After the load stops, how long requests in flight still try for a final answer;
#: one that gets none is kept as unanswered (status 0): its effect is unknown.
STOP_GRACE = 30.0
OPERATIONS = ("deposit", "deposit", "withdrawal", "transfer", "transfer", "open", "close", "read")


@dataclass(frozen=True)
class Answered:
    """One command with its final answer."""

    key: str
    kind: str  # open | deposit | withdrawal | transfer | close
    account_id: str | None
    amount: int
    status: int  # 0: never answered (the load stopped first)
    body: dict[str, object]
    attempts: int

    @property
    def acknowledged(self) -> bool:
        return 200 <= self.status < 300

    @property
    def refused(self) -> bool:
        return self.status >= 400


class _Stopped(Exception):
    """The load stopped while a client needed an answer to go on."""


def _is_final(response: httpx.Response) -> bool:
    if response.status_code >= 500:
        return False
    if response.status_code == 409:  # the first attempt still executes: same key again
        return bool(response.json().get("code") != "idempotency-key-in-progress")
    return True


@dataclass
class ChaosClients:
    """Client threads driving the command and query services until stopped."""

    command_url: str
    query_url: str
    clients: int = 6
    seed: int = 11
    answered: list[Answered] = field(default_factory=list)
    retries: int = 0
    reads: int = 0
    errors: list[str] = field(default_factory=list)
    #: Answers of 5xx other than 503 + Retry-After: an outage must never look like a bug.
    server_errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _stopped_at: float = 0.0
    _pool: list[str] = field(default_factory=list)  # open, funded accounts anyone may use
    _threads: list[threading.Thread] = field(default_factory=list)
    #: Requests waiting for a final answer: key -> (what, attempts so far).
    _in_flight: dict[str, tuple[str, int]] = field(default_factory=dict)

    # -- what the schedule and the audit read -------------------------------------

    @property
    def acknowledged(self) -> int:
        with self._lock:
            return sum(1 for a in self.answered if a.acknowledged)

    def in_flight(self, most: int = 3) -> str:
        """A few requests still waiting for a final answer, for a failure message."""
        with self._lock:
            waiting = [
                f"{what} ({attempts} attempts)" for what, attempts in self._in_flight.values()
            ]
        return f"{len(waiting)} request(s) waiting, e.g. " + "; ".join(waiting[:most])

    def wait_for_acknowledged(self, count: int, timeout: float) -> float:
        """Block until ``count`` commands in all were acknowledged; the seconds it took."""
        began = time.monotonic()
        deadline = began + timeout
        while self.acknowledged < count:
            if self.errors:
                raise AssertionError(f"a client failed: {self.errors[0]}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"only {self.acknowledged} of {count} commands acknowledged after {timeout}s"
                )
            time.sleep(0.05)
        return time.monotonic() - began

    # -- life cycle ---------------------------------------------------------------

    def __enter__(self) -> ChaosClients:
        self._threads = [
            threading.Thread(target=self._run, args=(n,), name=f"chaos-client-{n}", daemon=True)
            for n in range(self.clients)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopped_at = time.monotonic()
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=STOP_GRACE + 10)

    # -- one client ---------------------------------------------------------------

    def _run(self, number: int) -> None:
        rng = random.Random(self.seed * 1000 + number)
        owner = f"chaos-{number}"
        try:
            with (
                httpx.Client(base_url=self.command_url, timeout=CLIENT_TIMEOUT) as commands,
                httpx.Client(base_url=self.query_url, timeout=CLIENT_TIMEOUT) as queries,
            ):
                mine = [self._open(commands, owner, funded=True) for _ in range(2)]
                while not self._stopping.is_set():
                    self._one_operation(rng, commands, queries, owner, mine)
        except _Stopped:
            pass
        except Exception as error:  # the test fails on it, with the client's story
            self.errors.append(f"client {number}: {error!r}")

    def _one_operation(
        self,
        rng: random.Random,
        commands: httpx.Client,
        queries: httpx.Client,
        owner: str,
        mine: list[str],
    ) -> None:
        operation = rng.choice(OPERATIONS)
        account = rng.choice(mine)
        if operation == "deposit":
            self._command(commands, "deposit", account, rng.randint(1, 500))
        elif operation == "withdrawal":
            self._command(commands, "withdrawal", account, rng.randint(1, 300))
        elif operation == "transfer":
            with self._lock:
                target = rng.choice(self._pool)
            if rng.random() < 0.1:
                target = str(uuid.uuid4())  # no such account: the saga refunds it
            self._command(commands, "transfer", account, rng.randint(1, 200), target=target)
        elif operation == "open":
            if len(mine) < 6:
                mine.append(self._open(commands, owner, funded=True))
        elif operation == "close":
            # A fresh, never shared account: its balance is zero, so closing is allowed.
            self._command(commands, "close", self._open(commands, owner, funded=False), 0)
        else:
            self._read(queries, account)

    def _open(self, commands: httpx.Client, owner: str, *, funded: bool) -> str:
        answer = self._command(commands, "open", None, 0, owner=owner)
        if answer.status == 0:
            raise _Stopped
        if not answer.acknowledged:
            raise AssertionError(f"opening an account was refused: {answer}")
        account = str(answer.body["account_id"])
        if funded:
            self._command(commands, "deposit", account, 1_000)
            with self._lock:
                self._pool.append(account)
        return account

    def _command(
        self,
        commands: httpx.Client,
        kind: str,
        account: str | None,
        amount: int,
        *,
        owner: str = "",
        target: str = "",
    ) -> Answered:
        path, body = _request_of(kind, account, amount, owner, target)
        key = uuid.uuid4().hex
        headers = {"Idempotency-Key": key, "X-Correlation-Id": key}
        response, attempts = self._until_final(commands, path, body, headers)
        if response is None:
            answer = Answered(key, kind, account, amount, 0, {}, attempts)
        else:
            content = response.json()
            account_id = account if kind != "open" else content.get("account_id")
            answer = Answered(
                key, kind, account_id, amount, response.status_code, content, attempts
            )
        with self._lock:
            self.answered.append(answer)
        return answer

    def _until_final(
        self, commands: httpx.Client, path: str, body: dict[str, object] | None,
        headers: dict[str, str],
    ) -> tuple[httpx.Response | None, int]:  # fmt: skip
        deadline = time.monotonic() + REQUEST_DEADLINE
        attempts, pause = 0, 0.05
        key = headers["Idempotency-Key"]
        try:
            while True:
                attempts += 1
                with self._lock:
                    self._in_flight[key] = (f"POST {path} key={key}", attempts)
                response = self._attempt(commands, path, body, headers)
                if response is not None:
                    return response, attempts
                with self._lock:
                    self.retries += 1
                if self._stopping.is_set() and time.monotonic() > self._stopped_at + STOP_GRACE:
                    return None, attempts
                if time.monotonic() > deadline:
                    raise AssertionError(f"POST {path} key={key} never answered finally")
                time.sleep(pause)
                pause = min(pause * 2, 0.5)
        finally:
            with self._lock:
                self._in_flight.pop(key, None)

    def _attempt(
        self, commands: httpx.Client, path: str, body: dict[str, object] | None,
        headers: dict[str, str],
    ) -> httpx.Response | None:  # fmt: skip
        """The final answer, or None: a timeout, a dropped connection, a 5xx, still executing."""
        try:
            response = commands.post(path, json=body, headers=headers)
        except httpx.TransportError:
            return None
        self._check_outage_answer(f"POST {path}", response)
        return response if _is_final(response) else None

    def _check_outage_answer(self, what: str, response: httpx.Response) -> None:
        if response.status_code < 500:
            return
        if response.status_code == 503 and response.headers.get("Retry-After"):
            return
        with self._lock:
            self.server_errors.append(f"{what}: {response.status_code} {response.text[:300]}")

    def _read(self, queries: httpx.Client, account: str) -> None:
        """A read of the client's own account; retried like a command (it has no effect)."""
        deadline = time.monotonic() + REQUEST_DEADLINE
        while time.monotonic() < deadline:
            if self._stopping.is_set():
                return
            try:
                response = queries.get(f"/accounts/{account}")
                self._check_outage_answer(f"GET /accounts/{account}", response)
                if response.status_code < 500:
                    with self._lock:
                        self.reads += 1
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"GET /accounts/{account} never answered")


def _request_of(
    kind: str, account: str | None, amount: int, owner: str, target: str
) -> tuple[str, dict[str, object] | None]:
    if kind == "open":
        return "/accounts", {"owner": owner, "currency": "EUR"}
    if kind == "deposit":
        return f"/accounts/{account}/deposits", {"amount": amount}
    if kind == "withdrawal":
        return f"/accounts/{account}/withdrawals", {"amount": amount}
    if kind == "transfer":
        return "/transfers", {"from_account": account, "to_account": target, "amount": amount}
    return f"/accounts/{account}/close", None
