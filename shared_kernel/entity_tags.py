"""Entity tags (RFC 9110 section 8.8.3) for ``ETag``, ``If-Match`` and ``If-None-Match``.

Both services tag a resource with its version, ``"<version>"``. ``If-Match``
compares strongly (a weak tag never matches), ``If-None-Match`` weakly (the
``W/`` prefix is ignored); either takes a comma list or ``*``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from shared_kernel.problems import problem

#: One entity tag: optional ``W/``, then an opaque quoted string of etagc characters.
_TAG = r'(?:W/)?"[\x21\x23-\x7e]*"'
#: An ``If-Match`` / ``If-None-Match`` value: ``*`` or a comma list of entity tags.
ENTITY_TAGS_PATTERN = rf"^\s*(?:\*|{_TAG}(?:\s*,\s*{_TAG})*)\s*$"
ENTITY_TAGS_MAX_LENGTH = 1000
_ENTITY_TAGS = re.compile(ENTITY_TAGS_PATTERN)
_ONE_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e]*)"')


@dataclass(frozen=True, slots=True)
class EntityTags:
    """A parsed precondition header: ``any`` for ``*``, else its (weak, opaque) tags."""

    any: bool
    tags: tuple[tuple[bool, str], ...] = ()

    def strong_versions(self) -> frozenset[int]:
        """The versions a strong comparison can match (weak and non-numeric tags match none)."""
        return frozenset(
            int(o) for weak, o in self.tags if not weak and o.isdigit() and len(o) < 19
        )

    def weakly_match(self, version: int) -> bool:
        return self.any or any(opaque == str(version) for _, opaque in self.tags)


def etag(version: int) -> str:
    """The strong entity tag of a resource at ``version``."""
    return f'"{version}"'


def parse_entity_tags(value: str) -> EntityTags | None:
    """The tags of a header value; None when it is not ``*`` or a list of entity tags."""
    if len(value) > ENTITY_TAGS_MAX_LENGTH or _ENTITY_TAGS.match(value) is None:
        return None
    if value.strip() == "*":
        return EntityTags(any=True)
    return EntityTags(any=False, tags=tuple((bool(w), o) for w, o in _ONE_TAG.findall(value)))


def entity_tags_of(header: str, value: str) -> EntityTags:
    """The tags of ``header``'s ``value``; a 422 problem naming the header when malformed."""
    tags = parse_entity_tags(value)
    if tags is None:
        raise problem(
            HTTP_422_UNPROCESSABLE_ENTITY,
            "validation-failed",
            f"The {header} header is not a list of entity tags",
            f'{header} must be entity tags, like "3" or "3", "4", or *.',
            errors=[{"source": "header", "key": header, "message": "not entity tags"}],
        )
    return tags
