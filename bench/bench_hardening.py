"""What the input hardening and static discovery cost per request.

    .venv/bin/python -m bench.bench_hardening

- ``json_depth`` on a 16 KiB body (the largest the API accepts), before ``json.loads``;
- ``/api/available-algorithms``: the shipped folder read with ``ast`` (what the API does now,
  cold and with unchanged files cached by content hash) versus the loader executing the files
  (what it did before) on a cold cache;
- the same listing with 50 algorithm files in the folder.
"""
from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from algorithms import ALGORITHMS_DIR, _discovery, _loader
from algorithms._discovery import read_algorithms
from api.json_body import MAX_JSON_DEPTH, json_depth


def median_ms(work, repeat: int = 50) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def cold_load(folder: Path) -> None:
    _loader._cache.clear()
    _loader.scan_algorithms(folder)


def cold_read(folder: Path) -> None:
    _discovery._cache.clear()
    read_algorithms(folder)


def main() -> None:
    body = json.dumps({"pin": "2020", "action": "add", "pad": "x" * 16_300}).encode()
    nested = json.dumps({"a": [[[[{"b": list(range(3000))}]]]]}).encode()[:16_384]
    print(f"json_depth 16 KiB flat body: {median_ms(lambda: json_depth(body, MAX_JSON_DEPTH)):.2f} ms")
    print(f"json_depth 16 KiB of numbers: {median_ms(lambda: json_depth(nested, MAX_JSON_DEPTH)):.2f} ms")
    print(f"read_algorithms (ast), shipped folder, cold: {median_ms(lambda: cold_read(ALGORITHMS_DIR), 10):.2f} ms")
    print(f"read_algorithms (ast), shipped folder, cached: {median_ms(lambda: read_algorithms(ALGORITHMS_DIR)):.2f} ms")
    print(f"scan_algorithms (import), shipped folder, cold: {median_ms(lambda: cold_load(ALGORITHMS_DIR), 10):.2f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "algorithms"
        folder.mkdir(mode=0o755)
        for i in range(50):
            shutil.copyfile(ALGORITHMS_DIR / "lot_take_profit.py", folder / f"copy_{i:02d}.py")
        print(f"read_algorithms (ast), 50 files, cold: {median_ms(lambda: cold_read(folder), 10):.1f} ms")
        print(f"read_algorithms (ast), 50 files, cached: {median_ms(lambda: read_algorithms(folder), 10):.1f} ms")


if __name__ == "__main__":
    main()
