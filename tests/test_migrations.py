"""Closed migration steps do not change.

Every revision but the head is closed: databases out there have run it. Each revision applies its
step with ``migrate.apply_step``, which builds the step's tables from today's
``dashboard.core.schema`` (``schema_as_of``), so editing a table, column, constraint or index of a
closed step in schema.py silently changes what that step does on a new database. This test applies
the revisions one by one to a new DuckDB file and a new PostgreSQL database, records every statement
each one runs except reads and Alembic's bookkeeping, and compares their digests with
``migration_fingerprints.json``.

Closing a step (adding the next one): record it with
``PITWALL_TEST_RECORD_MIGRATIONS=true .venv/bin/python -m pytest tests/test_migrations.py``, which adds
the closed revisions missing from the file and never rewrites one already there.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from dashboard.core.db import make_engine
from dashboard.core.migrate import alembic_config

FINGERPRINTS = Path(__file__).with_name("migration_fingerprints.json")
RECORD = os.environ.get("PITWALL_TEST_RECORD_MIGRATIONS", "").lower() == "true"


def revisions() -> list[str]:
    """Every revision, oldest first."""
    return [
        script.revision for script in reversed(list(ScriptDirectory.from_config(alembic_config()).walk_revisions()))
    ]


def _split_top_level(body: str) -> list[str]:
    """``body`` split at the commas outside parentheses and quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(body):
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
        elif not quoted and depth == 0 and char == ",":
            parts.append(body[start:i].strip())
            start = i + 1
    return [*parts, body[start:].strip()]


def normalise(statement: str, parameters) -> str:
    """One statement with its whitespace collapsed and the table constraints of a CREATE TABLE in
    name order (schema_as_of copies them from a set, so their order varies between runs)."""
    sql = " ".join(statement.split())
    if sql.startswith("CREATE TABLE ") and sql.endswith(")"):
        head, _, body = sql[:-1].partition(" ( ")
        elements = _split_top_level(body)
        columns = [
            e for e in elements if not e.startswith(("CONSTRAINT ", "PRIMARY KEY", "UNIQUE", "CHECK", "FOREIGN"))
        ]
        constraints = sorted(e for e in elements if e not in columns)
        sql = f"{head} ({', '.join(columns + constraints)})"
    if parameters:
        sql += " -- " + json.dumps(parameters, sort_keys=True, default=str)
    return sql


def digest(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()[:16]


def applied_statements(url: str, upto: list[str]) -> dict[str, list[str]]:
    """{revision: its normalised statements, sorted} for the revisions in ``upto``, applied in order."""
    engine = make_engine(url)
    current: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip()[:6].upper() != "SELECT" and "alembic_version" not in statement:
            current.append(normalise(statement, parameters))

    out = {}
    try:
        for revision in upto:
            current.clear()
            with engine.begin() as conn:
                command.upgrade(alembic_config(conn), revision)
            out[revision] = sorted(current)
    finally:
        engine.dispose()
    return out


@pytest.fixture(params=["duckdb", "postgres"])
def new_database(request, tmp_path):
    if request.param == "duckdb":
        return request.param, f"duckdb:///{tmp_path / 'new.duckdb'}"
    return request.param, request.getfixturevalue("empty_pg_url")


def test_closed_steps_emit_the_ddl_they_were_closed_with(new_database):
    backend, url = new_database
    *closed, head = revisions()
    stored = json.loads(FINGERPRINTS.read_text()) if FINGERPRINTS.exists() else {}
    recorded = stored.setdefault(backend, {})
    statements = applied_statements(url, closed)
    if RECORD:
        for revision in closed:
            recorded.setdefault(revision, [digest(sql) for sql in statements[revision]])
        FINGERPRINTS.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")

    assert head not in recorded and set(recorded) <= set(closed), (
        f"{FINGERPRINTS.name} ({backend}) records {sorted(set(recorded) - set(closed))}, which are not closed "
        f"revisions (closed: {closed}): a closed step was removed or renamed"
    )
    unrecorded = [revision for revision in closed if revision not in recorded]
    assert not unrecorded, (
        f"closed revisions without a fingerprint ({backend}): {unrecorded}; record them with "
        "PITWALL_TEST_RECORD_MIGRATIONS=true .venv/bin/python -m pytest tests/test_migrations.py"
    )
    changed = []
    for revision in closed:
        now = [digest(sql) for sql in statements[revision]]
        if now != recorded[revision]:
            new = [sql for sql in statements[revision] if digest(sql) not in recorded[revision]]
            gone = len([d for d in recorded[revision] if d not in now])
            changed.append(
                f"{revision}: {gone} statement(s) no longer run, these are new or changed:\n    " + "\n    ".join(new)
            )
    assert not changed, (
        f"closed migration steps changed on {backend}: a closed step must not change (databases have run it); "
        "put the change in a new step instead (schema.py items with info={'step': <new step>}, "
        "info={'replaced_in': ...} for a replaced constraint, and a new revision).\n" + "\n".join(changed)
    )


def test_normalise_orders_table_constraints_and_keeps_columns_in_place():
    columns = "b INTEGER, a TEXT DEFAULT 'x, y'"
    z, a = "CONSTRAINT ck_t_z CHECK (b IN (1, 2))", "CONSTRAINT ck_t_a CHECK (b > 0)"
    one = f"CREATE TABLE t (\n\t{columns}, {z}, {a}\n)"
    other = f"CREATE TABLE t ( {columns}, {a}, {z} )"
    assert normalise(one, None) == normalise(other, None) == f"CREATE TABLE t ({columns}, {a}, {z})"
    assert normalise("CREATE TABLE t ( a TEXT, b INTEGER )", None) != normalise(
        "CREATE TABLE t ( b INTEGER, a TEXT )", None
    )
