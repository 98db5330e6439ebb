"""Beam jobs: ingestion of h5 features and class embeddings (any Beam runner)."""
