"""Find and load algorithm files from the algorithms folder, and only from there.

``algorithm_type`` is a file name: a plain identifier not starting with ``_`` (so ``../x``,
``os.path`` or ``_framework`` are refused before any file is touched). Each file is executed
with ``importlib.util.spec_from_file_location`` under a private module name; the loaded class is
cached by the file's content hash, so an edited file takes effect on the next load and an
unchanged one is not executed again.
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import keyword
import logging
import stat
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from algorithms._framework import INTERFACE_VERSION, AlgorithmLoadError
from algorithms._params import ParameterError, class_parameters, static_parameters

logger = logging.getLogger(__name__)

ALGORITHMS_DIR = Path(__file__).resolve().parent
MODULE_PREFIX = "autotrader_algorithm_"

# path -> (content sha256, class, description). A cache, not state: no lock, so a file whose body
# hangs (an infinite loop at import) blocks only the caller loading it, never other cards' loads.
_cache: dict[Path, tuple[str, type, str]] = {}
_reported: dict[str, str] = {}  # folder/name -> error last logged: a broken file is logged once, not per call


@dataclass(frozen=True)
class AlgorithmInfo:
    """One usable algorithm: its ``algorithm_type`` and the one-line description for the UI."""

    name: str
    description: str
    parameters: tuple = ()  # ParameterSpec, in declaration order

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description,
                "parameters": [spec.to_dict() for spec in self.parameters]}


@dataclass(frozen=True)
class ScanResult:
    algorithms: list[AlgorithmInfo]
    errors: dict[str, str]  # algorithm_type -> what is wrong with its file


def is_valid_algorithm_type(name: object) -> bool:
    """A plain identifier, not private, not a keyword: the only names that map to a file."""
    return (isinstance(name, str) and name.isidentifier() and name.isascii() and not name.startswith("_")
            and not keyword.iskeyword(name))


def _directory(directory: Path | str | None) -> Path:
    return Path(directory).resolve() if directory is not None else ALGORITHMS_DIR


def algorithm_path(algorithm_type: str, directory: Path | str | None = None) -> Path:
    """The file for ``algorithm_type``; AlgorithmLoadError for a refused name or a missing file."""
    return _checked_path(algorithm_type, directory)[0]


def _checked_path(algorithm_type: str, directory: Path | str | None) -> tuple[Path, Path]:
    """(the file in the folder, the file it resolves to), resolved once: every minute's every card
    loads through here, so the path is not resolved again for the cache key."""
    if not is_valid_algorithm_type(algorithm_type):
        raise AlgorithmLoadError(
            f"invalid algorithm type {algorithm_type!r}: use the name of a file in the algorithms folder "
            "(letters, digits and _, not starting with _)", algorithm_type=str(algorithm_type)[:80])
    folder = _directory(directory)
    path = folder / f"{algorithm_type}.py"
    resolved = path.resolve()
    if resolved.parent != folder or not resolved.is_file():
        raise AlgorithmLoadError(f"unknown algorithm {algorithm_type!r}: no file {path.name} in {folder}",
                                 algorithm_type=algorithm_type)
    return path, resolved


def refuse_if_writable_by_others(algorithm_type: str, path: Path) -> None:
    """Like ssh with a key file: code anyone else may edit is never run with the owner's money.

    AlgorithmLoadError when the file or its folder is writable by the group or by everyone.
    """
    for what, target in (("file", path), ("folder", path.parent)):
        mode = target.stat().st_mode
        if mode & (stat.S_IWGRP | stat.S_IWOTH):
            who = "everyone" if mode & stat.S_IWOTH else "its group"
            raise AlgorithmLoadError(
                f"refused: the algorithm {what} {target} is writable by {who} (mode {stat.S_IMODE(mode):04o}), so "
                f"another user could change what trades; run: chmod go-w {target}", algorithm_type=algorithm_type)


def _module_name(algorithm_type: str, path: Path) -> str:
    """Private module name; files of another folder (tests) get their own names."""
    if path.parent.resolve() == ALGORITHMS_DIR:
        return f"{MODULE_PREFIX}{algorithm_type}"
    folder = hashlib.sha256(str(path.parent.resolve()).encode()).hexdigest()[:10]
    return f"{MODULE_PREFIX}{folder}_{algorithm_type}"


def _execute(algorithm_type: str, path: Path, source: bytes):
    """Run the file's code as a fresh module; any failure becomes AlgorithmLoadError."""
    module_name = _module_name(algorithm_type, path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses/typing look modules up while the body runs
    try:
        code = compile(source, str(path), "exec")
        exec(code, module.__dict__)  # noqa: S102 - executing the user's own algorithm file is the point
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        raise AlgorithmLoadError(f"syntax error in {path.name} line {exc.lineno}: {exc.msg}",
                                 algorithm_type=algorithm_type) from exc
    except BaseException as exc:  # noqa: BLE001 - a plugin may raise anything, even SystemExit
        sys.modules.pop(module_name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        where = traceback.extract_tb(exc.__traceback__)[-1]
        raise AlgorithmLoadError(f"{path.name} failed to import: {type(exc).__name__}: {exc} "
                                 f"({Path(where.filename).name} line {where.lineno})",
                                 algorithm_type=algorithm_type) from exc
    return module


def _algorithm_class(algorithm_type: str, module) -> type:
    """The module's own ``Algorithm`` class, checked for the interface; says what to fix."""
    cls = module.__dict__.get("Algorithm")
    name = f"{algorithm_type}.py"
    if cls is None or not inspect.isclass(cls):
        raise AlgorithmLoadError(f"{name} defines no class named Algorithm", algorithm_type=algorithm_type)
    if cls.__module__ != module.__name__:
        raise AlgorithmLoadError(f"{name}: Algorithm must be defined in the file itself, not imported",
                                 algorithm_type=algorithm_type)
    for method in ("get_data_requirements", "on_data"):
        if not callable(getattr(cls, method, None)):
            raise AlgorithmLoadError(f"{name}: class Algorithm has no method {method}()", algorithm_type=algorithm_type)
    version = getattr(cls, "interface_version", INTERFACE_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= INTERFACE_VERSION:
        raise AlgorithmLoadError(f"{name}: written for interface version {version!r}; this framework supports "
                                 f"1 to {INTERFACE_VERSION}", algorithm_type=algorithm_type)
    try:
        class_parameters(cls)
    except ParameterError as exc:
        raise AlgorithmLoadError(f"{name}: {exc}", algorithm_type=algorithm_type) from None
    try:
        inspect.signature(cls).bind("TICKER", 1000.0)
    except TypeError as exc:
        raise AlgorithmLoadError(f"{name}: Algorithm(ticker, initial_capital) cannot be called: {exc}",
                                 algorithm_type=algorithm_type) from exc
    except ValueError:
        pass  # no signature available (builtin-based class): trust it
    return cls


def load_algorithm_class(algorithm_type: str, directory: Path | str | None = None) -> type:
    """The ``Algorithm`` class of ``algorithms/<algorithm_type>.py``, re-executed when the file changed.

    Raises AlgorithmLoadError (refused name, missing file, syntax error, failing import, no class).
    """
    return _load(algorithm_type, directory)[0]


def _load(algorithm_type: str, directory: Path | str | None) -> tuple[type, str]:
    """(class, description), from the cache while the file's content is unchanged."""
    path, key = _checked_path(algorithm_type, directory)
    refuse_if_writable_by_others(algorithm_type, path)
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise AlgorithmLoadError(f"cannot read {path}: {exc}", algorithm_type=algorithm_type) from exc
    digest = hashlib.sha256(source).hexdigest()
    cached = _cache.get(key)
    if cached is not None and cached[0] == digest:
        return cached[1], cached[2]
    module = _execute(algorithm_type, path, source)
    cls = _algorithm_class(algorithm_type, module)
    _check_static_parameters(algorithm_type, path, source, cls)
    description = _first_line(module.__doc__) or _first_line(cls.__doc__)
    _cache[key] = (digest, cls, description)
    if cached is not None:
        logger.info("algorithm %s reloaded: %s changed", algorithm_type, path.name)
    return cls, description


def _check_static_parameters(algorithm_type: str, path: Path, source: bytes, cls: type) -> None:
    """The dashboard reads ``parameters`` without running the file: it must be a literal in the class body."""
    try:
        static = static_parameters(source, str(path))
    except ParameterError as exc:
        raise AlgorithmLoadError(str(exc), algorithm_type=algorithm_type) from None
    if static != class_parameters(cls):
        raise AlgorithmLoadError(f"{path.name}: declare parameters as a literal dict directly in class Algorithm's "
                                 "body (the dashboard reads them without running the file)",
                                 algorithm_type=algorithm_type)


def _first_line(text: str | None) -> str:
    return text.strip().splitlines()[0].strip() if text and text.strip() else ""


def scan_algorithms(directory: Path | str | None = None) -> ScanResult:
    """Every usable algorithm in the folder, and the error of every file that is not usable."""
    folder = _directory(directory)
    found, errors = [], {}
    for path in sorted(folder.glob("*.py")):
        name = path.stem
        if not is_valid_algorithm_type(name):
            continue
        try:
            cls, description = _load(name, folder)
        except AlgorithmLoadError as exc:
            errors[name] = exc.message
            continue
        found.append(AlgorithmInfo(name=name, description=description, parameters=class_parameters(cls)))
    return ScanResult(found, errors)


def available_algorithms(directory: Path | str | None = None) -> list[AlgorithmInfo]:
    """Usable algorithms sorted by name; broken files are logged with their error and skipped."""
    folder = _directory(directory)
    result = scan_algorithms(folder)
    for name, error in result.errors.items():
        key = f"{folder}/{name}"
        if _reported.get(key) != error:
            logger.warning("algorithm %s skipped: %s", name, error)
            _reported[key] = error
    return result.algorithms
