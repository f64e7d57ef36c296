"""Compatibility ranges: the window of a runtime's releases a model passes, found by bisecting the releases
(`modelcompat range`), each probe a real cell run in its own venv, stored with the model and reused.

May import: errors, settings, files, results, matrix, probe, model, runtime, validators, store, planning, execution.
"""
