"""Training and evaluation batches: class-aware sampling, padded sequence batches."""
