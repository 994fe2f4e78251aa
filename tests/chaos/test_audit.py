"""The chaos audit names exactly what was doubled, lost or recorded against its answer."""

from __future__ import annotations

import uuid

from command_service.domain.account import deposit, withdraw
from shared_kernel.language.events import EventMetadata
from tests.chaos.audit import audit
from tests.chaos.load import Answered
from tests.support.ledger_writer import LedgerWriter


def _answered(key: str, kind: str, account: str, amount: int, status: int) -> Answered:
    return Answered(key, kind, account, amount, status, {}, attempts=2)


def test_the_audit_names_every_doubled_lost_and_unexpected_recording(
    writer: LedgerWriter, database_url: str
) -> None:
    account = writer.open()
    writer.deposit(account, 1_000)

    def record(kind: str, key: str, amount: int) -> int:
        metadata = EventMetadata(correlation_id=key, causation_id=str(uuid.uuid4()))
        decide = deposit if kind == "deposit" else withdraw
        return writer.record(decide(writer.accounts[account], amount, None, None, metadata))

    doubled, lost, refused, stray, fine = (uuid.uuid4().hex for _ in range(5))
    first, second = record("deposit", doubled, 70), record("deposit", doubled, 70)
    record("withdrawal", refused, 5)
    record("deposit", stray, 9)
    record("deposit", fine, 11)
    answers = [
        _answered(doubled, "deposit", str(account), 70, 200),
        _answered(lost, "deposit", str(account), 30, 200),
        _answered(refused, "withdrawal", str(account), 5, 422),
        _answered(fine, "deposit", str(account), 11, 200),
    ]

    found = audit(database_url, answers)

    assert (found.acknowledged, found.refused, found.unanswered) == (3, 1, 0)
    assert len(found.doubled) == 1 and doubled in found.doubled[0]
    assert f"MoneyDeposited @{first} v3, MoneyDeposited @{second} v4" in found.doubled[0]
    assert "amount=70" in found.doubled[0] and "2x" in found.doubled[0]
    assert len(found.lost) == 1 and lost in found.lost[0] and "0x" in found.lost[0]
    assert (
        len(found.recorded_although_refused) == 1 and refused in found.recorded_although_refused[0]
    )
    # The stray deposit, and the opening and first deposit no request here answered for.
    assert len(found.unaccounted) == 3 and stray in found.unaccounted[-1]
    # This writer registers no command ids, so every command event is reported missing there.
    assert len(found.unregistered) == 4
    findings = "\n".join(found.findings)
    assert findings.count("DOUBLED") == 1 and findings.count("LOST") == 1
