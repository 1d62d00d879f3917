"""A Resend-compatible API on loopback, for the tests, the throughput benchmark
and local runs that must not send real mail (``RESEND_API_URL=<its url>``).

It answers ``POST /emails`` and ``POST /emails/batch`` like Resend does:
- a bearer key is required (401 ``missing_api_key`` otherwise);
- ``Idempotency-Key``: the same key with the same body gets the first answer
  again and delivers nothing new; the same key with another body gets
  409 ``invalid_idempotent_request``; a key is remembered for 24 hours, as by
  Resend (``age_keys(seconds)`` makes the remembered keys older, for tests of a
  re-send after the window);
- a batch holds at most 100 emails; an email without ``from``, ``subject`` or a
  valid ``to`` fails the whole batch with 422 (strict mode) or is listed in
  ``errors`` by index while the others are delivered (``x-batch-validation: permissive``);
- scripted failures: ``fail_next(status, name, retry_after=None)`` makes the
  next request answer that error (429, 500, 422, ...) without delivering.

``deliveries`` lists every email delivered (once per email, even when a
request is repeated with its idempotency key); ``requests`` every request.
``hold_next()`` delivers the next request, then keeps its answer back until
``release()``: the client is stuck between "sent" and "answered", as in a crash.
``stop()`` closes the port (connections are refused) and ``start()`` opens it
again with everything remembered, as in an outage of Resend.
"""

from __future__ import annotations

import collections
import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BATCH_LIMIT = 100
IDEMPOTENCY_SECONDS = 24 * 3600


@dataclass
class Failure:
    status: int
    name: str
    retry_after: int | None = None


@dataclass
class Delivery:
    id: str
    idempotency_key: str | None
    email: dict


@dataclass
class _State:
    deliveries: list[Delivery] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    failures: collections.deque = field(default_factory=collections.deque)
    answers: dict = field(default_factory=dict)  # idempotency key -> (body hash, status, answer, stored at)
    hold_next: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)


def _problem(email) -> str | None:
    if not isinstance(email, dict):
        return "Each email must be an object."
    to = email.get("to")
    recipients = [to] if isinstance(to, str) else to
    if not recipients or not all(isinstance(r, str) and "@" in r for r in recipients):
        return "Invalid `to` field. The email address needs to follow the `email@example.com` format."
    if not email.get("from"):
        return "Missing `from` field."
    if not email.get("subject"):
        return "Missing `subject` field."
    return None


