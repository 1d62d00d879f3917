"""Who may open which page, and who is using the app when nobody signs in.

Pure functions of the settings and the role, so they are tested without
Streamlit. The server-side check of every write stays in ``dashboard.core.auth``;
hiding a page is convenience, not protection.

Pages per role:

| area       | page                          | admin | support | manager |
|------------|-------------------------------|-------|---------|---------|
|            | Overview                      | yes   | yes     | yes     |
| Growth     | CRM funnel, Upsells           | yes   |         |         |
| Support    | Review moderation, Follow-ups, Customer lookup | yes | yes | |
| Support    | Mechanic profiles             | yes   | yes     | yes     |
| Operations | Mechanic calendars & pricing  | yes   | read    | yes     |
| Operations | Emails                        | yes   |         |         |

Emails is admin-only: it shows customer addresses and can resend mail. Support reads the
calendars (to tell a customer when a mechanic is free); only managers and admins edit them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dashboard.core.auth import Actor
from dashboard.core.settings import Settings

ALL = frozenset({"admin", "support", "manager"})
ADMIN = frozenset({"admin"})
SUPPORT = frozenset({"admin", "support"})


def demo_actor(role: str) -> Actor:
    """Who uses the embedded demo: ``[pitwall] demo_role`` (admin unless set)."""
    return Actor(f"{role}@pitwall.demo", role, f"Demo {role.capitalize()}")


DEMO_ADMIN = demo_actor("admin")
ANONYMOUS_ADMIN = Actor("anonymous@pitwall.local", "admin", "Anonymous Admin")


@dataclass(frozen=True)
class PageSpec:
    file: str  # under pages/
    title: str
    icon: str  # a Material icon, ":material/name:"
    area: str  # "" is the top of the menu, above the named areas
    roles: frozenset[str]


PAGES = (
    PageSpec("overview.py", "Overview", ":material/dashboard:", "", ALL),
    PageSpec("funnel.py", "CRM funnel", ":material/filter_alt:", "Growth", ADMIN),
    PageSpec("upsells.py", "Upsells", ":material/sell:", "Growth", ADMIN),
    PageSpec("reviews.py", "Review moderation", ":material/reviews:", "Support", SUPPORT),
    PageSpec("followups.py", "Follow-ups", ":material/forum:", "Support", SUPPORT),
    PageSpec("customers.py", "Customer lookup", ":material/person_search:", "Support", SUPPORT),
    PageSpec("mechanics.py", "Mechanic profiles", ":material/engineering:", "Support", ALL),
    PageSpec("calendars.py", "Mechanic calendars & pricing", ":material/calendar_month:", "Operations", ALL),
    PageSpec("emails.py", "Emails", ":material/mail:", "Operations", ADMIN),
)


def pages_for_role(role: str) -> dict[str, list[PageSpec]]:
    """The pages a role sees, grouped by area in menu order (empty areas left out)."""
    grouped: dict[str, list[PageSpec]] = {}
    for page in PAGES:
        if role in page.roles:
            grouped.setdefault(page.area, []).append(page)
    return grouped


def login_configured(settings: Settings) -> bool:
    """True when ``[auth]`` in secrets sets up Streamlit's OIDC login."""
    return bool(settings.secrets.get("auth"))


def actor_without_login(settings: Settings) -> Actor | None:
    """Who uses the app when login is not configured, or None when nobody may.

    The embedded demo database runs as the demo admin, or as the demo
    support or manager when ``demo_role`` says so (to try the app, and for the
    browser journeys of each role). Any other database ignores ``demo_role``
    and runs only when anonymous use is explicitly allowed, as an admin.
    """
    if settings.embedded:
        return demo_actor(settings.demo_role)
    if settings.allow_anonymous:
        return ANONYMOUS_ADMIN
    return None


def is_demo(actor: Actor) -> bool:
    return actor == demo_actor(actor.role)


def verified_email(user: Mapping[str, Any]) -> str | None:
    """The signed-in identity's email, lower-cased, when the provider says it verified
    it (``email_verified`` true); otherwise None, and the identity gets no staff role:
    an unverified address is only a claim."""
    email = str(user.get("email") or "").strip().lower()
    verified = user.get("email_verified")
    return email if email and (verified is True or str(verified).strip().lower() == "true") else None


def staff_actor(email: str, role: str | None, name: str | None = None) -> Actor | None:
    """The signed-in staff member, or None when the email has no staff role."""
    return Actor(email.strip().lower(), role, name) if role else None
