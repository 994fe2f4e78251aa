"""The published language shared by every process of the ledger.

Event definitions, money rules, configuration and the wire format of the
Redis Stream live here once, so the writer and every reader agree by
construction. Nothing in this package imports a service package.
"""
