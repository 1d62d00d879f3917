"""The ``demo`` command's arguments and run; ``python -m dashboard`` parses, makes the engine and reports errors."""

from __future__ import annotations

import argparse
import datetime as dt
import time

from sqlalchemy.engine import Engine

from dashboard.core.validation import ranged


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scale",
        type=ranged(float, 0, 1000, above=True),
        required=True,
        help="1 = about 5,000 customers (0 < N <= 1000)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--anchor", type=dt.date.fromisoformat, help="the demo's today, YYYY-MM-DD (default: today UTC)"
    )
    parser.add_argument("--replace", action="store_true", help="empty the demo's tables first")


def run(engine: Engine, args: argparse.Namespace) -> int:
    """Load the demo data and print the rows per table. Raises ``DatabaseNotEmpty`` when the
    database has data and ``--replace`` was not given; the command line reports it."""
    from dashboard.tools.demo.load import DatabaseNotEmpty, generate, has_data  # numpy and pyarrow: only when run

    if not args.replace and has_data(engine):
        raise DatabaseNotEmpty("The database already has data: nothing loaded. Add --replace to empty it first.")
    started = time.monotonic()
    counts = generate(engine, args.scale, args.seed, args.anchor, replace=args.replace)
    print(
        f"Loaded {sum(counts.values()):,} rows in {time.monotonic() - started:.1f} s "
        f"(scale {args.scale:g}, seed {args.seed}):"
    )
    for name, rows in counts.items():
        print(f"  {name:<32} {rows:>12,}")
    return 0
