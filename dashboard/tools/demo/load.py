"""Loading: migrate, check or empty the demo's tables, bulk-load every chunk in one
transaction, add the demo's settings, then refresh the funnel roll-up."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import uuid
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from tqdm import tqdm

from dashboard.core import schema as s
from dashboard.core.db import is_duckdb
from dashboard.core.errors import Conflict
from dashboard.core.migrate import schema_as_of, upgrade
from dashboard.domain import overview
from dashboard.domain.funnel import rollups
from dashboard.tools.demo.arrays import join
from dashboard.tools.demo.chunks import chunks_ahead
from dashboard.tools.demo.mechanics import Mechanics
from dashboard.tools.demo.plan import Plan
from dashboard.tools.demo.vocabulary import BASE_PRICE_CENTS, STAFF, UPSELLS

DUCKDB_LOAD_MEMORY = "3GB"

# Tables the generator fills, in load order (parents before children).
TABLES = (
    s.users,
    s.profiles,
    s.mechanic_availability_slots,
    s.mechanic_availability_overrides,
    s.requests,
    s.sessions,
    s.session_files,
    s.session_extensions,
    s.mechanic_reviews,
    s.upsell_recommendations,
    s.crm_interactions,
    s.email_outbox,
    s.mechanics,
)


class DatabaseNotEmpty(Conflict):
    """The database already holds data; ``str()`` is one line for people."""


def _table_sql(conn: Connection, table: sa.Table) -> str:
    """The table's name in SQL; ``auth.users`` is plain ``users`` on DuckDB."""
    prep = conn.dialect.identifier_preparer
    return prep.quote(table.name) if is_duckdb(conn) else prep.format_table(table)


def _columns_sql(conn: Connection, data: pa.Table) -> str:
    return ", ".join(conn.dialect.identifier_preparer.quote(c) for c in data.column_names)


class _PostgresSink:
    """``COPY ... FROM STDIN`` in CSV, written in large batches; text[] as array literals."""

    def __init__(self, conn: Connection):
        self._conn = conn
        self._cursor = conn.connection.driver_connection.cursor()

    def write(self, table: sa.Table, data: pa.Table) -> None:
        for i, field in enumerate(data.schema):
            if pa.types.is_list(field.type):
                literal = join("{", pc.binary_join(data.column(i), ","), "}")
                data = data.set_column(i, field.name, literal)
        sql = f"COPY {_table_sql(self._conn, table)} ({_columns_sql(self._conn, data)}) FROM STDIN (FORMAT csv, FREEZE)"
        with self._cursor.copy(sql) as copy:
            for batch in data.to_batches(max_chunksize=200_000):
                buffer = io.BytesIO()
                pcsv.write_csv(batch, buffer, pcsv.WriteOptions(include_header=False))
                copy.write(buffer.getbuffer())


class _DuckDBSink:
    """``INSERT ... SELECT`` from the Arrow table as a relation.

    Not ``register``: a view registered and dropped inside the load's transaction keeps its
    Arrow data alive until the commit, which at scale 100 is gigabytes.
    """

    def __init__(self, conn: Connection):
        self._conn = conn
        self._raw = conn.connection.driver_connection

    def write(self, table: sa.Table, data: pa.Table) -> None:
        columns = _columns_sql(self._conn, data)
        self._raw.from_arrow(data).query(
            "demo_rows", f"INSERT INTO {_table_sql(self._conn, table)} ({columns}) SELECT {columns} FROM demo_rows"
        )


def _existing(conn: Connection, tables) -> list[sa.Table]:
    inspector = sa.inspect(conn)
    return [t for t in tables if inspector.has_table(t.name, schema=None if is_duckdb(conn) else t.schema)]


def _has_rows(conn: Connection, tables) -> bool:
    return any(conn.execute(sa.select(sa.literal(1)).select_from(t).limit(1)).first() for t in _existing(conn, tables))


def has_data(engine: Engine) -> bool:
    """Whether any table the demo fills already has rows (the tables need not exist yet)."""
    with engine.connect() as conn:
        return _has_rows(conn, TABLES)


def _with_dependents(tables) -> list[sa.Table]:
    """``tables`` plus every table whose foreign keys reach them (what TRUNCATE CASCADE empties)."""
    out = list(tables)
    grew = True
    while grew:
        extra = [
            t for t in s.metadata.sorted_tables if t not in out and any(fk.column.table in out for fk in t.foreign_keys)
        ]
        out += extra
        grew = bool(extra)
    return out


