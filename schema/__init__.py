"""The database schema (SQL DDL) and the JSON Schema of every event type."""
