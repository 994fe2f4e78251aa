"""Rewrite a Redis Stream by building its replacement beside it and swapping it in at once.

Redis accepts an entry id only above the stream's top, so a stream cannot be
re-filled from an old position in place. Instead the new content is added
under a key beside the stream (its entries below the re-publish position as
they were, then the store's events), and one Lua script, atomic on the
server, checks that the live stream has not moved past it, recreates the live
stream's consumer groups on it and RENAMEs it over the live key. Consumers
blocked on the key are served from the new stream at once; a group's pending
list does not survive (entries already delivered and not acknowledged are no
longer pending), which a consumer that follows ``previous`` and reads the
store on a gap, like the projector, does not notice.

If the live stream moved on while the copy was built (a relay finishing its
last batch), the script swaps nothing and answers the live top: the caller
copies up to it and tries again. So nothing a relay added is ever dropped,
and the swapped stream never has an id below the old top missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.exceptions import ResponseError

from shared_kernel.event_log import PublishedEntry
from shared_kernel.redis_connection import RedisClient

_ALREADY_PUBLISHED = "equal or smaller than the target stream top item"

#: KEYS[1] live, KEYS[2] beside; ARGV[1] the id groups are rewound to ('' keeps them).
_SWAP = """
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return ms, seq
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  if #am ~= #bm then return #am < #bm end
  if am ~= bm then return am < bm end
  if #as ~= #bs then return #as < #bs end
  return as < bs
end
local function field(reply, name)
  for i = 1, #reply, 2 do
    if reply[i] == name then return reply[i + 1] end
  end
  return nil
end
local live, beside, rewind = KEYS[1], KEYS[2], ARGV[1]
local beside_top = field(redis.call('XINFO', 'STREAM', beside), 'last-generated-id')
local groups = {}
if redis.call('EXISTS', live) == 1 then
  local live_top = field(redis.call('XINFO', 'STREAM', live), 'last-generated-id')
  if less(beside_top, live_top) then return {'behind', live_top} end
  groups = redis.call('XINFO', 'GROUPS', live)
end
local kept = {}
for _, group in ipairs(groups) do
  local name = field(group, 'name')
  local was = field(group, 'last-delivered-id')
  local at = was
  if rewind ~= '' and less(rewind, was) then at = rewind end
  redis.call('XGROUP', 'CREATE', beside, name, at)
  table.insert(kept, {name, was, at})
end
redis.call('RENAME', beside, live)
return {'swapped', kept}
"""


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def position_of(entry_id: bytes | str) -> int:
    return int(text(entry_id).partition("-")[0])


def id_order(entry_id: bytes | str) -> tuple[int, int]:
    """An entry id as Redis orders it."""
    ms, _, seq = text(entry_id).partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True, slots=True)
class GroupMove:
    """A consumer group carried over to the new stream: where it was, where it now reads after."""

    name: str
    was: str
    now: str


@dataclass(frozen=True, slots=True)
class SwapOutcome:
    swapped: bool
    groups: tuple[GroupMove, ...] = ()
    live_top: str = "0-0"
    """When not swapped: the live stream's top id, which the copy must reach first."""


async def create_empty(redis: RedisClient, key: str) -> None:
    """An empty stream at ``key`` (Redis has no command for that but MKSTREAM)."""
    await redis.delete(key)
    await redis.xgroup_create(key, "republish-init", id="0", mkstream=True)
    await redis.xgroup_destroy(key, "republish-init")


async def top_id(redis: RedisClient, key: str) -> str:
    """The newest id ``key`` ever generated (``0-0`` without a stream)."""
    try:
        info: dict[Any, Any] = await redis.xinfo_stream(key)
    except ResponseError as error:
        if "no such key" in str(error).lower():
            return "0-0"
        raise
    return text(info["last-generated-id"])


async def top_of(redis: RedisClient, key: str) -> int:
    """The position of the newest id ``key`` ever generated (0 without a stream)."""
    return position_of(await top_id(redis, key))


async def copy_below(
    redis: RedisClient, source: str, target: str, below: int, batch_size: int
) -> int:
    """Copy ``source``'s entries with positions below ``below`` to ``target``, ids unchanged."""
    copied, start = 0, "-"
    while below > 0:
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]],
            await redis.xrange(source, min=start, max=f"({below}-0", count=batch_size),
        )
        if not entries:
            break
        pipe = redis.pipeline(transaction=False)
        for entry_id, fields in entries:
            pipe.xadd(target, fields, id=entry_id)  # type: ignore[arg-type]
        await pipe.execute()
        copied += len(entries)
        start = f"({text(entries[-1][0])}"
    return copied


async def add(redis: RedisClient, key: str, entries: Sequence[PublishedEntry]) -> int:
    """XADD ``entries`` without trimming; ids at or below the top are skipped. Returns added."""
    pipe = redis.pipeline(transaction=False)
    for entry in entries:
        pipe.xadd(key, entry.to_fields(), id=entry.entry_id)  # type: ignore[arg-type]
    added = 0
    for result in await pipe.execute(raise_on_error=False):
        if isinstance(result, ResponseError) and _ALREADY_PUBLISHED in str(result):
            continue
        if isinstance(result, Exception):
            raise result
        added += 1
    return added


async def raise_top(redis: RedisClient, key: str, entry_id: str) -> None:
    """Move ``key``'s last id up to ``entry_id``, so ids stay monotonic for consumers."""
    await redis.execute_command("XSETID", key, entry_id)  # type: ignore[no-untyped-call]


async def swap_in(
    redis: RedisClient, live: str, beside: str, *, rewind_to: int | None
) -> SwapOutcome:
    """Atomically replace ``live`` by ``beside`` unless ``live`` moved past it.

    Every consumer group of ``live`` is recreated on the new stream, reading
    after its old last-delivered id, or after ``rewind_to`` when that is lower
    (so it receives the re-published entries again).
    """
    rewind = "" if rewind_to is None else f"{rewind_to}-0"
    reply = await redis.eval(_SWAP, 2, live, beside, rewind)  # type: ignore[misc]
    if text(reply[0]) == "behind":
        return SwapOutcome(False, live_top=text(reply[1]))
    moves = tuple(GroupMove(text(name), text(was), text(now)) for name, was, now in reply[1])
    return SwapOutcome(True, moves)
