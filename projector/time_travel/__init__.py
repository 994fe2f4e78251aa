"""Time travel for read models: what they said for one stream at a past global position.

``python -m projector.time_travel STREAM --at N`` (``make replay STREAM=.. AT=N``)
and the query service's ``GET /accounts/{id}?as_of=N`` both use
:func:`~projector.time_travel.scratch.scratch_read_models`.
"""

from projector.time_travel.scratch import (
    Refused,
    ScratchFold,
    StreamNotFound,
    scratch_read_models,
)

__all__ = [
    "Refused",
    "ScratchFold",
    "StreamNotFound",
    "scratch_read_models",
]
