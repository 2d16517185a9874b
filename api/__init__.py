"""The web part: blueprints and helpers behind ``api_server.create_app``.

The API reads both databases and asks the broker for cash, tradable symbols and the clock; it
never places orders (the orchestrator is the only trader).
"""
