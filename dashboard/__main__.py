"""Pitwall's command line: ``python -m dashboard <command> [--database URL] ...``.

    migrate                      upgrade the database to the code's schema (safe to run again)
    demo                         load deterministic demo data (--scale, --seed, --replace)
    bench                        time the page queries; --pages the pages in a browser; --load the app server
                                 without a browser; --api the platform API; --emails [N] the email job
    emails --once | --loop       send the milestone emails that are due (cron | systemd, containers)
    intake --once | --loop       apply Pitwall's rules to the rows the platform wrote itself
    funnel [--rebuild]           bring the CRM funnel roll-up up to date (cron)
    overview [--rebuild]         fold changed buckets into the overview's roll-ups (cron; the intake job does it too)
    upsells [--days N]           create upsell recommendations for recent summaries (cron)
    api                          serve the platform API (--host, --port, --workers)
    keys create NAME | list | revoke NAME   the platform API's service keys

Every command runs on ``--database`` (default: the configured database, see
``dashboard.core.settings``), checked before the command starts. Exit status: 0 done;
1 the run failed (a benchmark's check, a database error midway); 2 a configuration,
database or input problem, told in one line on stderr (never a traceback or a credential).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable

import sqlalchemy as sa

from dashboard.core.db import DatabaseUnavailable, check_connection, explain_failure, is_duckdb, make_engine
from dashboard.core.errors import Refused
from dashboard.core.settings import ConfigError, load_settings, normalize_url
from dashboard.core.validation import ranged
from dashboard.tools.demo import command as demo

PROG = "python -m dashboard"
USER_ERRORS = (ConfigError, DatabaseUnavailable, Refused)  # "error: <message>", exit 2


def _until_stopped(loop: Callable[[threading.Event], None]) -> int:
    """Run a job's loop until SIGTERM (systemd, containers) or Ctrl-C."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        loop(stop)
    except KeyboardInterrupt:
        pass
    return 0


def _print(line: str) -> None:
    print(line, flush=True)


def _migrate(engine, args) -> int:
    from dashboard.core.migrate import current_revision, upgrade

    upgrade(engine)
    print(f"database at revision {current_revision(engine)}")
    return 0


def _bench(engine, args) -> int:
    if args.faults and not args.emails:
        raise ConfigError("--faults goes with --emails")
    if args.emails:
        from dashboard.tools.bench import emails

        return emails.run(engine, emails=args.emails, workers=args.workers or 1, faults=args.faults)
    from dashboard.tools.bench.cases import bench_context
    from dashboard.tools.bench.queries import ensure_demo_data, format_table, run_cases

    if args.pages:
        from dashboard.tools.bench import pages

        pages.chosen_pages(args.only)  # a title that matches no page: said before any data is loaded
    print(ensure_demo_data(engine, args.scale, args.seed))
    url = engine.url.render_as_string(hide_password=False)
    if args.pages:
        engine.dispose()  # DuckDB: the app server opens the file itself
        for line in pages.run(url, samples=args.samples or 5, only=args.only):
            _print(line)
        return 0
    if args.load:
        from dashboard.tools.bench import load

        engine.dispose()
        lines, clean = load.run(
            url, samples=args.samples or 5, sessions=args.sessions, interval=args.interval, seconds=args.seconds
        )
        for line in lines:
            _print(line)
        return 0 if clean else 1
    if args.api:
        from dashboard.tools.bench import api

        if args.workers and args.workers > 8:
            raise ConfigError("--workers must be from 1 to 8 with --api")
        for line in api.run(
            engine,
            url,
            workers=args.workers or 2,
            samples=args.samples or 200,
            batches=args.batches,
            clients=args.clients,
            seconds=args.seconds,
        ):
            _print(line)
        return 0
    with engine.connect() as conn:
        ctx = bench_context(conn)
    print(f"backend {engine.dialect.name}, period {ctx.start:%Y-%m-%d} to {ctx.end:%Y-%m-%d}")
    print(format_table(run_cases(engine, ctx, args.repeat, args.only)))
    return 0


def _emails(engine, args) -> int:
    from dashboard.domain.emails.settings import load_email_settings
    from dashboard.domain.emails.worker import check_ready, run_once
    from jobs.emails import run_loop

    settings = load_email_settings()
    check_ready(engine, settings)
    if args.once:
        print(run_once(engine, settings).summary())
        return 0
    return _until_stopped(lambda stop: run_loop(engine, settings, args.interval, stop, report=_print))


