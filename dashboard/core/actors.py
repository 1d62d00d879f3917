"""Who the audit trail names when no staff member acts: the platform (its API calls on
behalf of a customer) and the intake job (Pitwall's rules applied to rows the platform
wrote itself). They carry no staff role, so ``require_role`` never lets them through."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SystemActor:
    email: str  # the name in ``audit_log.actor_email``
    role: str = "platform"
    name: str | None = None


PLATFORM = SystemActor("platform")
INTAKE_JOB = SystemActor("intake job")
