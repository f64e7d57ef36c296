"""Prefect and Dask plumbing: the run's Prefect API, cells on Dask, worker preload.

May import: every layer below it; never flows or cli.
"""
