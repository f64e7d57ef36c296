"""Prefect flows (thin): load, expand, plan, execute, aggregate, publish."""
