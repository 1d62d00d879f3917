"""The app server's own work, without a browser: ``python -m dashboard bench --load [--sessions N]``.

A small client of Streamlit's websocket protocol (what the browser's frontend speaks on
``/_stcore/stream``): it opens a session with the subprotocol ``streamlit``, sends
``BackMsg.rerun_script`` with a ``ClientState`` naming the page (its ``page_script_hash``, as
the sidebar does) and reads ``ForwardMsg``s until ``script_finished``. The time between the two
is the server's work for that page (the client decodes nothing but the envelope, on loopback).

Two measurements, against ``python -m streamlit run dashboard/app.py`` started on a free
loopback port over the given database (anonymous admin, as the benchmark's only user):

- **warm page**: one session visits every page once (caches filled), then each again
  ``--samples`` times; p50 and p95 of the server's work per page;
- **load run**: ``--sessions`` sessions at once (default 20), each changing to the next page
  every ``--interval`` seconds (default 5) for ``--seconds`` (default 30); p50, p95 and max of
  the time to a finished page, and errors (an exception on the page, a failed run, no answer
  within 30 s, a dropped connection).

The load is bounded (its sessions, its length) and goes to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dashboard.tools.bench.api import HOST, _free_port, percentile, stop_server

ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT = 120.0
ANSWER_TIMEOUT = 30.0  # a page not finished within this counts as an error


@contextlib.contextmanager
def app_server(database_url: str, log: Path | None = None, **env_settings: str) -> Iterator[str]:
    """The app (``streamlit run dashboard/app.py``) on a free loopback port over ``database_url``,
    as the anonymous admin; yields its base URL once it answers, stops it afterwards."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "PITWALL_", "STREAMLIT_"))}
    env.update(
        DATABASE_URL=database_url,
        PITWALL_ALLOW_ANONYMOUS="true",
        PITWALL_SECRETS=str(ROOT / "data" / "bench-absent-secrets.toml"),
        **env_settings,
    )
    command = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless", "true"]
    command += ["--server.port", str(port), "--server.address", HOST, "--browser.gatherUsageStats", "false"]
    out = log.open("w") if log else subprocess.DEVNULL
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if server.poll() is not None:
                raise SystemExit(f"error: the app exited with status {server.returncode}")
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as answer:
                    if answer.read() == b"ok":
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"error: the app did not answer within {START_TIMEOUT:g} s") from None
                time.sleep(0.3)
        yield base
    finally:
        stop_server(server)
        if log:
            out.close()


@dataclass
class PageRun:
    seconds: float
    error: str | None = None


