"""Algorithm parameters: the declaration on the class, reading it without running the file, checking values.

An algorithm declares its parameters as a plain literal on ``class Algorithm``::

    parameters = {
        "fast": {"type": "int", "default": 20, "min": 2, "max": 200, "help": "fast SMA window, in bars"},
        "mode": {"type": "choice", "default": "close", "choices": ["close", "hl2"], "help": "price used"},
    }

A literal, so the web process can read it with ``ast`` (``static_parameters``) and never execute an
algorithm file; the loader checks the same declaration on the loaded class. Values reach the
algorithm as ``self.params`` (a read-only mapping holding every declared name), set by the
framework right after ``__init__(ticker, initial_capital)``: one way, in live trading, dry runs,
backtests, previews and sweeps alike.
"""
from __future__ import annotations

import ast
import math
import weakref
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

TYPES = ("int", "float", "choice")
SPEC_KEYS = {"type", "default", "min", "max", "choices", "help"}
MAX_PARAMETERS = 20


class ParameterError(ValueError):
    """A parameter value (or a declaration) that cannot be used; ``name`` says which parameter."""

    def __init__(self, message: str, name: str | None = None):
        super().__init__(message)
        self.name = name


@dataclass(frozen=True)
class ParameterSpec:
    """One declared parameter: its type, default, inclusive bounds (int/float) or choices, and help."""

    name: str
    type: str
    default: Any
    help: str = ""
    min: float | int | None = None
    max: float | int | None = None
    choices: tuple = ()

    def to_dict(self) -> dict:
        out = {"name": self.name, "type": self.type, "default": self.default, "help": self.help}
        if self.type == "choice":
            out["choices"] = list(self.choices)
        else:
            out["min"], out["max"] = self.min, self.max
        return out

    def describe(self) -> str:
        if self.type == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        kind = "an integer" if self.type == "int" else "a number"
        return f"{kind} from {_show(self.min)} to {_show(self.max)}"

    def check(self, value: Any) -> Any:
        """``value`` as this parameter's type, or ParameterError naming the parameter."""
        problem = f"parameter {self.name!r} must be {self.describe()}, got {value!r}"
        if self.type == "choice":
            if isinstance(value, bool) or value not in self.choices:
                raise ParameterError(problem, self.name)
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParameterError(problem, self.name)
        if self.type == "int":
            if isinstance(value, float):
                if not value.is_integer():
                    raise ParameterError(problem, self.name)
                value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ParameterError(problem, self.name)
        if not self.min <= value <= self.max:
            raise ParameterError(problem, self.name)
        return value

    def parse(self, text: str) -> Any:
        """A value typed on a command line (``fast=10``), checked."""
        text = text.strip()
        if self.type == "choice":
            for choice in self.choices:
                if text == str(choice):
                    return choice
            return self.check(text)
        try:
            value = int(text) if self.type == "int" else float(text)
        except ValueError:
            raise ParameterError(f"parameter {self.name!r} must be {self.describe()}, got {text!r}",
                                 self.name) from None
        return self.check(value)


def _show(number) -> str:
    return f"{number:g}" if isinstance(number, float) else str(number)


# --------------------------------------------------------------------------- declarations


def parse_declaration(raw: Any, where: str = "parameters") -> tuple[ParameterSpec, ...]:
    """The specs of a ``parameters`` declaration; ParameterError telling the author what to fix."""
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise ParameterError(f"{where} must be a dict {{name: {{'type': ..., 'default': ...}}}}, got {type(raw).__name__}")
    if len(raw) > MAX_PARAMETERS:
        raise ParameterError(f"{where}: at most {MAX_PARAMETERS} parameters")
    return tuple(_spec(name, spec, where) for name, spec in raw.items())


def _spec(name: Any, spec: Any, where: str) -> ParameterSpec:
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise ParameterError(f"{where}: parameter name {name!r} must be a plain identifier")
    if not isinstance(spec, Mapping):
        raise ParameterError(f"{where}[{name!r}] must be a dict with 'type' and 'default'", name)
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise ParameterError(f"{where}[{name!r}] has unknown key(s) {unknown}; allowed: {sorted(SPEC_KEYS)}", name)
    kind = spec.get("type")
    if kind not in TYPES:
        raise ParameterError(f"{where}[{name!r}]['type'] must be one of {', '.join(TYPES)}, got {kind!r}", name)
    help_text = spec.get("help", "")
    if not isinstance(help_text, str):
        raise ParameterError(f"{where}[{name!r}]['help'] must be a string", name)
    if kind == "choice":
        choices = spec.get("choices")
        if not isinstance(choices, (list, tuple)) or not choices or \
                not all(isinstance(c, (str, int, float)) and not isinstance(c, bool) for c in choices):
            raise ParameterError(f"{where}[{name!r}] (choice) needs a non-empty 'choices' list of strings or numbers", name)
        made = ParameterSpec(name, kind, spec.get("default"), help_text, choices=tuple(choices))
    else:
        number = int if kind == "int" else (int, float)
        bounds = [spec.get("min"), spec.get("max")]
        if any(isinstance(b, bool) or not isinstance(b, number) for b in bounds) or bounds[0] > bounds[1]:
            raise ParameterError(f"{where}[{name!r}] ({kind}) needs numeric 'min' <= 'max'", name)
        if kind == "float":
            bounds = [float(b) for b in bounds]
        made = ParameterSpec(name, kind, spec.get("default"), help_text, min=bounds[0], max=bounds[1])
    try:
        default = made.check(made.default)
    except ParameterError:
        raise ParameterError(f"{where}[{name!r}]: the default {made.default!r} is not {made.describe()}", name) from None
    return ParameterSpec(made.name, made.type, default, made.help, made.min, made.max, made.choices)


