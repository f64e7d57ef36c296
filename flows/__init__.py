"""Prefect flows, thin (one module per flow: check_matrix, nightly_matrix, on_model_registered, validate_one),
what they share (check_version) and the deployments `modelcompat serve` serves.

May import: every layer but cli.
"""
