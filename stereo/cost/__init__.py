"""Matching costs: patch networks run densely, and hand-crafted baselines."""
