"""Helpers shared by the service benchmarks (not a benchmark itself: run_all.py runs only bench/*.py)."""
