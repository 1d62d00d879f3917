"""Helpers of the browser tests: run `streamlit run dashboard/app.py` on an embedded
demo database, drive Debian's chromium through Playwright, wait for a page to
settle, check it shows no exception, and save screenshots to test-artifacts/.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
DEMO_SCALE = "0.02"
START_TIMEOUT = 180  # seconds: the first start migrates and fills the demo database
SETTLE_MS = 60_000
EXCEPTION_TEXT = re.compile(r"Traceback|\b\w+(Error|Exception)\b|\bError:")


def require_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        message = f"chromium not found at {CHROMIUM} (make browser installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"streamlit did not answer within {START_TIMEOUT}s:\n{log.read_text()}")


def start_app(
    database: Path, log: Path, script: str = "dashboard/app.py", **env_settings: str
) -> tuple[subprocess.Popen, str]:
    """Start the app (or another Streamlit ``script`` of the repository) on a free port over the
    embedded DuckDB file ``database`` (created and filled on first start), with nothing else
    configured but ``env_settings`` (e.g. ``PITWALL_DEMO_ROLE="support"``), its output to
    ``log``. Returns the process and its URL once it answers."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "PITWALL_", "STREAMLIT_"))
    }
    env.update(
        PITWALL_DUCKDB_PATH=str(database),
        PITWALL_DEMO_SCALE=DEMO_SCALE,
        PITWALL_SECRETS=str(database.parent / "absent-secrets.toml"),
    )
    env.update(env_settings)
    port = free_port()
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                script,
                "--server.headless",
                "true",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, server, log)
    except BaseException:
        server.kill()
        server.wait()
        raise
    return server, url


@contextlib.contextmanager
def serve(database: Path, script: str = "dashboard/app.py", **env_settings: str):
    """``start_app`` for the length of the block; yields its URL. The server log must hold
    no traceback when it stops."""
    log = database.with_suffix(".log")
    server, url = start_app(database, log, script, **env_settings)
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert "Traceback" not in log.read_text(), log.read_text()


EXPECT_TIMEOUT_MS = 15_000


@contextlib.contextmanager
def browser_page():
    """A 1280x800 page of headless chromium that accepts downloads. Its assertions wait up to
    EXPECT_TIMEOUT_MS for the page to get there: on a busy machine (CI runs suites side by side)
    one script run can take seconds."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport=VIEWPORT, accept_downloads=True)
        finally:
            browser.close()


def settle(page) -> None:
    """Wait until the script run is over and no element is still loading."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning", timeout=SETTLE_MS)
    for pending in ("stSkeleton", "stSpinner"):  # placeholders of elements still loading
        expect(page.get_by_test_id(pending)).to_have_count(0, timeout=SETTLE_MS)


def open_page(page, url: str, title: str) -> None:
    """Go to ``url`` and wait for the page titled ``title`` to settle."""
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=START_TIMEOUT * 1000)
    settle(page)


def assert_no_exception(page, where: str) -> None:
    """No traceback, exception box or exception name anywhere on the page."""
    assert not EXCEPTION_TEXT.search(page.locator("body").inner_text()), where
    assert page.get_by_test_id("stException").count() == 0, where


def screenshot(page, name: str) -> None:
    """Save what the browser shows to test-artifacts/``name``.png (not committed)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png")
