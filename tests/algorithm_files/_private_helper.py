"""Underscore files are helpers, never algorithms."""
raise RuntimeError("must never be executed by discovery")
