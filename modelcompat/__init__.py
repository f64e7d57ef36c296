"""modelcompat: catch model-artifact / serving-runtime incompatibilities before production."""
__version__ = "0.1.0"
