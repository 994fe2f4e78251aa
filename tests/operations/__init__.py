"""Tests of the operations files: compose, Dockerfile, Procfile, Makefile helpers, bench."""
