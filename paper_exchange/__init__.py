"""A local Alpaca-compatible paper exchange: trading REST, market-data REST and the market-data
stream on a simulated clock, so the unchanged ``alpaca-py`` SDK can be pointed at it.

A separate process (``python -m paper_exchange``); it imports only its own modules
and third-party libraries, never the project's production code.
"""
