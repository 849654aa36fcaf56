"""The bottom layer: small helpers every other package may use, importing none of them.

- common/files.py: atomic file writes (a reader never sees half a file).
- common/timing.py: the benchmarks' timing and percentile helpers.
- common/lazy.py: lazily exported package names.
"""
