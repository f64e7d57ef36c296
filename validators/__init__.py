"""Validators: one module per check, discovered through the `modelcompat.validators` entry points."""
