"""What a read can find missing. No HTTP here: :mod:`query_service.responses` maps it to a 404."""

from __future__ import annotations

from typing import ClassVar


class NotProjected(LookupError):
    """Nothing under this key has been projected (yet).

    ``kind`` names it in the problem type (``<kind>-not-found``), ``title`` is
    the problem's title, and ``fields`` say which key it was.
    """

    kind: ClassVar[str]
    title: ClassVar[str]

    def __init__(self, detail: str, **fields: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields = fields
