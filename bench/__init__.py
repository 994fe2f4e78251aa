"""``make bench``: the running stack's throughput and lags, beside the machine's ceiling.

Absolute numbers vary between runs on shared machines, so every run also
measures the ceiling on the same PostgreSQL server (pgbench, one-row INSERT
per transaction, same client count) and reports the ratio beside the numbers.
"""
