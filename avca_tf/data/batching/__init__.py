"""Class-aware sampling of training batches (the averaged and the per-step kinds share it)."""