def _widget_state(element):
    """The state the browser would send back for a widget the last run drew (the value it shows),
    or None for a widget whose value the benchmark leaves alone (buttons, uploads, ...)."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    kind = element.WhichOneof("type")
    proto = getattr(element, kind) if kind else None
    state = WidgetState(id=getattr(proto, "id", ""))
    if not state.id:
        return None
    if kind == "selectbox":
        if proto.set_value:
            state.string_value = proto.raw_value
        elif proto.HasField("default") and 0 <= proto.default < len(proto.options):
            state.string_value = proto.options[proto.default]
        else:
            return None
    elif kind in ("text_input", "text_area"):
        state.string_value = proto.value if proto.set_value else proto.default
    elif kind == "date_input":
        state.string_array_value.data[:] = list(proto.value if proto.set_value else proto.default)
    elif kind == "checkbox":
        state.bool_value = proto.value if proto.set_value else proto.default
    else:
        return None
    return state


@dataclass
class Session:
    """One browser tab's worth of the protocol: a websocket, the app's pages, runs on request.
    Like the browser, each rerun sends back the values of the widgets the last run drew (the
    sidebar's period, say), so the session keeps them."""

    ws: object
    pages: dict[str, str] = field(default_factory=dict)  # title -> page_script_hash
    widgets: dict[str, object] = field(default_factory=dict)  # widget id -> its WidgetState

    @classmethod
    async def open(cls, base: str) -> Session:
        import websockets

        if not base.startswith(f"http://{HOST}:"):
            raise ValueError("the load goes to 127.0.0.1 only")
        ws = await websockets.connect(
            base.replace("http://", "ws://") + "/_stcore/stream",
            subprotocols=["streamlit"],
            max_size=None,
            open_timeout=ANSWER_TIMEOUT,
        )
        session = cls(ws)
        first = await session.run("")  # the default page, as on opening the URL
        if first.error:
            raise RuntimeError(first.error)
        return session

    async def run(self, page_hash: str) -> PageRun:
        """Rerun the script on ``page_hash`` (empty: the default page) and wait for it to finish."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_script_hash = page_hash
        msg.rerun_script.widget_states.widgets.extend(self.widgets.values())
        started = time.perf_counter()
        error = None
        drawn: dict[str, object] = {}
        try:
            await self.ws.send(msg.SerializeToString())
            async with asyncio.timeout(ANSWER_TIMEOUT):
                while True:
                    forward = ForwardMsg.FromString(await self.ws.recv())
                    kind = forward.WhichOneof("type")
                    if kind == "navigation":
                        self.pages = {p.page_name: p.page_script_hash for p in forward.navigation.app_pages}
                    elif kind == "delta" and forward.delta.new_element.WhichOneof("type") == "exception":
                        error = error or f"exception: {forward.delta.new_element.exception.message[:200]}"
                    elif kind == "delta" and forward.delta.HasField("new_element"):
                        state = _widget_state(forward.delta.new_element)
                        if state is not None:
                            drawn[state.id] = state
                    elif kind == "session_event" and forward.session_event.HasField("script_compilation_exception"):
                        error = error or "the script did not compile"
                    elif kind == "script_finished":
                        status = ForwardMsg.ScriptFinishedStatus.Name(forward.script_finished)
                        if status == "FINISHED_EARLY_FOR_RERUN":
                            continue  # the script asked for a rerun of itself: wait for that one
                        if status != "FINISHED_SUCCESSFULLY":
                            error = error or status
                        self.widgets = drawn or self.widgets
                        break
        except TimeoutError:
            error = f"no answer within {ANSWER_TIMEOUT:g} s"
        except Exception as exc:  # a dropped connection, a protocol error
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        return PageRun(time.perf_counter() - started, error)

    async def close(self) -> None:
        await self.ws.close()


def _ms(seconds: list[float], share: float) -> float:
    return percentile(seconds, share) * 1000 if seconds else float("nan")


async def warm_pages(base: str, samples: int) -> list[dict]:
    """Per page: the server's work p50/p95 (ms) over ``samples`` warm visits, and errors."""
    session = await Session.open(base)
    try:
        for page_hash in session.pages.values():  # once each: fill the caches
            await session.run(page_hash)
        rows = []
        for title, page_hash in session.pages.items():
            runs = [await session.run(page_hash) for _ in range(samples)]
            ok = [r.seconds for r in runs if r.error is None]
            rows.append(
                {
                    "page": title,
                    "p50_ms": _ms(ok, 0.5),
                    "p95_ms": _ms(ok, 0.95),
                    "errors": sum(r.error is not None for r in runs),
                    "first_error": next((r.error for r in runs if r.error), None),
                }
            )
        return rows
    finally:
        await session.close()


async def load_run(base: str, sessions: int, interval: float, seconds: float) -> dict:
    """``sessions`` sessions, each on the next page every ``interval`` seconds for ``seconds``."""
    runs: list[PageRun] = []
    opened = await asyncio.gather(*[Session.open(base) for _ in range(sessions)], return_exceptions=True)
    errors = [f"{type(s).__name__}: {s}" for s in opened if isinstance(s, BaseException)]
    live = [s for s in opened if isinstance(s, Session)]
    stop_at = time.monotonic() + seconds

    async def click(session: Session, offset: int) -> None:
        hashes = list(session.pages.values())
        await asyncio.sleep(interval * offset / max(len(live), 1))  # spread the first clicks
        step = offset
        while time.monotonic() < stop_at:
            started = time.monotonic()
            runs.append(await session.run(hashes[step % len(hashes)]))
            step += 1
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    try:
        await asyncio.gather(*[click(s, i) for i, s in enumerate(live)])
    finally:
        await asyncio.gather(*[s.close() for s in live], return_exceptions=True)
    ok = [r.seconds for r in runs if r.error is None]
    errors += [r.error for r in runs if r.error]
    return {
        "sessions": sessions,
        "pages": len(runs),
        "p50_ms": _ms(ok, 0.5),
        "p95_ms": _ms(ok, 0.95),
        "max_ms": max(ok) * 1000 if ok else float("nan"),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


def format_warm(rows: list[dict]) -> list[str]:
    width = max([len("page")] + [len(r["page"]) for r in rows])
    lines = [f"{'page':<{width}}  {'server p50 ms':>13}  {'p95 ms':>8}  {'errors':>6}"]
    lines += [f"{r['page']:<{width}}  {r['p50_ms']:>13.0f}  {r['p95_ms']:>8.0f}  {r['errors']:>6}" for r in rows]
    every = [r["p50_ms"] for r in rows]
    lines.append(f"median of the pages' p50: {statistics.median(every):.0f} ms (target: at most 100 ms)")
    lines += [f"  {r['page']}: {r['first_error']}" for r in rows if r["first_error"]]
    return lines


def format_load(result: dict, interval: float, seconds: float) -> list[str]:
    lines = [
        f"load: {result['sessions']} sessions, a page every {interval:g} s each, for {seconds:g} s: "
        f"{result['pages']} pages, p50 {result['p50_ms']:.0f} ms, p95 {result['p95_ms']:.0f} ms, "
        f"max {result['max_ms']:.0f} ms, {result['errors']} errors (target: p95 at most 1,500 ms, 0 errors)"
    ]
    if result["first_error"]:
        lines.append(f"  first error: {result['first_error']}")
    return lines


def run(database_url: str, *, samples: int, sessions: int, interval: float, seconds: float) -> tuple[list[str], bool]:
    """Both measurements against a fresh app server; the report's lines and whether the load run had no error."""
    with app_server(database_url) as base:
        warm = asyncio.run(warm_pages(base, samples))
        result = asyncio.run(load_run(base, sessions, interval, seconds))
    return format_warm(warm) + format_load(result, interval, seconds), result["errors"] == 0
