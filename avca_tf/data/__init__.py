"""Benchmark data: reading, synthesis, sampling, TFRecord input, class-name text."""
