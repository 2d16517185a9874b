"""The detail chart's indicator lines, computed in a child process (the web process never runs algorithm code).

    echo '{"card": {"id": 1, "algorithm_type": "sma_crossover", "ticker": "NVDA", "initial_capital": 10000,
           "parameters": {}}, "stocks_db": "database/stocks.db", "start": "...Z", "end": "...Z",
           "warmup": 2000, "pick": [0, 5, 9]}' | python -m scripts.indicators_worker

Reads the card's bars from ``start`` to ``end`` (plus up to ``warmup`` bars before, so averages are
defined from the first bar drawn) read-only from stocks.db, calls the algorithm's optional
``indicators(bars)`` hook and writes one JSON line: ``{"indicators": {name: [value at each index of
pick]}}`` (indexes into the start..end bars), or ``{"error": "..."}``. The API kills it at its time limit.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Dict

import pandas as pd

from algorithms import AlgorithmError, indicators_for_card
from database import db_manager


def compute(request: Dict[str, Any]) -> Dict[str, Any]:
    card = request["card"]
    conn = db_manager.get_connection(request["stocks_db"], read_only=True)
    try:
        window = db_manager.get_bars_between(conn, card["ticker"], request["start"], request["end"])
        before = db_manager.get_last_bars(conn, card["ticker"], int(request["warmup"]), until=request["start"])
    finally:
        conn.close()
    before = before[before.index < pd.Timestamp(request["start"])]
    bars = pd.concat([before, window]) if len(before) else window
    lines = indicators_for_card(card, bars, directory=request.get("directory"))
    offset = len(before)
    return {"indicators": {name: [values[offset + i] for i in request["pick"]] for name, values in lines.items()}}


def main() -> int:
    try:
        answer = compute(json.loads(sys.stdin.read()))
    except AlgorithmError as exc:
        answer = {"error": str(exc)}
    except (KeyError, TypeError, ValueError, IndexError, OSError) as exc:
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
