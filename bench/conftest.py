"""Benchmarks (pytest-benchmark), kept out of the normal test run.

Run with ``python -m pytest bench/ --benchmark-only``.
"""
