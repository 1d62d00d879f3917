"""Staff members on the staff list of a test's database: every write re-reads the actor's
role from ``staff_roles``, so a test's actors must be there like real staff."""

from __future__ import annotations

import pytest

from dashboard.core.auth import Actor
from dashboard.core.schema import staff_roles

DATABASE_FIXTURES = ("engine", "pg_engine", "duckdb_engine")


def add_staff(engine, *actors: Actor) -> None:
    with engine.begin() as conn:
        conn.execute(staff_roles.insert(), [{"email": a.email, "role": a.role, "display_name": a.name}
                                            for a in actors])


def staff_fixture(*actors: Actor):
    """An autouse fixture for a test module: ``actors`` are staff on the database the test uses."""
    @pytest.fixture(autouse=True)
    def staff(request):
        for name in DATABASE_FIXTURES:
            if name in request.fixturenames:
                add_staff(request.getfixturevalue(name), *actors)
                return
    return staff
