"""Benchmarks of the API; `python -m bench.run` writes docs/benchmarks.md."""
