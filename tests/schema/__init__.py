"""Tests of the schema folder: generated event schemas and the SQL DDL."""
