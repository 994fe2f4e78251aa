"""Replay one stream of the event store for an operator: ``python -m command_service.replay``.

It prints every event of an account or transfer stream with the state the
domain folds after it, then checks that what the command service loads (the
latest snapshot plus the tail) equals the fold of the whole history. It reads
the event store only and writes nothing.
"""
