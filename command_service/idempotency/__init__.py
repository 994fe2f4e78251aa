"""Idempotency keys: the same request, retried, has one effect and one answer."""
