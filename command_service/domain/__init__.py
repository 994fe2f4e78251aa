"""The ledger's domain model: pure decisions and state, no I/O of any kind."""
