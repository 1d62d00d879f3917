"""The API under test: a real uvicorn on loopback, customer tokens and a JWKS of the tests' own.

``ApiServer`` serves ``api.app.create_app`` with uvicorn in a thread of the test process,
so the tests and the server share the database engine (the embedded DuckDB file takes one
process) and the tests talk to it over HTTP on 127.0.0.1 like the platform does.
``JwksServer`` publishes an EC and an RSA public key on loopback, as Supabase publishes
its signing keys.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import threading
import time
import uuid

import httpx
import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api.app import create_app
from api.auth import create_key
from api.settings import load_api_settings

JWT_SECRET = "test-secret-of-the-supabase-project-0123456789"


class JwksServer:
    """Serves ``{"keys": [...]}`` of one EC P-256 key (kid "ec-1") and one RSA key (kid "rsa-1")."""

    def __init__(self):
        self.ec_key = ec.generate_private_key(ec.SECP256R1())
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        keys = [
            {
                **json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec_key.public_key())),
                "kid": "ec-1",
                "alg": "ES256",
                "use": "sig",
            },
            {
                **json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa_key.public_key())),
                "kid": "rsa-1",
                "alg": "RS256",
                "use": "sig",
            },
        ]
        body = json.dumps({"keys": keys}).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/auth/v1/.well-known/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def token(
    customer_id,
    *,
    secret: str = JWT_SECRET,
    algorithm: str = "HS256",
    key=None,
    kid: str | None = None,
    expires_in: float = 3600,
    **claims,
) -> str:
    """A Supabase-style access token for ``customer_id`` (claims override the defaults)."""
    now = int(time.time())
    payload = {
        "sub": str(customer_id),
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + int(expires_in),
        **claims,
    }
    headers = {"kid": kid} if kid else None
    return jwt.encode(payload, key if key is not None else secret, algorithm=algorithm, headers=headers)


class ApiServer:
    """uvicorn serving the API over ``engine`` on 127.0.0.1 (a free port), in a thread."""

    def __init__(
        self, engine, database_url: str, secrets_path, jwks_url: str | None = None, *, service_key: bool = True, **env
    ):
        settings = load_api_settings(
            {
                "DATABASE_URL": database_url,
                "PITWALL_SECRETS": str(secrets_path),
                "SUPABASE_JWT_SECRET": JWT_SECRET,
                **({"SUPABASE_JWKS_URL": jwks_url} if jwks_url else {}),
                "PITWALL_API_CUSTOMER_RATE": "100000",
                "PITWALL_API_KEY_RATE": "100000",
                **env,
            }
        )
        self.engine = engine
        self.app = create_app(settings, engine)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=30)
        self.service_key = create_key(engine, f"platform-{uuid.uuid4().hex[:8]}") if service_key else None

    def close(self):
        self.http.close()
        self.server.should_exit = True
        self.thread.join(10)

    # --- requests -------------------------------------------------------------------------

    def as_customer(self, customer_id) -> dict:
        return {"Authorization": f"Bearer {token(customer_id)}"}

    def as_platform(self, customer_id=None) -> dict:
        headers = {"Authorization": f"Bearer {self.service_key}"}
        if customer_id is not None:
            headers["X-Pitwall-Customer"] = str(customer_id)
        return headers

    def get(self, path: str, headers: dict, **params) -> httpx.Response:
        return self.http.get(path, headers=headers, params=params)

    def post(self, path: str, headers: dict, body=None, *, key: str | None = None, **kw) -> httpx.Response:
        """POST with a new Idempotency-Key unless ``key`` is given."""
        headers = {"Idempotency-Key": key or str(uuid.uuid4()), **headers}
        return self.http.post(path, headers=headers, json=body, **kw)


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def served_database(request, tmp_dir, backend: str | None = None):
    """A migrated database for a test module's server: (engine, url). DuckDB: a copy of the
    migrated template of the module's own; PostgreSQL: the session's migrated database
    (tests that need it empty truncate it first, so the rows left here do not matter)."""
    import shutil

    import pytest

    from dashboard.core.db import make_engine

    if (backend or request.param) == "duckdb":
        path = tmp_dir / "api.duckdb"
        shutil.copy(request.getfixturevalue("_duckdb_template"), path)
        url = f"duckdb:///{path}"
    else:
        url = request.getfixturevalue("_pg_migrated_url")
        if url is None:
            pytest.skip("PostgreSQL not reachable (outside CI)")
    return make_engine(url), url


@contextlib.contextmanager
def api_server(request, tmp_path_factory, backend: str | None = None, jwks_url: str | None = None, **env):
    """A module's ``ApiServer`` over ``served_database``, with an empty secrets file."""
    tmp = tmp_path_factory.mktemp("api")
    (tmp / "secrets.toml").write_text("")
    engine, url = served_database(request, tmp, backend)
    server = ApiServer(engine, url, tmp / "secrets.toml", jwks_url, **env)
    try:
        yield server
    finally:
        server.close()
        engine.dispose()
