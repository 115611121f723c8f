"""Benchmarks; results go to docs/benchmarks.md with the machine and date."""
