"""Probe: the out-of-process inference worker and its launcher."""
