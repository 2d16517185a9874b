"""Issue #23's model-based proof of the money core, bounded for CI, and the sequences it found.

``MoneyMachine`` (``tests/money_model.py``) drives the daemon's real parts against a small broker
model through random sequences of minutes, partial, late and lost fills, stops, splits,
dividends, hand sales, accepted counts and crashes, checking after every step that the cards add
up to the broker, nobody goes short of shares or cash, every fill is recorded once on the right
cards and available cash keeps what the cards own. Here it runs a fixed, derandomized set of
examples; ``bench/bench_money_model.py`` runs it long (see ``bench/README.md``).
"""
from __future__ import annotations

from hypothesis import HealthCheck, settings

from tests.money_model import MoneyMachine

MoneyMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=60, derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
TestMoneyModel = MoneyMachine.TestCase
