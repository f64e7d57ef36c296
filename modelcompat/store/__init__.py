"""The report store: Parquet files through pyarrow, one immutable set of files per run.

May import: errors, files, results.
"""
