"""The write side: HTTP commands become events in the PostgreSQL event store.

Also home of the outbox relay (``command_service.relay``), which publishes the
event store's log to the Redis Stream.
"""
