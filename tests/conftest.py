"""Shared fixtures live in tests/fixtures/, one module per kind of resource."""

pytest_plugins = [
    "tests.fixtures.api",
    "tests.fixtures.databases",
    "tests.fixtures.exchange",
]
