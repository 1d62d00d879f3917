"""``python -m api [--host H] [--port P] [--workers N]`` serves the API with uvicorn;
``python -m api keys create NAME | list | revoke NAME`` manages the service keys.

Both use the app's database settings (``DATABASE_URL``, secrets, else the embedded file).
Exit status: 0 done, 2 configuration, database or key problem (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys

import uvicorn
from uvicorn.supervisors import Multiprocess

from api.app import TcpNoDelayConfig
from api.auth import KeyCommandError, create_key, list_keys, revoke_key
from api.settings import load_api_settings
from dashboard.core.settings import ConfigError
from dashboard.core.db import DatabaseUnavailable, check_connection, make_engine
from dashboard.core.schema import API_SCOPES


def _serve(args) -> int:
    settings = load_api_settings()
    if args.workers > 1 and settings.app.database_url.startswith("duckdb://"):
        raise ConfigError("The embedded DuckDB file takes one writer process: run one worker, "
                          "or point DATABASE_URL at PostgreSQL.")
    engine = make_engine(settings.app.database_url)
    check_connection(engine)
    engine.dispose()  # each worker opens its own
    config = TcpNoDelayConfig("api.app:create_app", factory=True, host=args.host, port=args.port,
                              workers=args.workers, proxy_headers=True, server_header=False,
                              log_level=args.log_level)
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        config.load_app()
        uvicorn.Server(config).run()
    return 0


def _keys(args) -> int:
    engine = make_engine(load_api_settings().app.database_url)
    check_connection(engine)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api", description="Pitwall's platform API.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (PostgreSQL only above 1)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    commands = parser.add_subparsers(dest="command")
    keys = commands.add_parser("keys", help="service keys: create, list, revoke")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key and print it once")
    create.add_argument("name", help="who uses it, e.g. platform-web")
    create.add_argument("--scope", action="append", choices=API_SCOPES, help="repeatable (default: platform)")
    actions.add_parser("list", help="every key: name, prefix, scopes, created, last used, revoked")
    revoke = actions.add_parser("revoke", help="refuse the key from now on")
    revoke.add_argument("name")
    args = parser.parse_args(argv)
    try:
        return _keys(args) if args.command == "keys" else _serve(args)
    except (ConfigError, DatabaseUnavailable, KeyCommandError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
