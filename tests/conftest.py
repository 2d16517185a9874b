"""Shared fixtures live in tests/fixtures/, one module per kind of resource."""

pytest_plugins = [
    "tests.fixtures.browser",
    "tests.fixtures.databases",
    "tests.fixtures.exchange",
    "tests.fixtures.orchestrator",
    "tests.fixtures.api",
]
