"""Migrations: ``python -m dashboard migrate [--database URL]`` upgrades to head.

Each Alembic revision applies one step of ``dashboard.core.schema`` with
``apply_step``: tables of that step are created where absent (a platform
database already has its own), columns, checks, foreign keys and indexes of
that step are added where missing. Every step is idempotent.

DuckDB cannot add a column with a CHECK or add a constraint to a table, so on
DuckDB a table that gains columns is rebuilt (create, copy, drop, rename).

A constraint that a later step replaces (e.g. a status CHECK that gains a value)
carries ``info["replaced_in"]``: it belongs to the schema up to that step, and that
step drops it (PostgreSQL) or rebuilds the table (DuckDB) before adding the new one.
"""

from __future__ import annotations

import functools
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.ddl.impl import DefaultImpl
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.visitors import replacement_traverse

from dashboard.core.schema import STEPS, metadata, step_of

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class DuckDBImpl(DefaultImpl):
    """Lets Alembic run on duckdb-engine."""

    __dialect__ = "duckdb"
    transactional_ddl = True


def _upto(step: str) -> set[str]:
    return set(STEPS[: STEPS.index(step) + 1])


def _current(item, table: sa.Table, steps: set[str]) -> bool:
    return step_of(item, table) in steps and item.info.get("replaced_in") not in steps


def _replaced(table: sa.Table, step: str) -> list[sa.Constraint]:
    """The constraints of ``table`` (in ``dashboard.core.schema``) that ``step`` replaces."""
    full = metadata.tables[table.key]
    return [c for c in full.constraints if c.info.get("replaced_in") == step]


def _on(copy: sa.Table, expression: sa.ColumnElement) -> sa.ColumnElement:
    """An index's column or expression (e.g. ``coalesce(a, b)``) over the same columns of ``copy``."""
    return replacement_traverse(
        expression, {}, lambda element: copy.c[element.name] if isinstance(element, sa.Column) else None
    )


def schema_as_of(step: str) -> sa.MetaData:
    """A MetaData holding every table, column, constraint and index up to ``step``."""
    steps = _upto(step)
    md = sa.MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        if step_of(table) not in steps:
            continue
        items: list = [c._copy() for c in table.columns if step_of(c, table) in steps]
        for cons in table.constraints:
            if not _current(cons, table, steps) or isinstance(cons, sa.PrimaryKeyConstraint):
                continue
            if isinstance(cons, sa.CheckConstraint):
                items.append(sa.CheckConstraint(cons.sqltext, name=cons.name))
            elif isinstance(cons, sa.UniqueConstraint) and not cons._column_flag:
                items.append(sa.UniqueConstraint(*[c.name for c in cons.columns], name=cons.name))
            elif isinstance(cons, sa.ForeignKeyConstraint):
                items.append(
                    sa.ForeignKeyConstraint(
                        [c.parent.name for c in cons.elements],
                        [c.target_fullname for c in cons.elements],
                        ondelete=cons.ondelete,
                        use_alter=cons.use_alter,
                    ).ddl_if(dialect="postgresql")
                )
        copy = sa.Table(table.name, md, *items, schema=table.schema)
        for index in table.indexes:
            if step_of(index, table) in steps:
                sa.Index(
                    index.name,
                    *[_on(copy, expression) for expression in index.expressions],
                    unique=index.unique,
                    info=dict(index.info),
                    **index.dialect_kwargs,
                ).ddl_if(dialect="postgresql")
    return md


def _schema_name(conn: Connection, table: sa.Table) -> str:
    mapped = conn.get_execution_options().get("schema_translate_map", {}).get(table.schema, table.schema)
    return mapped or conn.execute(sa.text("SELECT current_schema()")).scalar_one()


def _existing_columns(conn: Connection, table: sa.Table) -> set[str]:
    rows = conn.execute(
        sa.text("SELECT column_name FROM information_schema.columns WHERE table_schema = :s AND table_name = :t"),
        {"s": _schema_name(conn, table), "t": table.name},
    )
    return {r[0] for r in rows}


def _pg_constraint_exists(conn: Connection, table: sa.Table, name: str) -> bool:
    return (
        conn.execute(
            sa.text(
                "SELECT 1 FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
                "JOIN pg_namespace n ON n.oid = t.relnamespace "
                "WHERE c.conname = :c AND t.relname = :t AND n.nspname = :s"
            ),
            {"c": name, "t": table.name, "s": _schema_name(conn, table)},
        ).first()
        is not None
    )


