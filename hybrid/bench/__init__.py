"""Benchmark suites (``hybrid bench SUITE``); the file format is described in shared BENCH.md."""
