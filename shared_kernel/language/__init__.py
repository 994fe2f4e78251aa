"""The published language: the ledger's events (with their wire names and versions) and money.

What every process agrees on, and nothing else: no HTTP, settings or
infrastructure (those are the rest of :mod:`shared_kernel`). The event store
keeps events under their wire names, the relay and projector carry them, and
:mod:`shared_kernel.language.upcasting` reads every stored version as the current one.
"""
