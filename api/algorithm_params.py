"""Algorithm parameters as the web process sees them: read from the files' source, never executed.

The declaration is a literal on ``class Algorithm`` (see ``algorithms/README.md``), so ``ast``
reads it; the API validates a new card's values against it and answers 400 naming the parameter.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from algorithms import AlgorithmLoadError, ParameterError, ParameterSpec, algorithm_path, resolve, static_parameters
from api.errors import ApiError


def declared(algorithm_type: str, directory: Optional[str | Path]) -> tuple[ParameterSpec, ...]:
    """The parameters ``algorithm_type`` declares; () for none. Raises AlgorithmLoadError, ParameterError."""
    path = algorithm_path(algorithm_type, directory)
    return static_parameters(path.read_bytes(), str(path))


def listing(algorithm_type: str, directory: Optional[str | Path]) -> list[dict]:
    """``[{"name", "type", "default", "min", "max" | "choices", "help"}]`` for the add dialog."""
    try:
        return [spec.to_dict() for spec in declared(algorithm_type, directory)]
    except (AlgorithmLoadError, ParameterError, SyntaxError, OSError, ValueError):
        return []  # the loader reports a broken file; it is not offered anyway


def checked_values(algorithm_type: str, directory: Optional[str | Path], given: Any) -> dict[str, Any]:
    """Every declared parameter's value (given, checked, or default); ApiError 400 naming the one at fault."""
    if given is not None and not isinstance(given, dict):
        raise ApiError(400, "parameters must be an object of name: value", field="parameters")
    try:
        specs = declared(algorithm_type, directory)
    except (ParameterError, SyntaxError, OSError, ValueError) as exc:
        raise ApiError(422, f"{algorithm_type} cannot be used: {exc}", field="algorithm_type") from None
    try:
        return resolve(specs, given)
    except ParameterError as exc:
        raise ApiError(400, str(exc), field=f"parameters.{exc.name}" if exc.name else "parameters") from None
