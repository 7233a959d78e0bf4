"""Shared machinery of the examples: flags, loop, checkpoints, metrics."""
