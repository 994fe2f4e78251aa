"""The raw-bytes shortcut of the unstorable-text check never lets unstorable text by.

Oracle: the full check (:func:`~shared_kernel.storable_text.unstorable_errors`)
over the path, the query as litestar parses it and the headers as it decodes
them. Whenever the shortcut says "storable", the full check finds nothing.
"""

from __future__ import annotations

from typing import Any, cast

from hypothesis import given
from hypothesis import strategies as st
from litestar._parsers import parse_query_string
from litestar.types import Scope

from shared_kernel.storable_text import storable_at_a_glance, unstorable_errors

byte_strings = st.binary(max_size=40) | st.sampled_from([b"a=1", b"x=%00", b"q=%ed%a0%80", b""])


def _scope(path: str, query: bytes, headers: list[tuple[bytes, bytes]]) -> Scope:
    return cast(Scope, {"type": "http", "path": path, "query_string": query, "headers": headers})


def _full_check(path: str, query: bytes, headers: list[tuple[bytes, bytes]]) -> list[Any]:
    return (
        unstorable_errors("path", [("path", path)])
        + unstorable_errors("query", parse_query_string(query))
        + unstorable_errors(
            "header", [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
        )
    )


@given(
    path=st.text(max_size=30),
    query=byte_strings,
    headers=st.lists(st.tuples(st.binary(max_size=10), byte_strings), max_size=4),
)
def test_whatever_the_shortcut_passes_the_full_check_passes(
    path: str, query: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    if storable_at_a_glance(_scope(path, query, headers)):
        assert _full_check(path, query, headers) == []


def test_an_everyday_request_takes_the_shortcut_and_a_nul_does_not() -> None:
    everyday = [(b"content-type", b"application/json"), (b"idempotency-key", b"k-1")]
    assert storable_at_a_glance(_scope("/accounts/1/deposits", b"min_position=3", everyday))
    assert not storable_at_a_glance(_scope("/accounts/\x00", b"", everyday))
    assert not storable_at_a_glance(_scope("/a", b"x=%00", everyday))
    assert not storable_at_a_glance(_scope("/a", b"", [(b"x-note", b"a\x00b")]))
