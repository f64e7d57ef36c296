"""Baselines and comparison: promotion pointers, status transitions and metric deltas graded by severity, trends.

May import: errors, files, results, store.
"""
