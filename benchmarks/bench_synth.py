"""Benchmark ``haihe.synth.generate_city``: wall time, peak RSS, rows per dataset, rows/s.

    .venv/bin/python benchmarks/bench_synth.py                 # 3,200,000 persons (the target)
    .venv/bin/python benchmarks/bench_synth.py --persons 200000 --keep /tmp/city

Target (the issue): 3.2 million persons in under 120 s on the 2-core reference machine.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from haihe.synth import DEFAULT_AS_OF, DEFAULT_SEED, generate_city

TARGET_PERSONS = 3_200_000
TARGET_SECONDS = 120.0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 0 when the run met the time target (scaled by size), else 1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=TARGET_PERSONS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--as-of", type=date.fromisoformat, default=DEFAULT_AS_OF)
    parser.add_argument("--keep", type=Path, help="write here and keep it (default: a temp dir)")
    args = parser.parse_args(argv)

    steps: list[tuple[str, float]] = []
    clock = [time.perf_counter()]
    current = ["start"]

    def progress(step: str, done: int, total: int) -> None:
        now = time.perf_counter()
        steps.append((current[0], now - clock[0]))
        clock[0], current[0] = now, step
        print(f"  [{done:2d}/{total}] {step}", file=sys.stderr, flush=True)

    out = args.keep or Path(tempfile.mkdtemp(prefix="haihe-bench-synth-"))
    started = time.perf_counter()
    try:
        manifest = generate_city(
            out,
            persons=args.persons,
            seed=args.seed,
            as_of=args.as_of,
            progress=progress,
            overwrite=args.keep is not None,
        )
        wall = time.perf_counter() - started
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"\nsynthetic city: {args.persons:,} persons, seed {args.seed}, as of {args.as_of}")
    print(f"{'dataset':42s} {'rows':>12s} {'MB':>9s}")
    for info in manifest.datasets:
        print(f"{info.id:42s} {info.rows:>12,d} {info.bytes / 1e6:>9.1f}")
    for info in manifest.truth:
        print(f"{'truth.' + info.id:42s} {info.rows:>12,d} {info.bytes / 1e6:>9.1f}")
    print("\nslowest steps:")
    for name, seconds in sorted(steps[1:], key=lambda s: -s[1])[:8]:
        print(f"  {name:40s} {seconds:7.2f} s")
    truth_rows = sum(t.rows for t in manifest.truth)
    print(f"\nwall time        {wall:10.2f} s")
    print(f"peak RSS         {peak_mb:10.0f} MB")
    print(
        f"dataset rows     {manifest.total_rows:>10,d}  ({manifest.total_rows / wall:,.0f} rows/s)"
    )
    print(f"truth rows       {truth_rows:>10,d}")
    budget = TARGET_SECONDS * max(args.persons / TARGET_PERSONS, 0.05)
    met = wall <= budget
    print(f"target           {budget:10.1f} s  {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
