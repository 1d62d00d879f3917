"""Staff roles and the server-side role check every write goes through.

A write checks the role twice: ``require_role`` on the role the actor signed in
with (a quick refusal before any work), then ``require_current_role`` inside the
write's own transaction, on the role ``staff_roles`` holds now (the row locked
on PostgreSQL until the write commits, so a revocation waits for it or wins).
A staff member whose role was revoked or changed since the page loaded cannot
do one more write with the old role.

The actors who are not in ``staff_roles`` (the embedded demo's demo admin,
support or manager, and the anonymous admin a non-demo database allows by
configuration) get their role from the settings; the app vouches for them by
opening the write engine with ``vouch_for(engine, actor)``. Only code can do
that: no sign-in, page input or API request reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dashboard.core.db import locking
from dashboard.core.errors import PermissionDenied
from dashboard.core.schema import STAFF_ROLES, staff_roles


@dataclass(frozen=True)
class Actor:
    """Who is acting: the signed-in staff member (or the demo admin)."""

    email: str
    role: str
    name: str | None = None

    def __post_init__(self):
        if self.role not in STAFF_ROLES:
            raise ValueError(f"unknown role {self.role!r}")


def require_role(actor: Actor | None, *allowed: str) -> Actor:
    """Return the actor if their role is one of ``allowed``; raise PermissionDenied otherwise."""
    if actor is None:
        raise PermissionDenied("Sign in to make changes.")
    if actor.role not in allowed:
        who = " or ".join(allowed)
        raise PermissionDenied(f"Only {who} staff can do this; you are signed in as {actor.role}.")
    return actor


_VOUCHED = "pitwall_vouched_actor"


def vouch_for(engine: Engine, actor: Actor) -> Engine:
    """``engine`` on which ``actor`` keeps the role it was given by configuration (the
    embedded demo's actor, or the anonymous admin where anonymous use is allowed)."""
    return engine.execution_options(**{_VOUCHED: actor})


def require_current_role(conn: Connection, actor: Actor | None, *allowed: str) -> Actor:
    """The actor with the role ``staff_roles`` holds now, read in ``conn``'s transaction;
    PermissionDenied if they are no longer staff or their role is not one of ``allowed``.
    Call it first thing in the write's transaction and audit with the actor it returns."""
    require_role(actor, *allowed)
    if conn.get_execution_options().get(_VOUCHED) == actor:
        return actor
    query = sa.select(staff_roles.c.role).where(staff_roles.c.email == actor.email.strip().lower())
    role = conn.execute(locking(conn, query, read=True)).scalar_one_or_none()
    if role is None:
        raise PermissionDenied(f"{actor.email} is no longer on the staff list, so nothing was changed.")
    if role not in allowed:
        raise PermissionDenied(
            f"Your role was changed to {role} since you signed in: only {' or '.join(allowed)} "
            "staff can do this, so nothing was changed. Reload the page."
        )
    return Actor(actor.email, role, actor.name)


def role_for_email(conn: Connection, email: str) -> str | None:
    """The staff role of an email address (case-insensitive), or None if not staff."""
    return conn.execute(
        sa.select(staff_roles.c.role).where(staff_roles.c.email == email.strip().lower())
    ).scalar_one_or_none()