def _intake(engine, args) -> int:
    from dashboard.domain.followups import FollowUpRules
    from dashboard.domain.intake import run_once
    from jobs.intake import run_loop

    rules = FollowUpRules.from_settings(load_settings())
    if args.once:
        print(run_once(engine, rules).summary())
        return 0
    return _until_stopped(lambda stop: run_loop(engine, args.interval, stop, report=_print, rules=rules))


def _funnel(engine, args) -> int:
    from dashboard.domain.funnel.rollups import refresh

    for result in refresh(engine, rebuild=args.rebuild):
        print(result.summary())
    return 0


def _overview(engine, args) -> int:
    from dashboard.domain.overview import refresh

    print(refresh(engine, rebuild=args.rebuild).summary())
    return 0


def _upsells(engine, args) -> int:
    from dashboard.domain.upsells import refresh_recommendations

    print(refresh_recommendations(engine, days=args.days).summary())
    return 0


def _api(engine, args) -> int:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from api.app import TcpNoDelayConfig
    from api.settings import load_api_settings

    if args.database:
        os.environ["DATABASE_URL"] = args.database  # what each worker's create_app reads
    load_api_settings()  # a bad setting stops here, in one line, not in every worker
    if args.workers > 1 and is_duckdb(engine):
        raise ConfigError(
            "The embedded DuckDB file takes one writer process: run one worker, or point DATABASE_URL at PostgreSQL."
        )
    engine.dispose()  # each worker opens its own
    config = TcpNoDelayConfig(
        "api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=True,
        server_header=False,
        log_level=args.log_level,
    )
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        config.load_app()
        uvicorn.Server(config).run()
    return 0


def _keys(engine, args) -> int:
    from api.auth import create_key, list_keys, revoke_key

    if args.action == "create":
        key = create_key(engine, args.name, tuple(args.scope or ["platform"]))
        print(f"Created key {args.name!r}. Keep it now: it is not shown again.", file=sys.stderr)
        print(key)
    elif args.action == "list":
        for row in list_keys(engine):
            print(json.dumps(row, default=str))
    else:
        revoke_key(engine, args.name)
        print(f"Revoked key {args.name!r}.", file=sys.stderr)
    return 0


def _job_mode(parser: argparse.ArgumentParser, once: str, loop: str, interval: float) -> None:
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", action="store_true", help=f"{once}, then exit (cron)")
    mode.add_argument("--loop", action="store_true", help=loop)
    parser.add_argument(
        "--interval",
        type=ranged(float, 0, 86_400, above=True),
        default=interval,
        help=f"seconds between runs with --loop (default {interval:g})",
    )


