"""The plan: cache keys per (cell, validator), what to re-run and why, and the order cells go out.

May import: errors, settings, matrix, model, probe (the agent's source files, for keys), results, runtime, store,
validators (contract and registry).
"""
