"""Raises while its module body runs."""
raise RuntimeError("configuration missing")
