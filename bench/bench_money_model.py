"""The money model run long: issue #23's proof explored far beyond CI's fixed examples.

Run: .venv/bin/python -m bench.bench_money_model [--examples 250 --steps 100 --seed 23]

Runs ``tests.money_model.MoneyMachine`` (the daemon's real money path against a small exact
broker model, every invariant checked after every step) for ``--examples`` random sequences of
up to ``--steps`` steps each, from ``--seed`` (the same seed explores the same sequences).
Prints the steps taken and what they did (minutes, orders, fills, crosses, splits, dividends,
crashes, accepted counts) and the wall time; a failure prints Hypothesis's shrunk sequence and
exits non-zero. Issue #23 asks for at least 20,000 steps.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

from hypothesis import HealthCheck, seed, settings
from hypothesis.stateful import get_state_machine_test

from tests.money_model import STATS, MoneyMachine


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=250)
    parser.add_argument("--steps", type=int, default=100, help="most steps in one sequence")
    parser.add_argument("--seed", type=int, default=23)
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # the daemon's parts log every order; the summary is what counts
    test = get_state_machine_test(MoneyMachine, settings=settings(
        max_examples=args.examples, stateful_step_count=args.steps, database=None, deadline=None,
        suppress_health_check=list(HealthCheck)))
    started = time.monotonic()
    failed = None
    try:
        seed(args.seed)(test)()
    except BaseException as exc:  # noqa: BLE001 - reported below with the figures so far
        failed = exc
    seconds = time.monotonic() - started
    print(f"money model: {STATS['examples']} sequences, {STATS['steps']:,} steps ({STATS['minutes']:,} minutes) "
          f"in {seconds:.0f} s, seed {args.seed}, up to {args.steps} steps each; "
          + ("FAILED (the shrunk sequence is above)" if failed else "every invariant held after every step"))
    for what, count in sorted(STATS.items()):
        if what not in ("examples", "steps", "minutes"):
            print(f"  {what:32} {count:>8,}")
    if failed is not None:
        raise failed
    return 0


if __name__ == "__main__":
    sys.exit(main())