def build_parser() -> argparse.ArgumentParser:
    from dashboard.core.schema import API_SCOPES

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database", metavar="URL", help="database URL (default: the configured one)")
    parser = argparse.ArgumentParser(prog=PROG, description="Pitwall's commands.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    def command(name: str, run: Callable, help: str, parents=(common,)) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=list(parents), help=help, description=help)
        sub.set_defaults(run=run)
        return sub

    command("migrate", _migrate, "upgrade the database to the code's schema (safe to run again)")

    demo.add_arguments(command("demo", demo.run, "load deterministic demo data"))

    bench = command("bench", _bench, "time every page query on demo data (loaded first if the database is empty)")
    bench.add_argument(
        "--scale",
        type=ranged(float, 0, 1000, above=True),
        default=1.0,
        help="demo scale to load if the database is empty (default 1)",
    )
    bench.add_argument("--seed", type=int, default=7)
    bench.add_argument("--repeat", type=ranged(int, 1, 1000), default=3, help="warm runs per query (median reported)")
    bench.add_argument(
        "--only", help="run only the queries whose name starts with this (--pages: the pages whose title does)"
    )
    what = bench.add_mutually_exclusive_group()
    what.add_argument("--api", action="store_true", help="measure the platform API over HTTP instead")
    what.add_argument(
        "--pages",
        action="store_true",
        help="time every page in headless Chromium over the real app instead (sidebar, full load, a timezone "
        "change, the page's main control)",
    )
    what.add_argument(
        "--load",
        action="store_true",
        help="measure the app server's work per warm page and a load run of --sessions sessions, "
        "without a browser (Streamlit's websocket protocol, loopback only), instead",
    )
    what.add_argument(
        "--emails",
        type=ranged(int, 1, 1_000_000),
        nargs="?",
        const=10_000,
        metavar="N",
        help="measure the email job sending N due emails (default 10000) instead, on a copy of a PostgreSQL database",
    )
    bench.add_argument(
        "--workers",
        type=ranged(int, 1, 16),
        help="API worker processes (default 2, at most 8) or email job processes (default 1)",
    )
    api = bench.add_argument_group("with --api, --pages or --load")
    api.add_argument(
        "--samples",
        type=ranged(int, 1, 10_000),
        help="timed slot and booking requests (--api, default 200); visits per page (--pages, --load: default 5)",
    )
    api.add_argument(
        "--batches", type=ranged(int, 1, 1_000), default=40, help="ingest batches of 500 events (default 40)"
    )
    api.add_argument(
        "--clients", type=ranged(int, 1, 200), default=50, help="concurrent clients of the mixed load (default 50)"
    )
    api.add_argument(
        "--seconds",
        type=ranged(float, 0, 600, above=True),
        default=30,
        help="length of the mixed load (--api) or of the load run (--load) (default 30)",
    )
    load = bench.add_argument_group("with --load")
    load.add_argument(
        "--sessions", type=ranged(int, 1, 100), default=20, help="concurrent app sessions (default 20, at most 100)"
    )
    load.add_argument(
        "--interval",
        type=ranged(float, 0.5, 60),
        default=5,
        help="seconds between a session's page changes (default 5)",
    )
    bench.add_argument_group("with --emails").add_argument(
        "--faults",
        action="store_true",
        help="send through faults (a stale in-flight batch, a killed worker, a 500, "
        "429s) and count duplicates and losses instead of timing",
    )

    _job_mode(
        command("emails", _emails, "send the milestone emails that are due"),
        "one run",
        "run every --interval seconds until stopped",
        60,
    )
    _job_mode(
        command("intake", _intake, "apply Pitwall's rules to reviews and follow-ups the platform wrote"),
        "handle what waits now",
        "keep handling new rows: on notification (PostgreSQL) or every --interval seconds",
        10,
    )
    command("funnel", _funnel, "bring the CRM funnel roll-up up to date").add_argument(
        "--rebuild", action="store_true", help="recompute every customer, not only the changed"
    )
    command("overview", _overview, "fold the changed buckets into the overview's roll-ups").add_argument(
        "--rebuild", action="store_true", help="recompute every bucket"
    )
    command("upsells", _upsells, "create upsell recommendations for recent summaries").add_argument(
        "--days", type=ranged(int, 1, 366), default=7, help="summaries of the last N days (default 7, at most 366)"
    )

    serve = command("api", _api, "serve the platform API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=ranged(int, 0, 65_535), default=8000, help="port (default 8000)")
    serve.add_argument(
        "--workers", type=ranged(int, 1, 64), default=1, help="worker processes (PostgreSQL only above 1)"
    )
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])

    # --database after the action (``keys create NAME --database URL``): on the actions' parsers only,
    # since a subparser's default would overwrite the value given to its parent
    keys = command("keys", _keys, "the platform API's service keys: create, list, revoke", parents=())
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", parents=[common], help="create a key and print it once")
    create.add_argument("name", help="who uses it, e.g. platform-web")
    create.add_argument("--scope", action="append", choices=API_SCOPES, help="repeatable (default: platform)")
    actions.add_parser("list", parents=[common], help="every key: name, prefix, scopes, created, last used, revoked")
    revoke = actions.add_parser("revoke", parents=[common], help="refuse the key from now on")
    revoke.add_argument("name")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    url, engine = "", None
    try:
        url = normalize_url(args.database) if args.database else load_settings().database_url
        try:
            engine = make_engine(url)
        except (ValueError, sa.exc.ArgumentError):
            raise ConfigError(
                "The database URL cannot be read (its host or port): check DATABASE_URL or --database."
            ) from None
        check_connection(engine)
        return args.run(engine, args)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except sa.exc.SQLAlchemyError as exc:
        print(f"error: {explain_failure(exc, url)}", file=sys.stderr)
        return 1
    finally:
        if engine is not None:
            engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