def class_parameters(algorithm_class: type) -> tuple[ParameterSpec, ...]:
    """The declaration of a loaded class (none declared: no parameters)."""
    return parse_declaration(getattr(algorithm_class, "parameters", None), f"{algorithm_class.__name__}.parameters")


def static_parameters(source: str | bytes, filename: str = "<algorithm>") -> tuple[ParameterSpec, ...]:
    """The declaration read from an algorithm file's source with ``ast``, without executing it.

    Only ``parameters = {...}`` (a literal) directly in ``class Algorithm``'s body counts.
    """
    tree = ast.parse(source, filename=filename)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Algorithm":
            for item in node.body:
                value = _assigned(item, "parameters")
                if value is not None:
                    try:
                        raw = ast.literal_eval(value)
                    except ValueError:
                        raise ParameterError(f"{Path(filename).name}: Algorithm.parameters must be a plain literal "
                                             "(dicts, lists, strings, numbers), readable without running the file") from None
                    return parse_declaration(raw, f"{Path(filename).name}: parameters")
    return ()


def _assigned(node: ast.stmt, name: str):
    if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
        return node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
        return node.value
    return None


# --------------------------------------------------------------------------- values


def resolve(specs: Iterable[ParameterSpec], values: Mapping[str, Any] | None) -> dict:
    """Every declared parameter's value: the given one (checked) or its default.

    Unknown names are a ParameterError naming them, so a typo never passes silently.
    """
    specs = tuple(specs)
    if values is not None and not isinstance(values, Mapping):
        raise ParameterError("parameters must be an object of name: value")
    values = dict(values or {})
    known = {spec.name for spec in specs}
    unknown = sorted(set(values) - known)
    if unknown:
        allowed = ", ".join(sorted(known)) or "none (this algorithm takes no parameters)"
        raise ParameterError(f"unknown parameter(s) {', '.join(repr(u) for u in unknown)}; allowed: {allowed}",
                             unknown[0])
    return {spec.name: spec.check(values[spec.name]) if spec.name in values else spec.default for spec in specs}


def stored_values(specs: Iterable[ParameterSpec], stored: Mapping[str, Any] | None) -> dict:
    """A card's stored values against today's declaration: names no longer declared are dropped,
    new ones take their default, and a stored value outside today's bounds is a ParameterError."""
    specs = tuple(specs)
    known = {spec.name for spec in specs}
    return resolve(specs, {k: v for k, v in (stored or {}).items() if k in known})


def frozen(values: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(values))


_declared: "weakref.WeakKeyDictionary[type, tuple]" = weakref.WeakKeyDictionary()


def declared(algorithm_class: type) -> tuple[tuple[ParameterSpec, ...], Mapping[str, Any]]:
    """(specs, read-only defaults) of a loaded class, parsed once per class."""
    try:
        return _declared[algorithm_class]
    except (KeyError, TypeError):
        pass
    specs = class_parameters(algorithm_class)
    entry = (specs, frozen({spec.name: spec.default for spec in specs}))
    try:
        _declared[algorithm_class] = entry
    except TypeError:
        pass
    return entry


def values_for(algorithm_class: type, values: Mapping[str, Any] | None, *, stored: bool = False) -> Mapping[str, Any]:
    """The read-only ``params`` an instance of ``algorithm_class`` gets for ``values``.

    ``stored``: values a card was created with (names no longer declared are dropped).
    """
    specs, defaults = declared(algorithm_class)
    if not values:
        return defaults
    return frozen(stored_values(specs, values) if stored else resolve(specs, values))


def parse_assignments(specs: Iterable[ParameterSpec], assignments: Iterable[str]) -> dict:
    """``["fast=10", "slow=50"]`` (command-line form) as checked values."""
    by_name = {spec.name: spec for spec in specs}
    values: dict = {}
    for text in assignments:
        name, value = split_assignment(text)
        if name not in by_name:
            allowed = ", ".join(by_name) or "none (this algorithm takes no parameters)"
            raise ParameterError(f"unknown parameter {name!r}; allowed: {allowed}", name)
        values[name] = by_name[name].parse(value)
    return values


def split_assignment(text: str) -> tuple[str, str]:
    name, sep, value = str(text).partition("=")
    if not sep or not name.strip() or not value.strip():
        raise ParameterError(f"--param needs name=value, got {text!r}")
    return name.strip(), value.strip()
