"""Benchmarks. Run `make bench ARGS=<name>`; see docs/benchmarks.md."""
