"""Synthetic benchmarks with the layout of the real ones (averaged and per-step)."""
