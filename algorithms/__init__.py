"""Algorithm framework: discovery, loading, decision checking and the runner around user code.

Algorithm files live beside this package's underscore modules; see ``algorithms/README.md``.
Other parts import from here:

    from algorithms import available_algorithms, load_algorithm_class, check_decision, decide_for_card
"""
from algorithms._checker import ACTIONS, CASH_TOLERANCE, CheckedDecision, check_decision
from algorithms._framework import (
    INTERFACE_VERSION,
    AlgorithmBase,
    AlgorithmError,
    AlgorithmLoadError,
    Bars,
    BarSeries,
    TransactionHistory,
    freeze_history,
    history_totals,
    last_completed_bar_start,
    validate_requirements,
)
from algorithms._loader import (
    ALGORITHMS_DIR,
    AlgorithmInfo,
    ScanResult,
    algorithm_path,
    available_algorithms,
    is_valid_algorithm_type,
    load_algorithm_class,
    scan_algorithms,
)
from algorithms._freshness import DEFAULT_MAX_PRICE_AGE, PriceAge, check_price_age
from algorithms._indicators import indicators_for_card
from algorithms._params import (
    ParameterError,
    ParameterSpec,
    class_parameters,
    parse_assignments,
    resolve,
    static_parameters,
)
from algorithms._runner import (
    decide,
    decide_for_card,
    instantiate,
    parameters_for,
    requirements_for_card,
    requirements_of,
)

__all__ = [
    "ACTIONS", "ALGORITHMS_DIR", "CASH_TOLERANCE", "DEFAULT_MAX_PRICE_AGE", "PriceAge", "check_price_age", "INTERFACE_VERSION", "AlgorithmBase", "AlgorithmError", "AlgorithmInfo",
    "AlgorithmLoadError", "BarSeries", "Bars", "CheckedDecision", "ParameterError", "ParameterSpec", "ScanResult",
    "TransactionHistory", "algorithm_path", "available_algorithms", "check_decision", "class_parameters", "decide",
    "decide_for_card", "freeze_history", "history_totals", "indicators_for_card",
    "parameters_for", "parse_assignments", "resolve", "static_parameters",
    "instantiate", "is_valid_algorithm_type", "last_completed_bar_start", "load_algorithm_class",
    "requirements_for_card", "requirements_of", "scan_algorithms", "validate_requirements",
]
