"""Runtime environments: the host interpreter or an isolated uv venv cached by the hash of its spec.

May import: errors, settings, files, matrix.
"""