def _clear(conn: Connection, tables) -> None:
    tables = _existing(conn, tables)  # a table of a later migration may not be there yet
    if is_duckdb(conn):
        # Dropped and created anew (DuckDB's tables have no foreign keys): a DELETE keeps the
        # old rows' versions and index entries in memory until the commit, which at scale 100
        # is more than the load's memory cap.
        # As the migrations leave it: without the constraints a later step replaced (e.g. step 12's
        # hidden_reason check, which step 20 widened to "profanity").
        current = schema_as_of(s.STEPS[-1])
        for table in tables:
            conn.execute(sa.text(f"DROP TABLE {_table_sql(conn, table)}"))
            current.tables[table.key].create(conn)
    else:
        conn.execute(sa.text(f"TRUNCATE {', '.join(_table_sql(conn, t) for t in tables)} CASCADE"))


@contextlib.contextmanager
def _without_keys(conn: Connection, tables):
    """PostgreSQL: drop the keys, indexes and foreign keys of ``tables`` during the load.

    Building them once afterwards (sorted, in parallel) beats maintaining them row by row,
    and a failed load rolls the whole transaction back, definitions included.
    """
    scope = "WITH target AS (SELECT to_regclass(name)::oid AS oid FROM unnest(CAST(:names AS text[])) AS name) "
    names = {"names": [t.fullname for t in tables]}
    constraints = conn.execute(
        sa.text(
            scope + "SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname), "
            "format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname, "
            "pg_get_constraintdef(c.oid)), "
            "c.contype = 'f' FROM pg_constraint c WHERE c.contype IN ('p', 'u', 'f') AND ("
            "c.conrelid IN (SELECT oid FROM target) OR (c.contype = 'f' AND c.confrelid IN (SELECT oid FROM target)))"
        ),
        names,
    ).all()
    indexes = conn.execute(
        sa.text(
            scope + "SELECT format('DROP INDEX %s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid) "
            "FROM pg_index i WHERE i.indrelid IN (SELECT oid FROM target) AND NOT EXISTS ("
            "SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))"
        ),
        names,
    ).all()
    foreign = [c for c in constraints if c[2]]
    keys = [c for c in constraints if not c[2]]
    for drop, *_ in foreign + keys + indexes:
        conn.execute(sa.text(drop))
    yield
    conn.execute(sa.text("SET LOCAL maintenance_work_mem = '1GB'"))
    for _, create, *_ in keys + indexes + foreign:
        conn.execute(sa.text(create))


@contextlib.contextmanager
def _duckdb_memory(conn: Connection):
    """DuckDB: cap its memory during the load (it spills to disk) so a large scale fits anywhere."""
    previous = conn.execute(sa.text("SELECT current_setting('memory_limit')")).scalar_one()
    conn.execute(sa.text(f"SET memory_limit = '{DUCKDB_LOAD_MEMORY}'"))
    try:
        yield
    finally:
        conn.execute(sa.text(f"SET memory_limit = '{previous}'"))


def _add_settings(conn: Connection) -> None:
    """The demo's staff, base prices and upsell catalogue, keeping what the database already has.

    The catalogue's first service of each type is the active one; the others are the older
    offers that past recommendations show.
    """
    conn.execute(
        sa.text(
            f"INSERT INTO {_table_sql(conn, s.staff_roles)} (email, role, display_name) "
            "VALUES (:email, :role, :name) ON CONFLICT (email) DO NOTHING"
        ),
        [{"email": e, "role": r, "name": n} for e, r, n in STAFF],
    )
    conn.execute(
        sa.text(
            f"INSERT INTO {_table_sql(conn, s.session_base_prices)} (session_type, price_cents) "
            "VALUES (:type, :cents) ON CONFLICT (session_type) DO NOTHING"
        ),
        [{"type": t, "cents": c} for t, c in BASE_PRICE_CENTS.items()],
    )
    conn.execute(
        sa.text(
            f"INSERT INTO {_table_sql(conn, s.upsell_services)} "
            "(id, recommendation_type, title, description, price_cents, is_active) "
            "VALUES (:id, :type, :title, :description, :cents, :active) ON CONFLICT DO NOTHING"
        ),
        [
            {
                "id": uuid.uuid5(uuid.NAMESPACE_URL, f"pitwall-demo:{title}"),
                "type": kind,
                "title": title,
                "description": description,
                "cents": cents,
                "active": i == 0,
            }
            for kind, offers in UPSELLS.items()
            for i, (title, description, cents) in enumerate(offers)
        ],
    )


