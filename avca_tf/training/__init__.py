"""Training: the compiled step, the two-stage protocol, the optimizer, presets."""
