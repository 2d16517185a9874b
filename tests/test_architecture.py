"""Who may import whom, read from the source (AST: every ``import``, at the top or inside a function).

| part           | files                          | never imports                                              |
|----------------|--------------------------------|------------------------------------------------------------|
| shared         | `shared/`                      | orchestra, api, api_server, database, system_databse, scripts, algorithms, orchestrator |
| ledger         | `system_databse/`              | anything but the standard library and shared               |
| market data    | `database/`                    | orchestra, api, api_server, system_databse, scripts, orchestrator |
| web            | `api/`, `api_server.py`        | orchestra, orchestrator                                    |
| algorithms     | `algorithms/`                  | the broker (alpaca, orchestra, shared), the databases, api, scripts |
| paper exchange | `paper_exchange/`              | every production module (it is a separate program)         |

The daemon (``orchestra/``, ``orchestrator.py``) may import everything but the web; ops
(``scripts/``) may import anything. A rule broken here is a design decision to make in
ARCHITECTURE.md first, not an exception to add to this file.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from shared.config import REPO_ROOT

PRODUCTION = {"orchestra", "orchestrator", "api", "api_server", "database", "system_databse", "shared", "scripts",
              "algorithms"}
STDLIB = set(sys.stdlib_module_names)


def python_files(part: str) -> list[Path]:
    target = REPO_ROOT / part
    return [target] if target.suffix == ".py" else sorted(target.rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """The full names of the modules ``path`` imports (relative imports made absolute)."""
    package = path.relative_to(REPO_ROOT).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else ()
            found.add(".".join([*base, *([node.module] if node.module else [])]))
    return found


def violations(parts: list[str], allowed) -> list[str]:
    """``file: module`` for every import of ``parts``' files that ``allowed(top_level_name)`` refuses."""
    return [f"{path.relative_to(REPO_ROOT)}: {module}"
            for part in parts for path in python_files(part)
            for module in sorted(imported_modules(path)) if not allowed(module.split(".")[0])]


RULES = {
    "shared imports none of the processes, the databases, ops or the algorithms":
        (["shared"], lambda top: top not in PRODUCTION - {"shared"}),
    "the ledger imports only the standard library and shared":
        (["system_databse"], lambda top: top in STDLIB or top in ("system_databse", "shared", "__future__")),
    "market data imports neither the daemon, the web, the ledger nor ops":
        (["database"], lambda top: top not in {"orchestra", "orchestrator", "api", "api_server", "system_databse",
                                               "scripts"}),
    "the web never imports the daemon":
        (["api", "api_server.py"], lambda top: top not in {"orchestra", "orchestrator"}),
    "algorithms touch neither the broker, the databases, the web nor ops":
        (["algorithms"], lambda top: top not in PRODUCTION - {"algorithms"} and top != "alpaca"),
    "the paper exchange is a separate program":
        (["paper_exchange"], lambda top: top not in PRODUCTION),
}


@pytest.mark.parametrize("rule", RULES)
def test_imports_follow_the_architecture(rule):
    parts, allowed = RULES[rule]
    assert violations(parts, allowed) == []


def test_the_walk_sees_imports_inside_functions_and_relative_ones():
    """The checker itself: a late import in a function body and a relative import are both found."""
    found = imported_modules(REPO_ROOT / "system_databse" / "connection.py")
    assert "shared.config" in found and "shared.sqlite" in found
    lazy = {m for p in python_files("api") for m in imported_modules(p)}
    assert "api.broker_reader" in lazy  # imported inside broker_factory's builder only
    assert violations(["orchestrator.py"], lambda top: top != "orchestra") != []
