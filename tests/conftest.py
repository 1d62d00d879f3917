"""Shared fixtures: a migrated database on each backend, the hand-built scenarios on it
(``crm_db``, ``upsell_db``), an empty database (``empty_url``) and a loopback Resend.
Test data is written with ``tests.factories``; no test module imports another.

``engine`` runs a test once on the embedded DuckDB and once on the PostgreSQL
at 127.0.0.1:5432 (``PITWALL_TEST_PG`` overrides). Outside CI an unreachable
PostgreSQL skips its half; in CI (``CI=true``) it fails the run.
``PITWALL_TEST_DUCKDB_ONLY=true`` skips the PostgreSQL half on purpose: ``make test``
sets it for the runs under ``faketime``, which cannot move the server's clock.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid

import pytest
import sqlalchemy as sa
import streamlit as st

from dashboard.core.db import make_engine
from dashboard.core.migrate import upgrade
from dashboard.core.schema import metadata
from dashboard.domain.reviews import refresh_aggregates
from tests import funnel_scenario, upsells_scenario
from tests.factories import add_mechanic, add_review, add_user
from tests.local_resend import LocalResend

PG_ADMIN_URL = os.environ.get("PITWALL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
DUCKDB_ONLY = os.environ.get("PITWALL_TEST_DUCKDB_ONLY", "").lower() == "true"
PG_SKIPPED = (
    "PostgreSQL half skipped (PITWALL_TEST_DUCKDB_ONLY)" if DUCKDB_ONLY else "PostgreSQL not reachable (outside CI)"
)


def _pg_admin():
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})


def create_pg_database(prefix: str = "pitwall_test") -> str:
    """Create an empty PostgreSQL database and return its URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    name = sa.engine.make_url(url).database
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_available() -> bool:
    if DUCKDB_ONLY:
        return False
    try:
        with _pg_admin().connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required in CI: {exc}")
        return False


@pytest.fixture
def empty_pg_url(pg_available):
    """A brand-new, empty PostgreSQL database (dropped afterwards)."""
    if not pg_available:
        pytest.skip(PG_SKIPPED)
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def _pg_migrated_url(pg_available):
    if not pg_available:
        yield None
        return
    url = create_pg_database()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def _duckdb_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("duckdb-template") / "template.duckdb"
    engine = make_engine(f"duckdb:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def _truncate_all(engine) -> None:
    names = ", ".join(engine.dialect.identifier_preparer.format_table(t) for t in reversed(metadata.sorted_tables))
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} CASCADE"))


@pytest.fixture
def pg_engine(_pg_migrated_url):
    """The migrated, emptied PostgreSQL database alone, for PostgreSQL-only behaviour."""
    if _pg_migrated_url is None:
        pytest.skip(PG_SKIPPED)
    eng = make_engine(_pg_migrated_url)
    _truncate_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def duckdb_engine(tmp_path, _duckdb_template):
    """A migrated, empty embedded DuckDB file of this test's own."""
    path = tmp_path / "pitwall.duckdb"
    shutil.copy(_duckdb_template, path)
    eng = make_engine(f"duckdb:///{path}")
    yield eng
    eng.dispose()


@pytest.fixture(params=["duckdb", "postgres"])
def engine(request):
    """A migrated, empty database on each backend."""
    return request.getfixturevalue("duckdb_engine" if request.param == "duckdb" else "pg_engine")


@pytest.fixture(params=["duckdb", "postgres"])
def empty_url(request, tmp_path):
    """The URL of a brand-new, empty database on each backend (not migrated)."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'empty.duckdb'}"
    return request.getfixturevalue("empty_pg_url")


@pytest.fixture
def crm_db(engine):
    """The funnel of tests/funnel_scenario.py."""
    with engine.begin() as conn:
        funnel_scenario.write(conn)
    return engine


@pytest.fixture
def upsell_db(engine):
    """The customers of tests/upsells_scenario.py."""
    with engine.begin() as conn:
        upsells_scenario.write(conn)
    return engine


@pytest.fixture
def resend_api():
    """A Resend-compatible server on loopback (tests/local_resend.py)."""
    with LocalResend() as server:
        yield server


@pytest.fixture
def oidc_secrets(tmp_path, monkeypatch):
    """Point the app at a secrets file with ``[auth]`` set, so staff must sign in."""
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        '[auth]\nredirect_uri = "http://localhost:8501/oauth2callback"\n'
        'cookie_secret = "test"\nclient_id = "x"\nclient_secret = "y"\n'
        'server_metadata_url = "https://id.example.com/.well-known/openid-configuration"\n'
    )
    monkeypatch.setenv("PITWALL_SECRETS", str(secrets))
    return secrets


REVIEW_EVIL = "<script>alert('x')</script> **bold** call 07700 900123"  # a waiting review's text in ``shop``


@pytest.fixture
def shop(monkeypatch, tmp_path, pg_engine):
    """Rita (brakes) with one published 5-star review and one flagged 3-star review waiting;
    the app runs against it as the anonymous admin."""
    monkeypatch.setenv("PITWALL_SECRETS", str(tmp_path / "absent-secrets.toml"))
    monkeypatch.setenv("DATABASE_URL", pg_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("PITWALL_ALLOW_ANONYMOUS", "true")
    monkeypatch.delenv("DATABASE_READ_URL", raising=False)
    with pg_engine.begin() as conn:
        rita = add_mechanic(conn, "Rita <i>Wrench</i>", specialties=["brakes"], bio="Brakes *and* [links](x)")
        add_mechanic(conn, "Bo", specialties=["engine"])
        add_review(conn, rita, 5, review_text="Sorted my brakes.")
        waiting = add_review(
            conn,
            rita,
            3,
            "pending",
            flags=["personal_data"],
            review_text=REVIEW_EVIL,
            customer_id=add_user(conn, "Cal <b>Customer</b>"),
        )
        refresh_aggregates(conn)
    st.cache_data.clear()  # the test database's URL is the same for every test: forget earlier results
    return {"engine": pg_engine, "rita": rita, "waiting": waiting}


@pytest.fixture(scope="session")
def journey_demo(tmp_path_factory):
    """The browser journeys' demo database, built once a run (``tests.journey_support.build_demo``)."""
    from tests.journey_support import build_demo

    return build_demo(tmp_path_factory.mktemp("journeys") / "template.duckdb")


@pytest.fixture
def journey_app(journey_demo, tmp_path):
    """``journey_app(role, prepare=None)``: the URL of the app running as the demo ``role`` on its own
    copy of the journeys' demo; ``prepare(engine)``, if given, writes the rows a journey needs on
    that copy before the app starts."""
    from tests.browser_support import serve

    with contextlib.ExitStack() as servers:

        def start(role: str, prepare=None) -> str:
            database = tmp_path / f"{role}.duckdb"
            shutil.copy(journey_demo.path, database)
            if prepare is not None:
                engine = make_engine(f"duckdb:///{database}")
                try:
                    prepare(engine)
                finally:
                    engine.dispose()
            return servers.enter_context(serve(database, PITWALL_DEMO_ROLE=role))

        yield start
