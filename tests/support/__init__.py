"""Helpers the tests share: scratch databases, Redis names, real processes."""
