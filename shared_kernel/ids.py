"""Random (version 4) UUIDs without a system call each.

``uuid.uuid4()`` asks the kernel for 16 bytes every time; on a small virtual
machine that ``getrandom`` call was the costliest single step of a command's
HTTP request (two ids each: the correlation id and the command id). These
UUIDs take their bytes from the same source, ``os.urandom``, 4 KiB at a time,
so they are exactly as unpredictable and unique, at one call per 256 ids.

Each thread keeps its own buffer (no lock on the hot path), and a forked
child drops the one it inherited: a parent and child must never hand out
the same bytes.
"""

from __future__ import annotations

import os
import threading
from uuid import UUID

_IDS_PER_READ = 256


class _Buffer(threading.local):
    def __init__(self) -> None:
        self.data = b""
        self.offset = 0


_buffer = _Buffer()


def _forget_inherited() -> None:
    _buffer.data, _buffer.offset = b"", 0


os.register_at_fork(after_in_child=_forget_inherited)


def random_uuid() -> UUID:
    """A new random UUID (version 4), as :func:`uuid.uuid4` makes."""
    buffer = _buffer
    if buffer.offset >= len(buffer.data):
        buffer.data, buffer.offset = os.urandom(16 * _IDS_PER_READ), 0
    start = buffer.offset
    buffer.offset = start + 16
    return UUID(bytes=buffer.data[start : start + 16], version=4)
