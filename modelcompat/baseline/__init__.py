"""Baselines and comparison: promotion pointers, status transitions and metric deltas graded by severity, trends.

May import: errors, settings, files, results, model, store, model_registry (to resolve an alias to a version).
"""
