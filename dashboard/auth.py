"""Staff roles and the server-side role check every write goes through."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.schema import STAFF_ROLES, staff_roles


class PermissionDenied(PermissionError):
    """The actor's role may not do this; the message says which roles may."""


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


def role_for_email(conn: Connection, email: str) -> str | None:
    """The staff role of an email address (case-insensitive), or None if not staff."""
    return conn.execute(
        sa.select(staff_roles.c.role).where(staff_roles.c.email == email.strip().lower())
    ).scalar_one_or_none()