def _rebuild_duckdb(conn: Connection, table: sa.Table, kept: set[str]) -> None:
    temp = sa.Table(
        f"{table.name}__rebuild",
        sa.MetaData(naming_convention=metadata.naming_convention),
        *[c._copy() for c in table.columns],
        *[sa.CheckConstraint(c.sqltext, name=c.name) for c in table.constraints if isinstance(c, sa.CheckConstraint)],
        *[
            sa.UniqueConstraint(*[col.name for col in c.columns], name=c.name)
            for c in table.constraints
            if isinstance(c, sa.UniqueConstraint) and not c._column_flag
        ],
        schema=table.schema,
    )
    temp.create(conn)
    names = ", ".join(f'"{n}"' for n in table.columns.keys() if n in kept)
    prep = conn.dialect.identifier_preparer
    old, new = prep.format_table(table), prep.format_table(temp)
    conn.execute(sa.text(f"INSERT INTO {new} ({names}) SELECT {names} FROM {old}"))
    conn.execute(sa.text(f"DROP TABLE {old}"))
    conn.execute(sa.text(f"ALTER TABLE {new} RENAME TO {prep.quote(table.name)}"))


def _add_missing(conn: Connection, table: sa.Table, step: str) -> None:
    """Add the columns and constraints of ``table`` that the database lacks, replacing
    the constraints that ``step`` replaces."""
    existing = _existing_columns(conn, table)
    missing = [c for c in table.columns if c.name not in existing]
    replaced = _replaced(table, step)
    if conn.dialect.name == "duckdb":
        if missing or replaced:
            _rebuild_duckdb(conn, table, existing)
        return
    prep = conn.dialect.identifier_preparer
    for cons in replaced:
        conn.execute(
            sa.text(f"ALTER TABLE {prep.format_table(table)} DROP CONSTRAINT IF EXISTS {prep.format_constraint(cons)}")
        )
    for column in missing:
        ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
        conn.execute(
            sa.text(
                f"ALTER TABLE {conn.dialect.identifier_preparer.format_table(table)} ADD COLUMN IF NOT EXISTS {ddl}"
            )
        )
    for cons in table.constraints:
        if isinstance(cons, (sa.CheckConstraint, sa.ForeignKeyConstraint)):
            name = conn.dialect.identifier_preparer.format_constraint(cons)
            if not _pg_constraint_exists(conn, table, name.strip('"')):
                conn.execute(sa.schema.AddConstraint(cons))


def _extension_ready(conn: Connection, name: str, tried: dict[str, bool]) -> bool:
    """Whether PostgreSQL extension ``name`` is installed, creating it once when it is available
    and this role may (pg_trgm is a trusted extension: a database owner may create it)."""
    if name not in tried:
        try:
            with conn.begin_nested():
                conn.execute(sa.text(f'CREATE EXTENSION IF NOT EXISTS "{name}"'))
        except sa.exc.DBAPIError:
            pass  # not available, or not allowed: the indexes that need it are left out
        installed = sa.text("SELECT 1 FROM pg_extension WHERE extname = :name")
        tried[name] = conn.execute(installed, {"name": name}).first() is not None
    return tried[name]


def apply_step(conn: Connection, step: str) -> None:
    """Bring the database to ``step`` of ``dashboard.core.schema``; safe to run again.

    An index that needs an extension (``info["extension"]``) is created only where that
    extension is installed or can be."""
    target = schema_as_of(step)
    extensions: dict[str, bool] = {}
    if conn.dialect.name == "postgresql":
        for schema in {t.schema for t in target.tables.values() if t.schema}:
            conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
    inspector = sa.inspect(conn)
    for table in target.sorted_tables:
        exists = inspector.has_table(table.name, schema=_schema_name(conn, table))
        if not exists:
            table.create(conn)
        else:
            _add_missing(conn, table, step)
        if conn.dialect.name == "postgresql":
            for index in table.indexes:
                needs = index.info.get("extension")
                if needs is None or _extension_ready(conn, needs, extensions):
                    conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine) -> None:
    """Run every pending migration in one transaction per call."""
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")


@functools.cache
def head_revision() -> str:
    """The revision this code needs (read once from the migration scripts)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
