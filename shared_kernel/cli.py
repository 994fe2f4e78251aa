"""Small pieces the operator command lines share."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TextIO
from uuid import UUID

#: Largest value a PostgreSQL ``bigint`` (positions, versions) holds.
MAX_BIGINT = 2**63 - 1


def bounded_int(low: int, high: int = MAX_BIGINT) -> Callable[[str], int]:
    """An argparse ``type`` accepting whole numbers from ``low`` to ``high``, with a clear error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


def parse_stream_id(text: str, program: str, err: TextIO) -> UUID | None:
    """The stream a replay or time travel names, or None after saying why on ``err``."""
    try:
        return UUID(text)
    except ValueError:
        print(f"{program}: STREAM must be an account or transfer id (a UUID), not {text!r}",
              file=err)  # fmt: skip
        return None
