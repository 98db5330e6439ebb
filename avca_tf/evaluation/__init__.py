"""Evaluation: GZSL metrics, paper tables, FLOPs, plots."""
