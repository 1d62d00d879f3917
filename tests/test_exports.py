"""Downloads are inert in a spreadsheet: every cell of every export, and no built-in table download."""

from __future__ import annotations

import csv
import datetime as dt
import io
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from dashboard.ui.exports import as_csv, spreadsheet_safe

ROOT = Path(__file__).resolve().parents[1]


def test_csv_keeps_formulas_as_text():
    frame = pd.DataFrame({"full_name": ['=HYPERLINK("http://x")', "Ann", "-1+2", None], "n": [1, 2, 3, 4]})
    assert as_csv(frame).decode().splitlines() == [
        "full_name,n",
        '"\'=HYPERLINK(""http://x"")",1',
        "Ann,2",
        "'-1+2,3",
        ",4",
    ]


@pytest.mark.parametrize(
    "value, safe",
    [
        ("Ann\n=cmd|' /C calc'!A0", "Ann =cmd|' /C calc'!A0"),  # a formula after a line break stays in the cell
        ("Ann\r\n+1+1", "Ann +1+1"),
        ("x\r-2+3", "x -2+3"),
        ("x\u2028@SUM(A1)", "x @SUM(A1)"),
        ("\n=1+1", "' =1+1"),
        ("  =1+1", "'  =1+1"),
        ("\t=1", "'\t=1"),
        ("nul\x00byte", "nulbyte"),
        ("Ann Smith", "Ann Smith"),
    ],
)
def test_every_text_cell_is_inert(value, safe):
    assert spreadsheet_safe(value) == safe


def test_numbers_dates_and_empty_cells_are_left_alone():
    when = pd.Timestamp("2024-05-01T10:00Z")
    assert [spreadsheet_safe(v) for v in (-5, 1.5, when, dt.date(2024, 5, 1), None)] == [
        -5,
        1.5,
        when,
        dt.date(2024, 5, 1),
        None,
    ]


def test_a_multiline_value_stays_one_row_in_every_column():
    frame = pd.DataFrame({"email": ['a@example.com\n=HYPERLINK("http://evil")'], "plan": ["premium\r@x"], "n": [3]})
    rows = list(csv.reader(io.StringIO(as_csv(frame).decode())))
    assert rows == [["email", "plan", "n"], ['a@example.com =HYPERLINK("http://evil")', "premium @x", "3"]]
    assert as_csv(frame).decode().count("\n") == 2  # the header and one row


def test_streamlit_table_download_is_off():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["disableDataExport"] is True


def test_codes_read_as_labels_and_unknown_codes_as_words():
    from dashboard.ui.labels import action_label, label

    assert label("channel", "paid_search") == "Paid search"
    assert label("plan", "premium") == "Premium"
    assert label("hide_reason", "profanity") == "Profanity"
    assert label("actor", "migration") == "Database upgrade"
    assert label("session_status", "on_hold") == "On hold"  # a value added later still reads as words
    assert label("plan", None) == "—"
    assert action_label("slot.update") == "Weekly slot changed"
    assert action_label("follow_up.answer") == "Follow-up answered"


def test_name_links_carry_the_id_to_the_server_and_the_name_after_the_hash():
    from dashboard.ui.links import customer_url, mechanic_url, page_url, with_name

    assert customer_url("c1") == "customers?customer=c1"
    assert mechanic_url("m1") == "mechanics?mechanic=m1"
    assert page_url("reviews.py", status="pending", flag=None) == "reviews?status=pending"
    assert page_url("emails.py", q="a&b=c") == "emails?q=a%26b%3Dc"
    assert with_name("customers?customer=c1", "Ann <b>") == "customers?customer=c1#Ann <b>"


def test_an_export_has_the_columns_asked_for_with_times_to_the_second_in_the_display_timezone():
    from dashboard.ui.exports import export_frame

    # New York moves to summer time at 07:00 UTC on 10 March 2024; microseconds are cut, not rounded
    instants = [pd.Timestamp("2024-03-10T06:59:59.987654Z"), pd.Timestamp("2024-03-10T07:00:00Z"), None]
    frame = pd.DataFrame({"customer_id": ["c1", "c2", "c3"], "full_name": ["=Ann", "Bo", None], "at": instants})
    assert export_frame(
        frame, {"full_name": "Name", "at": "When (America/New_York)"}, times=("at",), tz="America/New_York"
    ).decode().splitlines() == [
        "Name,When (America/New_York)",
        '\'=Ann,"10 Mar 2024, 01:59:59"',  # the id stays out, the name is inert
        'Bo,"10 Mar 2024, 03:00:00"',
        ",",
    ]


def test_who_changed_something_reads_as_a_person_or_a_label():
    from dashboard.ui.labels import actor_label

    assert actor_label("migration 16") == "Database upgrade"
    assert actor_label("intake job") == "Intake job"
    assert actor_label("ada@pitwall.test") == "ada@pitwall.test"
    assert actor_label(None) == "—"
