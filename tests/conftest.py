"""Shared fixtures live in tests/fixtures/, one module per kind of resource.

Listed so that a module is registered before any later one imports it (assertion rewriting).
"""

pytest_plugins = [
    "tests.fixtures.databases",
    "tests.fixtures.exchange",
    "tests.fixtures.api",
    "tests.fixtures.orchestrator",
    "tests.fixtures.browser",
]
