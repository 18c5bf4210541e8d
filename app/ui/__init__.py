"""Shared UI pieces: Altair chart builders, DOT graphs, cached store reads and small widgets."""
