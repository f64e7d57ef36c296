"""A corpus of real architectures built in code (random weights, no model hub), exported as their users do.

Runs in its own venv (`make corpus-env`, `.venv-corpus`); not part of the installed distribution.
"""
