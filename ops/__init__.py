"""Operator helpers used by the Makefile: service checks and the stack's health."""
