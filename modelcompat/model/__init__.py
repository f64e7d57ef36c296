"""The model package: manifest, build (`modelcompat package`), static inspection, hashing, precision, demo.

May import: errors, settings, files, matrix (cells), probe (reference outputs are computed in a probe).
"""
