"""A card's parameter values for this minute: what it was created with, plus a dry run's overrides.

Live trading uses exactly the stored values; ``--once --dry-run --param fast=10`` overrides that
name on every card whose algorithm declares it (checked against the declaration; a bad value is
that card's error). Either way the framework turns them into the algorithm's ``self.params``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

from algorithms import AlgorithmError, ParameterError, class_parameters, load_algorithm_class


def with_parameters(card: Mapping[str, Any], stored: Mapping[str, Any], *,
                    overrides: Optional[Mapping[str, str]] = None,
                    directory: Optional[Path] = None) -> dict[str, Any]:
    """``card`` plus ``"parameters"``: its ``stored`` values (read for every card at once with
    ``get_all_algorithm_parameters``), with the overrides its algorithm declares."""
    values = dict(stored)
    if overrides:
        values.update(_overrides_for(card, overrides, directory))
    return {**card, "parameters": values}


def _overrides_for(card: Mapping[str, Any], overrides: Mapping[str, str], directory: Optional[Path]) -> dict:
    try:
        specs = {spec.name: spec for spec in class_parameters(load_algorithm_class(card["algorithm_type"], directory))}
    except AlgorithmError as exc:
        exc.card_id = card.get("id")
        raise
    try:
        return {name: specs[name].parse(text) for name, text in overrides.items() if name in specs}
    except ParameterError as exc:
        raise AlgorithmError(f"--param: {exc}", card.get("algorithm_type"), card.get("id")) from None
