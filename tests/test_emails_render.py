"""The templates: structure, key facts, escaping, and rendering with facts missing."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from html.parser import HTMLParser

import pytest

from dashboard.core.schema import EMAIL_MILESTONES
from dashboard.core.settings import ROOT
from dashboard.domain.emails.render import email_context, load_brand, render, sample_facts
from dashboard.domain.emails.settings import load_email_settings

NOW = dt.datetime(2026, 3, 3, 12, 0, tzinfo=dt.UTC)
SETTINGS = load_email_settings(
    {"PITWALL_APP_URL": "https://app.example.com", "PITWALL_SUPPORT_EMAIL": "support@pitwall.example"}, secrets={}
)
BRAND = load_brand("Pitwall")
EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def rendered(milestone, **overrides):
    facts = {**sample_facts(NOW), **overrides}
    return render(milestone, email_context(milestone, facts, SETTINGS, BRAND))


class Structure(HTMLParser):
    """What the HTML contains: tags with attributes, the text, and the hidden preheader."""

    def __init__(self, html: str):
        super().__init__()
        self.tags, self.text, self._in_preheader, self.preheader = [], [], False, ""
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self._in_preheader = attrs.get("class") == "preheader"

    def handle_endtag(self, tag):
        self._in_preheader = False

    def handle_data(self, data):
        if self._in_preheader:
            self.preheader += data
        else:
            self.text.append(data)

    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


KEY_FACTS = {
    "booking_confirmed": [
        "2017 Honda Civic",
        "Brakes",
        "$49.00",
        "video call",
        "(America/Chicago)",
        "Grinding noise when braking",
        "How to join",
    ],
    "mechanic_assigned": [
        "Priya Natarajan",
        "brakes, electrical, diagnostics",
        "4.9 out of 5 from 212 reviews",
        "14 years of experience",
    ],
    "session_starting": ["starts in 5 minutes", "Have these ready", "Join your session"],
    "session_ended": ["38 minutes", "What happens next", "Rate your session"],
    "summary_delivered": [
        "Front pads worn to the backing plate",
        "Walked through a visual check",
        "Front rotors (pair)",
        "book a pad and rotor replacement",
        "photos and files",
    ],
    "mechanic_nudge": ["Your customer is waiting", "Jordan Lee", "(Europe/London)", "Start the session"],
    "support_alert": [
        "has not started it",
        "3f1c2a9e-5b7d-4e21-9a0c-7d2b8e6f4a10",
        "jordan.lee@example.com",
        "priya@example.com",
        "(UTC)",
    ],
}


@pytest.mark.parametrize("milestone", EMAIL_MILESTONES)
def test_each_email_has_subject_preheader_and_both_parts_with_its_key_facts(milestone):
    email = rendered(milestone)
    html = Structure(email.html)
    assert email.subject and "\n" not in email.subject and len(email.subject) <= 120
    assert email.preheader and html.preheader.startswith(email.preheader)
    assert ("title", {}) in html.tags and email.subject in email.html
    for fact in KEY_FACTS[milestone]:
        assert fact in html.all_text(), fact
        assert fact in email.text, fact
    assert email.text.startswith("Pitwall\n=======\n") and "support@pitwall.example" in email.text
    links = [attrs["href"] for tag, attrs in html.tags if tag == "a"]
    assert any(link.startswith("https://app.example.com/sessions/3f1c2a9e") for link in links)
    assert all(link in email.text for link in links if link.startswith("https://"))


@pytest.mark.parametrize("milestone", EMAIL_MILESTONES)
def test_the_html_is_a_600px_column_with_inlined_css_dark_mode_and_nothing_remote(milestone):
    email = rendered(milestone)
    tags = Structure(email.html).tags
    card = next(attrs for tag, attrs in tags if attrs.get("class") == "card")
    assert card["width"] == "600" and "max-width: 600px" in card["style"]
    assert any(tag == "meta" and attrs.get("name") == "color-scheme" for tag, attrs in tags)
    assert "@media (prefers-color-scheme: dark)" in email.html and "@media (max-width: 620px)" in email.html
    assert all("style" in attrs for tag, attrs in tags if tag in ("td", "h1", "p", "a"))
    assert not [attrs for tag, attrs in tags if tag in ("img", "link", "script", "iframe")]
    assert not re.search(r"url\(|@import|src=", email.html)


def test_brand_colours_are_the_app_theme():
    """Emails are light whatever the reader's system: they take the light theme's colours."""
    theme = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["theme"]["light"]
    assert BRAND.primary == theme["primaryColor"] and BRAND.text == theme["textColor"]
    button = next(
        attrs
        for tag, attrs in Structure(rendered("booking_confirmed").html).tags
        if tag == "td"
        and "background-color" in attrs.get("style", "")
        and attrs.get("style", "").count(theme["primaryColor"])
    )
    assert theme["primaryColor"] in button["style"]


@pytest.mark.parametrize("milestone", EMAIL_MILESTONES)
def test_customer_and_mechanic_text_is_escaped_in_html_and_harmless_in_text(milestone):
    overrides = {
        field: f"{field} {EVIL}"
        for field in (
            "customer_name",
            "mechanic_name",
            "description",
            "findings",
            "steps_taken",
            "parts_needed",
            "next_steps",
            "vehicle_make",
            "customer_email",
            "mechanic_email",
        )
    }
    overrides["mechanic_name"] = "Evil\r\nBcc: victim@example.com \u202egnp.exe\x07" + EVIL
    overrides["specialties"] = [EVIL]
    email = rendered(milestone, **overrides)
    assert "<script" not in email.html and "&lt;script&gt;alert(" in email.html
    assert not [tag for tag, _ in Structure(email.html).tags if tag in ("script", "img")]
    assert EVIL in email.text  # plain text: shown as typed, never interpreted
    assert "\n" not in email.subject and "\r" not in email.subject and "\r" not in email.text
    for part in (email.subject, email.preheader, email.text, email.html):
        assert "\u202e" not in part and "\x07" not in part
    if milestone in ("mechanic_assigned", "summary_delivered"):  # the mechanic's name is in the subject
        assert email.subject.startswith(("Evil Bcc:", "Your session summary from Evil Bcc:"))


@pytest.mark.parametrize("milestone", EMAIL_MILESTONES)
def test_every_template_renders_with_only_the_required_facts(milestone):
    bare = {key: None for key in sample_facts(NOW)} | {
        "session_id": "3f1c2a9e-0000-0000-0000-000000000000",
        "status": "scheduled",
        "specialties": None,
    }
    email = render(milestone, email_context(milestone, bare, SETTINGS, BRAND))
    assert email.subject and email.preheader and "None" not in email.text
    assert "None" not in Structure(email.html).all_text()
    assert "https://app.example.com/sessions/3f1c2a9e-0000-0000-0000-000000000000" in email.text


def test_multi_line_text_keeps_its_lines_in_both_parts():
    email = rendered("summary_delivered", parts_needed="Pads <2>\nRotors & clips")
    assert "Pads &lt;2&gt;<br>\nRotors &amp; clips" in email.html
    assert "Pads <2>\nRotors & clips" in email.text


def test_times_are_shown_in_the_readers_timezone_and_unknown_zones_fall_back_to_utc():
    assert "Tuesday 3 March 2026 at 08:00 (America/Chicago)" in rendered("booking_confirmed").text
    assert "at 14:00 (UTC)" in rendered("booking_confirmed", customer_timezone="Mars/Olympus").text


@pytest.mark.parametrize("milestone", EMAIL_MILESTONES)
def test_user_text_is_bounded_and_long_words_wrap_in_the_column(milestone):
    from dashboard.domain.emails.render import NAME_MAX, TEXT_MAX

    name, word = "N" * 5000, "W" * 5000
    email = rendered(
        milestone,
        customer_name=name,
        mechanic_name=name,
        vehicle_make=word,
        specialties=[word],
        description=word,
        findings=word,
        steps_taken=word,
        parts_needed=word,
        next_steps=word,
    )
    for part in (email.html, email.text):
        runs = [len(run) for run in re.findall(r"N+|W+", part)]
        assert runs and max(runs) <= TEXT_MAX - 1  # cut with an ellipsis
    assert max(len(run) for run in re.findall(r"N+", email.html + email.subject)) <= NAME_MAX - 1
    assert len(email.subject) <= 120 and len(email.html) < 40_000
    content = next(attrs["style"] for tag, attrs in Structure(email.html).tags if attrs.get("class") == "content")
    assert "overflow-wrap: anywhere" in content and "word-break: break-word" in content
