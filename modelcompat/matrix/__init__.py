"""The compatibility matrix: axes, cells, the YAML spec and its expansion, resource needs.

May import: errors, files.
"""
