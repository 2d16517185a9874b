"""How long one PIN check takes with the stored parameters (and with its neighbours), so the
parameters in ``system_databse/pin_hash.py`` stay "tens of milliseconds on a Raspberry Pi 4".

Run: .venv/bin/python -m bench.bench_pin_hash [--repeat 15]
"""
from __future__ import annotations

import argparse
import statistics
import time

from system_databse import pin_hash


def timings(log2_n: int, repeat: int) -> list[float]:
    record = pin_hash.hash_pin("2020", log2_n=log2_n)
    found = []
    for _ in range(repeat):
        started = time.perf_counter()
        pin_hash.verify_pin("2021", record)
        found.append((time.perf_counter() - started) * 1000)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    for log2_n in (pin_hash.LOG2_N - 1, pin_hash.LOG2_N, pin_hash.LOG2_N + 1):
        ms = timings(log2_n, args.repeat)
        mark = "  <- stored records" if log2_n == pin_hash.LOG2_N else ""
        memory = 128 * pin_hash.BLOCK_SIZE * 2 ** log2_n / 2 ** 20
        print(f"scrypt ln={log2_n} r={pin_hash.BLOCK_SIZE} p={pin_hash.PARALLELISM} ({memory:.0f} MiB): "
              f"median {statistics.median(ms):.1f} ms, min {min(ms):.1f} ms{mark}")


if __name__ == "__main__":
    main()
