"""Shared fixtures live in tests/fixtures/, one module per kind of resource.

Listed so that a module is registered before any later one imports it (assertion rewriting).
"""
from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.databases",
    "tests.fixtures.exchange",
    "tests.fixtures.api",
    "tests.fixtures.orchestrator",
    "tests.fixtures.browser",
]

BROWSER_FILE_SECONDS = 30  # a browser file not marked slow(seconds): chromium pages take a while


def file_seconds(items) -> float:
    """About how long a file's tests run alone: its ``slow(seconds)`` mark, else a guess."""
    for item in items:
        mark = item.get_closest_marker("slow")
        if mark is not None and mark.args:
            return float(mark.args[0])
    if any(item.get_closest_marker("browser") for item in items):
        return BROWSER_FILE_SECONDS
    return 0.0


def pytest_collection_modifyitems(config, items):
    """The longest files first, then the files with the most tests (as pytest-xdist would order
    them), each file's tests in their own order. ./scripts/test hands whole files to its workers
    in this order (``--dist loadfile --no-loadscope-reorder``), so that a long file started last
    does not keep one worker busy after the others are done."""
    files: dict = {}
    for item in items:
        files.setdefault(item.path, []).append(item)
    order = sorted(files.values(), key=lambda group: (-file_seconds(group), -len(group)))
    items[:] = [item for group in order for item in group]
