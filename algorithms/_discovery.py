"""Discovery for the web process: each algorithm file is read with ``ast``, never executed.

The dashboard needs a file's name, one-line description and declared parameters, nothing that
running it could add; executing it in the API would let one file that hangs (or misbehaves) at
import tie up the server. Only the orchestrator (and the child processes it or the preview
start) imports algorithm files. The same refusals as the loader apply: names that are not plain
identifiers, files outside the folder (symlinks), files or a folder other users may write.
What only running the file can reveal (an import that fails or hangs) the orchestrator reports.

What is read, all literals in the source:
- the module docstring's first line (else the class docstring's) as the description;
- ``class Algorithm`` defined at the top level, with ``get_data_requirements`` and ``on_data``
  (unless it inherits them), an ``__init__`` callable as ``(ticker, initial_capital)`` and an
  ``interface_version`` the framework supports;
- ``parameters = {...}`` in the class body (``algorithms._params.static_parameters``).
"""
from __future__ import annotations

import ast
import hashlib
import logging
from pathlib import Path

from algorithms._framework import INTERFACE_VERSION, AlgorithmLoadError
from algorithms._loader import (AlgorithmInfo, ScanResult, _directory, _first_line, algorithm_path,
                                is_valid_algorithm_type, refuse_if_writable_by_others)
from algorithms._params import ParameterError, static_parameters

logger = logging.getLogger(__name__)

MAX_SOURCE_BYTES = 1024 * 1024  # an algorithm is a page or two; a huge file is refused, not parsed
REQUIRED_METHODS = ("get_data_requirements", "on_data")
_reported: dict[str, str] = {}
_cache: dict[Path, tuple[str, "AlgorithmInfo | AlgorithmLoadError"]] = {}  # path -> (sha256, what it says)


def _refuse(algorithm_type: str, message: str) -> AlgorithmLoadError:
    return AlgorithmLoadError(message, algorithm_type=algorithm_type)


def _source(algorithm_type: str, path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_SOURCE_BYTES:
        raise _refuse(algorithm_type, f"{path.name} is {size} bytes; an algorithm file may have at most "
                                      f"{MAX_SOURCE_BYTES}")
    return path.read_bytes()


def _parse(algorithm_type: str, path: Path, source: bytes) -> ast.Module:
    try:
        return ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise _refuse(algorithm_type, f"syntax error in {path.name} line {exc.lineno}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise _refuse(algorithm_type, f"{path.name} cannot be parsed: {type(exc).__name__}") from None


def _algorithm_class(algorithm_type: str, tree: ast.Module) -> ast.ClassDef:
    """The last top-level ``class Algorithm`` (as Python would bind it); refused if only imported."""
    name = f"{algorithm_type}.py"
    found, imported = None, False
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Algorithm":
            found, imported = node, False
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                (alias.asname or alias.name) == "Algorithm" for alias in node.names):
            found, imported = None, True
    if found is None:
        if imported:
            raise _refuse(algorithm_type, f"{name}: Algorithm must be defined in the file itself, not imported")
        raise _refuse(algorithm_type, f"{name} defines no class named Algorithm")
    return found


def _methods(cls: ast.ClassDef) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {node.name: node for node in cls.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _literal(cls: ast.ClassDef, attribute: str):
    """A class attribute assigned a literal in the class body (``ast.literal_eval``), else None."""
    for node in cls.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == attribute for t in targets) and node.value is not None:
            try:
                return ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, RecursionError):
                return None
    return None


def _takes_ticker_and_capital(init: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    args = init.args
    positional = [*args.posonlyargs, *args.args][1:]  # without self
    required = len(positional) - len(args.defaults)
    required_keywords = [a for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is None]
    fits = required <= 2 and (len(positional) >= 2 or args.vararg is not None)
    return fits and not required_keywords


def _check_class(algorithm_type: str, cls: ast.ClassDef) -> None:
    """The loader's checks that can be made on the source; inherited methods are trusted."""
    name = f"{algorithm_type}.py"
    methods = _methods(cls)
    if not cls.bases:
        for method in REQUIRED_METHODS:
            if method not in methods:
                raise _refuse(algorithm_type, f"{name}: class Algorithm has no method {method}()")
    init = methods.get("__init__")
    if init is not None and not _takes_ticker_and_capital(init):
        raise _refuse(algorithm_type, f"{name}: Algorithm(ticker, initial_capital) cannot be called: "
                                      "__init__ must take exactly these two arguments")
    version = _literal(cls, "interface_version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)
                                or not 1 <= version <= INTERFACE_VERSION):
        raise _refuse(algorithm_type, f"{name}: written for interface version {version!r}; this framework "
                                      f"supports 1 to {INTERFACE_VERSION}")


def read_algorithm(algorithm_type: str, directory: Path | str | None = None) -> AlgorithmInfo:
    """Name, description and parameters of one file, from its source; AlgorithmLoadError says why not.

    The answer is cached by the file's content hash (parsing costs milliseconds per file on a Pi).
    """
    path = algorithm_path(algorithm_type, directory)
    refuse_if_writable_by_others(algorithm_type, path)
    source = _source(algorithm_type, path)
    key, digest = path.resolve(), hashlib.sha256(source).hexdigest()
    cached = _cache.get(key)
    if cached is None or cached[0] != digest:
        try:
            cached = (digest, _read_source(algorithm_type, path, source))
        except AlgorithmLoadError as exc:
            cached = (digest, exc)
        _cache[key] = cached
    if isinstance(cached[1], AlgorithmLoadError):
        raise cached[1]
    return cached[1]


def _read_source(algorithm_type: str, path: Path, source: bytes) -> AlgorithmInfo:
    tree = _parse(algorithm_type, path, source)
    cls = _algorithm_class(algorithm_type, tree)
    _check_class(algorithm_type, cls)
    try:
        parameters = static_parameters(source, str(path))
    except ParameterError as exc:
        raise _refuse(algorithm_type, str(exc)) from None
    description = _first_line(ast.get_docstring(tree)) or _first_line(ast.get_docstring(cls))
    return AlgorithmInfo(name=algorithm_type, description=description, parameters=parameters)


def read_algorithms(directory: Path | str | None = None) -> ScanResult:
    """Every file of the folder that looks usable, and why each other one is not."""
    folder = _directory(directory)
    found, errors = [], {}
    for path in sorted(folder.glob("*.py")):
        if not is_valid_algorithm_type(path.stem):
            continue
        try:
            found.append(read_algorithm(path.stem, folder))
        except AlgorithmLoadError as exc:
            errors[path.stem] = exc.message
        except OSError as exc:
            errors[path.stem] = f"cannot read {path.name}: {exc.strerror or exc}"
    return ScanResult(found, errors)


def listed_algorithms(directory: Path | str | None = None) -> list[AlgorithmInfo]:
    """The usable files sorted by name; each refused file is logged once (again when its error changes)."""
    folder = _directory(directory)
    result = read_algorithms(folder)
    for name, error in result.errors.items():
        key = f"{folder}/{name}"
        if _reported.get(key) != error:
            logger.warning("algorithm %s not offered: %s", name, error)
            _reported[key] = error
    return result.algorithms
