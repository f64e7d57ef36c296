"""Model registries: the local file registry, the MLflow adapter, the webhook receiver, and which one is in use.

May import: errors, settings, files, model.
"""
