"""``python -m jobs emails --once`` or ``--loop [--interval 60]``; ``python -m jobs emails-bench``.

``python -m jobs funnel [--rebuild]`` and ``python -m jobs upsells [--days N]`` keep the CRM's
derived data fresh (``dashboard/domain/funnel/rollups.py``, ``dashboard/domain/upsells.py``); run them from cron.

``python -m jobs intake --once`` or ``--loop [--interval 10]`` applies Pitwall's rules to the
reviews and follow-ups the platform wrote itself (``dashboard/domain/intake.py``).

The same command serves cron (``--once``), systemd timers and containers (``--loop``).
Exit status: 0 done, 2 configuration or database problem (one line on stderr).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Callable

from dashboard.core.settings import ConfigError, load_settings, normalize_url
from dashboard.core.db import DatabaseUnavailable, check_connection, make_engine


def _engine(database: str | None):
    engine = make_engine(normalize_url(database) if database else load_settings().database_url)
    check_connection(engine)
    return engine


def _print(line: str) -> None:
    print(line, flush=True)


def _until_stopped(loop: Callable[[threading.Event], None]) -> int:
    """Run a job's loop until SIGTERM (systemd, containers) or Ctrl-C."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        loop(stop)
    except KeyboardInterrupt:
        pass
    return 0


def _emails(args) -> int:
    from dashboard.domain.emails.settings import load_email_settings
    from dashboard.domain.emails.worker import check_ready, run_loop, run_once

    engine = _engine(args.database)
    settings = load_email_settings()
    check_ready(engine, settings)
    if args.once:
        print(run_once(engine, settings).summary())
        return 0
    return _until_stopped(lambda stop: run_loop(engine, settings, args.interval, stop, report=_print))


def _emails_bench(args) -> int:
    from dashboard.tools.bench.emails import main as bench

    return bench(args)


def _funnel(args) -> int:
    from dashboard.domain.funnel.rollups import refresh

    for result in refresh(_engine(args.database), rebuild=args.rebuild):
        print(result.summary())
    return 0


def _upsells(args) -> int:
    from dashboard.domain.upsells import refresh_recommendations

    print(refresh_recommendations(_engine(args.database), days=args.days).summary())
    return 0


def _intake(args) -> int:
    from dashboard.domain.followups import FollowUpError, FollowUpRules
    from dashboard.domain.intake import run_loop, run_once

    engine = _engine(args.database)
    try:
        rules = FollowUpRules.from_mapping(load_settings().secrets.get("followups", {}))
    except FollowUpError as exc:
        raise ConfigError(f"[followups] in secrets.toml: {exc}") from exc
    if args.once:
        print(run_once(engine, rules).summary())
        return 0
    return _until_stopped(lambda stop: run_loop(engine, args.interval, stop, report=_print, rules=rules))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs", description="Pitwall's background jobs.")
    commands = parser.add_subparsers(dest="command", required=True)
    emails = commands.add_parser("emails", help="send the milestone emails that are due")
    mode = emails.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", action="store_true", help="one run, then exit (cron)")
    mode.add_argument("--loop", action="store_true", help="run every --interval seconds until stopped")
    emails.add_argument("--interval", type=float, default=60, help="seconds between runs with --loop (default 60)")
    emails.add_argument("--database", help="database URL (default: the configured one)")
    emails.set_defaults(run=_emails)
    bench = commands.add_parser("emails-bench", help="throughput: N due emails sent to a local Resend stand-in")
    bench.add_argument("--database", required=True, help="PostgreSQL URL of a database loaded with demo data")
    bench.add_argument("--emails", type=int, default=10_000, help="due emails to create and send (default 10000)")
    bench.add_argument("--workers", type=int, default=1, help="job processes running at once (default 1)")
    bench.add_argument("--faults", action="store_true",
                       help="send through faults (a stale in-flight batch, a killed worker, a 500, 429s) and count "
                            "duplicates and losses instead of timing")
    bench.set_defaults(run=_emails_bench)
    funnel = commands.add_parser("funnel", help="bring the CRM funnel roll-up up to date")
    funnel.add_argument("--rebuild", action="store_true", help="recompute every customer, not only the changed")
    funnel.add_argument("--database", help="database URL (default: the configured one)")
    funnel.set_defaults(run=_funnel)
    upsells = commands.add_parser("upsells", help="create upsell recommendations for recent summaries")
    upsells.add_argument("--days", type=int, default=7, help="summaries of the last N days (default 7, at most 366)")
    upsells.add_argument("--database", help="database URL (default: the configured one)")
    upsells.set_defaults(run=_upsells)
    intake = commands.add_parser("intake", help="apply Pitwall's rules to reviews and follow-ups the platform wrote")
    mode = intake.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", action="store_true", help="handle what waits now, then exit (cron)")
    mode.add_argument("--loop", action="store_true",
                      help="keep handling new rows: on notification (PostgreSQL) or every --interval seconds")
    intake.add_argument("--interval", type=float, default=10,
                        help="seconds between polls with --loop (default 10; PostgreSQL also wakes on NOTIFY)")
    intake.add_argument("--database", help="database URL (default: the configured one)")
    intake.set_defaults(run=_intake)
    args = parser.parse_args(argv)
    if args.command == "upsells" and not 1 <= args.days <= 366:
        parser.error("--days must be from 1 to 366")
    if args.command in ("emails", "intake") and args.interval <= 0:
        parser.error("--interval must be positive")
    try:
        return args.run(args)
    except (ConfigError, DatabaseUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
