"""Calls sys.exit while importing: must not take the process down."""
import sys

sys.exit(3)