class LocalResend:
    def __init__(self, api_key: str = "re_local_test", delay: float = 0.0):
        self.api_key = api_key
        self.delay = delay  # seconds each request takes, to make workers overlap
        self._state = _State()
        self._lock = threading.Lock()
        self._server = self._listen(0)
        self._port = self._server.server_address[1]
        self._running = False

    def _listen(self, port: int) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        server.daemon_threads = True
        return server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def __enter__(self) -> LocalResend:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
        self.stop()

    def start(self) -> None:
        """Serve (again, on the same port, with the same memory)."""
        if self._running:
            return
        if self._server is None:
            self._server = self._listen(self._port)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        self._running = True

    def stop(self) -> None:
        """Close the port: clients get "connection refused" until ``start()``."""
        if self._server is not None:
            if self._running:
                self._server.shutdown()
            self._server.server_close()
            self._server, self._running = None, False

    # --- what the tests and the benchmark use ---------------------------------------

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._state.deliveries)

    @property
    def requests(self) -> list[dict]:
        with self._lock:
            return list(self._state.requests)

    def fail_next(self, status: int, name: str, retry_after: int | None = None) -> None:
        with self._lock:
            self._state.failures.append(Failure(status, name, retry_after))

    def hold_next(self) -> threading.Event:
        """Hold back the answer of the next request; returns an event set once it is held."""
        with self._lock:
            self._state.hold_next = True
            self._state.release = threading.Event()
            self._state.held = threading.Event()
            return self._state.held

    def release(self) -> None:
        with self._lock:
            self._state.release.set()

    def age_keys(self, seconds: float) -> None:
        """Make every remembered idempotency key ``seconds`` older (past 24 hours it is forgotten)."""
        with self._lock:
            self._state.answers = {key: (*entry[:3], entry[3] - seconds) for key, entry in self._state.answers.items()}

    # --- the API --------------------------------------------------------------------

    def _answer(self, path: str, headers: dict, body: bytes) -> tuple[int, dict, dict]:
        """(status, extra headers, JSON answer) for one request; records deliveries."""
        auth = headers.get("authorization", "")
        if auth != f"Bearer {self.api_key}":
            if not auth.removeprefix("Bearer ").strip():
                return 401, {}, _error(401, "missing_api_key", "Missing API key in the authorization header.")
            return 403, {}, _error(403, "invalid_api_key", "API key is invalid.")
        key = headers.get("idempotency-key")
        digest = hashlib.sha256(path.encode() + body).hexdigest()
        with self._lock:
            self._state.requests.append({"path": path, "headers": headers, "body": body})
            remembered = self._state.answers.get(key)
            if remembered and time.time() - remembered[3] > IDEMPOTENCY_SECONDS:
                del self._state.answers[key]  # forgotten, as by Resend after its window
            elif remembered:
                first_digest, status, answer, _ = remembered
                if first_digest != digest:
                    return (
                        409,
                        {},
                        _error(
                            409,
                            "invalid_idempotent_request",
                            "Same idempotency key used with a different request payload.",
                        ),
                    )
                return status, {}, answer
            if self._state.failures:
                failure = self._state.failures.popleft()
                extra = {"retry-after": str(failure.retry_after)} if failure.retry_after is not None else {}
                return failure.status, extra, _error(failure.status, failure.name, f"Scripted {failure.status}.")
            status, answer = self._deliver(path, headers, body, key)
            if key is not None and status == 200:
                self._state.answers[key] = (digest, status, answer, time.time())
            return status, {}, answer

    def _deliver(self, path: str, headers: dict, body: bytes, key: str | None) -> tuple[int, dict]:
        try:
            payload = json.loads(body)
        except ValueError:
            return 400, _error(400, "validation_error", "The body is not valid JSON.")
        if path == "/emails":
            problem = _problem(payload)
            if problem:
                return 422, _error(422, "validation_error", problem)
            return 200, {"id": self._record(payload, key)}
        if path != "/emails/batch":
            return 404, _error(404, "not_found", "The requested endpoint does not exist.")
        if not isinstance(payload, list) or not 1 <= len(payload) <= BATCH_LIMIT:
            return 422, _error(422, "validation_error", f"A batch holds 1 to {BATCH_LIMIT} emails.")
        problems = [{"index": i, "message": p} for i, email in enumerate(payload) if (p := _problem(email))]
        if problems and headers.get("x-batch-validation") != "permissive":
            return 422, _error(422, "validation_error", f"emails[{problems[0]['index']}]: {problems[0]['message']}")
        bad = {p["index"] for p in problems}
        data = [{"id": self._record(email, key)} for i, email in enumerate(payload) if i not in bad]
        return 200, {"data": data, **({"errors": problems} if problems else {})}

    def _record(self, email: dict, key: str | None) -> str:
        email_id = str(uuid.uuid4())
        self._state.deliveries.append(Delivery(email_id, key, email))
        return email_id

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if server.delay:
                    time.sleep(server.delay)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra, answer = server._answer(self.path, headers, body)
                with server._lock:
                    hold, server._state.hold_next = server._state.hold_next, False
                    release, held = server._state.release, server._state.held
                if hold:
                    held.set()
                    release.wait()
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client is gone (killed while we held the answer)

        return Handler


def _error(status: int, name: str, message: str) -> dict:
    return {"statusCode": status, "name": name, "message": message}
