"""End to end: `streamlit run dashboard/app.py` on a tiny embedded demo database,
driven by Debian's chromium through Playwright. Every page opens as the demo
admin without an error, and a 1280x800 screenshot of each lands in test-artifacts/.
"""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dashboard import access

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DEMO_SCALE = "0.02"
START_TIMEOUT = 180  # seconds: the first start migrates and fills the demo database


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


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        message = f"chromium not found at {CHROMIUM} (make browser installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    tmp = tmp_path_factory.mktemp("browser")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DATABASE_", "PITWALL_", "STREAMLIT_"))}
    env.update(PITWALL_DUCKDB_PATH=str(tmp / "pitwall.duckdb"), PITWALL_DEMO_SCALE=DEMO_SCALE,
               PITWALL_SECRETS=str(tmp / "absent-secrets.toml"))
    port = free_port()
    log = tmp / "streamlit.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, server, log)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert "Traceback" not in log.read_text(), log.read_text()


def test_every_page_opens_as_the_demo_admin(app_url):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        for spec in access.PAGES:
            name = Path(spec.file).stem
            page.goto(f"{app_url}/{'' if name == 'overview' else name}")
            expect(page.get_by_role("heading", name=spec.title, exact=True)).to_be_visible(
                timeout=START_TIMEOUT * 1000)
            expect(page.get_by_test_id("stApp")).to_have_attribute(
                "data-test-script-state", "notRunning", timeout=60_000)
            for pending in ("stSkeleton", "stSpinner"):  # placeholders of elements still loading
                expect(page.get_by_test_id(pending)).to_have_count(0, timeout=60_000)
            expect(page.get_by_test_id("stSidebar")).to_contain_text("Demo admin")
            body = page.locator("body").inner_text()
            assert not re.search(r"Traceback|\b\w+(Error|Exception)\b|\bError:", body), spec.file
            assert page.get_by_test_id("stException").count() == 0, spec.file
            assert page.get_by_test_id("stAlertContentError").count() == 0, spec.file
            page.screenshot(path=ARTIFACTS / f"{name}.png")
        browser.close()
