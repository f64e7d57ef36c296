"""The `modelcompat` command line, one module per command group.

May import: everything (it is the top layer).
"""
from modelcompat.cli.app import main

__all__ = ["main"]