Progress = Callable[[float, str], None]
"""Told the share of the load done (0 to 1) and what it is doing, e.g. for a progress bar."""


class _Progress:
    """A tqdm bar per table (rows loaded) and one for customers; ``hook`` is told the share done."""

    def __init__(self, enabled: bool, customers: int, hook: Progress | None = None):
        self._enabled = enabled
        self._hook, self._total, self._done = hook, max(customers, 1), 0
        self._bars: dict[str, tqdm] = {}
        self.customers = tqdm(total=customers, desc="customers", unit="", unit_scale=True, disable=not enabled)

    def add(self, table: str, rows: int) -> None:
        if table not in self._bars:
            self._bars[table] = tqdm(
                desc=table, unit=" rows", unit_scale=True, disable=not self._enabled, position=len(self._bars) + 1
            )
        self._bars[table].update(rows)

    def customers_done(self, n: int) -> None:
        self.customers.update(n)
        self._done += n
        self.tell(0.9 * self._done / self._total, f"Generating customers: {self._done:,} of {self._total:,}")

    def tell(self, share: float, stage: str) -> None:
        if self._hook is not None:
            self._hook(min(share, 1.0), stage)

    def close(self) -> None:
        for bar in (self.customers, *self._bars.values()):
            bar.close()


def generate(
    engine: Engine,
    scale: float,
    seed: int = 7,
    anchor: dt.date | None = None,
    progress: bool = True,
    *,
    replace: bool = False,
    on_progress: Progress | None = None,
) -> dict[str, int]:
    """Migrate, then load the demo data in one transaction; returns rows per table.

    Raises DatabaseNotEmpty if the demo's tables hold rows, unless ``replace`` (which empties
    them, the audit log and the tables that reference them first).
    """
    upgrade(engine)
    plan = Plan(scale, seed, anchor or dt.datetime.now(dt.UTC).date())
    counts = {t.name: 0 for t in TABLES}
    bars = _Progress(progress, plan.customers, on_progress)
    bars.tell(0.0, "Creating the tables")
    try:
        with engine.begin() as conn:
            if not replace and _has_rows(conn, TABLES):
                raise DatabaseNotEmpty("The database already has data; use --replace to empty it first.")
            _clear(conn, _with_dependents((*TABLES, s.audit_log)) if replace else TABLES)
            sink = _DuckDBSink(conn) if is_duckdb(conn) else _PostgresSink(conn)
            if not is_duckdb(conn):
                conn.execute(overview.BULK_LOAD)  # the roll-ups are rebuilt once, below

            def write(table: sa.Table, data: pa.Table) -> None:
                sink.write(table, data)
                counts[table.name] += data.num_rows
                bars.add(table.name, data.num_rows)

            with _duckdb_memory(conn) if is_duckdb(conn) else _without_keys(conn, _with_dependents(TABLES)):
                mech = Mechanics(plan)
                for table, data in mech.tables(plan).items():
                    write(table, data)
                for n, tables in chunks_ahead(plan, mech):
                    for table, data in tables.items():
                        write(table, data)
                    bars.customers_done(n)
                write(s.mechanics, mech.mechanics_table())
            _add_settings(conn)
    finally:
        bars.close()
    bars.tell(0.92, "Building the summaries")
    with engine.connect() as conn:
        conn.execute(sa.text("CHECKPOINT" if is_duckdb(conn) else "ANALYZE"))
        conn.commit()
    counts[s.crm_funnel_progress.name] = sum(r.rows for r in rollups.refresh(engine, rebuild=True))
    counts[s.kpi_buckets.name] = overview.refresh(engine, rebuild=True).buckets
    counts[s.staff_roles.name] = len(STAFF)
    return counts


def load_if_empty(
    engine: Engine, scale: float, seed: int = 7, progress: bool = True, on_progress: Progress | None = None
) -> bool:
    """Migrate; load the demo data only if there are no users yet. Returns whether it loaded;
    ``on_progress`` (see ``Progress``) follows the load."""
    upgrade(engine)
    with engine.connect() as conn:
        if conn.execute(sa.select(sa.literal(1)).select_from(s.users).limit(1)).first():
            return False
    generate(engine, scale, seed, progress=progress, on_progress=on_progress)
    return True
