"""Throughput, overhead and memory measurements of dabjax; see README.md."""
