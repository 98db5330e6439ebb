"""Benchmark data by concept: formats/ (readers), text/, batching/, synthesis/."""
