"""Prefect and Dask plumbing: the run's Prefect API, cells on Dask, worker preload, served deployments.

May import: every layer below it; never flows or cli.
"""
