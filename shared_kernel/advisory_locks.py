"""Keys of the PostgreSQL advisory locks that elect one worker of a kind.

A key is derived from a name, never chosen by hand, so two kinds of worker
cannot collide by accident. The derivations are part of the deployment: an old
and a new process must compute the same key to exclude each other during a
rolling upgrade, so neither may change.
"""

from __future__ import annotations

import hashlib
import zlib


def advisory_lock_key(name: str) -> int:
    """The single bigint key of ``pg_advisory_lock(key)``: a signed 64-bit blake2b of ``name``."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def advisory_lock_class(name: str) -> int:
    """The first (int4) key of ``pg_advisory_lock(class, number)``: a non-negative crc32."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF
