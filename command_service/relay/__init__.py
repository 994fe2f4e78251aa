"""The outbox relay: publishes the event store's log to the Redis Stream, in order.

PostgreSQL stays the source of truth; the stream is a fan-out copy whose entry
ids are the log positions, so publishing the same event twice is harmless.
Run it as ``python -m command_service.relay``.
"""
