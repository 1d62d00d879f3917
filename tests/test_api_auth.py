"""Who gets in: customer tokens (HS256 secret, ES256/RS256 from a JWKS on loopback), service keys
and their commands, rate limits and CORS. Real uvicorn servers on loopback, on DuckDB."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec

from api.auth import create_key, hash_key, list_keys, revoke_key
from dashboard.__main__ import main as cli
from dashboard.core import schema as s
from tests.api_support import JwksServer, api_server, served_database, token
from tests.factories import add_mechanic

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def jwks():
    server = JwksServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def api(request, tmp_path_factory, jwks):
    with api_server(request, tmp_path_factory, "duckdb", jwks.url) as server:
        yield server


@pytest.fixture
def mechanic(api):
    with api.engine.begin() as conn:
        return add_mechanic(conn, "Rita")


def profile(api, mechanic, headers):
    return api.get(f"/v1/mechanics/{mechanic}", headers)


def refused(response, detail_part: str):
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unauthorized" and detail_part in response.json()["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def bearer(text: str) -> dict:
    return {"Authorization": f"Bearer {text}"}


# --- customer tokens ---------------------------------------------------------------------------


def test_customer_tokens_signed_every_accepted_way(api, jwks, mechanic):
    customer = uuid.uuid4()
    for signed in (
        token(customer),
        token(customer, algorithm="ES256", key=jwks.ec_key, kid="ec-1"),
        token(customer, algorithm="RS256", key=jwks.rsa_key, kid="rsa-1"),
    ):
        assert profile(api, mechanic, bearer(signed)).status_code == 200


def _unsigned(customer) -> str:
    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"sub": str(customer), "aud": "authenticated", "exp": int(time.time()) + 600}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize(
    "forge, detail",
    [
        (lambda c, k: token(c, expires_in=-60), "expired"),
        (lambda c, k: token(c, secret="not-the-project-secret-at-all-0123456789"), "signature"),
        (lambda c, k: _unsigned(c), "'none'"),
        (lambda c, k: token(c, aud="anon"), "audience"),
        (
            lambda c, k: token(c, algorithm="ES256", key=ec.generate_private_key(ec.SECP256R1()), kid="ec-1"),
            "signature",
        ),
        (lambda c, k: token(c, algorithm="ES256", key=k.ec_key, kid="ec-9"), "does not know"),
        (lambda c, k: token(c, sub="service_role"), "subject"),
        (
            lambda c, k: jwt.encode(
                {"sub": str(c), "aud": "authenticated"},
                "test-secret-of-the-supabase-project-0123456789",
                algorithm="HS256",
            ),
            "signature or claims",
        ),  # no exp
        (lambda c, k: "abc.def", "not a JWT"),
    ],
)
def test_forged_or_stale_tokens_are_refused(api, jwks, mechanic, forge, detail):
    refused(profile(api, mechanic, bearer(forge(uuid.uuid4(), jwks))), detail)


def test_requests_without_credentials_are_refused(api, mechanic):
    refused(api.http.get(f"/v1/mechanics/{mechanic}"), "Bearer")
    refused(profile(api, mechanic, {"Authorization": "Basic dXNlcjpwYXNz"}), "Bearer")


# --- service keys --------------------------------------------------------------------------------


def test_a_service_key_gets_in_until_it_is_revoked(api, mechanic):
    key = create_key(api.engine, f"web-{uuid.uuid4().hex[:6]}")
    name = next(row["name"] for row in list_keys(api.engine) if row["prefix"] == key[:12])
    assert profile(api, mechanic, bearer(key)).status_code == 200
    assert profile(api, mechanic, {"X-Api-Key": key}).status_code == 200
    [row] = [row for row in list_keys(api.engine) if row["name"] == name]
    assert row["last_used_at"] is not None and row["revoked_at"] is None and row["scopes"] == ["platform"]
    with api.engine.connect() as conn:
        stored = conn.execute(sa.select(s.api_keys.c.key_hash).where(s.api_keys.c.name == name)).scalar_one()
    assert key not in stored and len(stored) == 64
    revoke_key(api.engine, name)
    refused(profile(api, mechanic, bearer(key)), "revoked")
    with api.engine.connect() as conn:
        audit = conn.execute(
            sa.select(s.audit_log.c.action, s.audit_log.c.actor_email, s.audit_log.c.after)
            .where(s.audit_log.c.entity_type == "api_key")
            .order_by(s.audit_log.c.created_at)
        ).all()
    mine = [(action, actor) for action, actor, after in audit if json.loads(json.dumps(after))["name"] == name]
    assert mine == [("api_key.create", "python -m dashboard keys"), ("api_key.revoke", "python -m dashboard keys")]
    assert key not in json.dumps([row.after for row in audit], default=str)
    refused(profile(api, mechanic, bearer(key[:-2] + "xx")), "not known")


def test_a_service_key_names_the_customer_it_acts_for(api):
    session = uuid.uuid4()
    without = api.post("/v1/reviews", api.as_platform(), {"session_id": str(session), "rating": 5})
    assert without.status_code == 400 and without.json()["code"] == "customer_required"
    bad = api.post(
        "/v1/reviews", {**api.as_platform(), "X-Pitwall-Customer": "me"}, {"session_id": str(session), "rating": 5}
    )
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_customer_header"


def test_only_a_platform_key_acts_for_a_customer(api, mechanic):
    key = "pw_" + uuid.uuid4().hex * 2
    with api.engine.begin() as conn:
        conn.execute(
            s.api_keys.insert().values(
                id=uuid.uuid4(), name=f"read-{key[-6:]}", key_hash=hash_key(key), prefix=key[:12], scopes=[]
            )
        )
    assert profile(api, mechanic, bearer(key)).status_code == 200
    acting = profile(api, mechanic, {**bearer(key), "X-Pitwall-Customer": str(uuid.uuid4())})
    assert acting.status_code == 403 and acting.json()["code"] == "forbidden"


def test_key_commands_create_list_and_revoke(request, tmp_path, monkeypatch, capsys):
    engine, url = served_database(request, tmp_path, "duckdb")
    engine.dispose()  # the first command opens the file in its own process
    (tmp_path / "empty.toml").write_text("")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("PITWALL_SECRETS", str(tmp_path / "empty.toml"))
    try:
        created = subprocess.run(
            [sys.executable, "-m", "dashboard", "keys", "create", "platform-web"],
            cwd=ROOT,
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip()
        assert key.startswith("pw_") and len(key) > 40 and "not shown again" in created.stderr

        def run(*args):
            code = cli(list(args))
            out, err = capsys.readouterr()
            return code, out, err

        code, _, err = run("keys", "create", "platform-web")
        assert code == 2 and "exists already" in err and "Traceback" not in err
        code, out, _ = run("keys", "list")
        listed = [json.loads(line) for line in out.splitlines()]
        assert [(r["name"], r["prefix"], r["scopes"], r["revoked_at"]) for r in listed] == [
            ("platform-web", key[:12], ["platform"], None)
        ]
        assert key not in out
        assert run("keys", "revoke", " platform-web ")[0] == 0  # the name as created, spaces normalised
        [revoked] = [json.loads(line) for line in run("keys", "list")[1].splitlines()]
        assert revoked["revoked_at"] is not None
        code, _, err = run("keys", "revoke", "nobody")
        assert code == 2 and "No key named 'nobody'" in err
    finally:
        engine.dispose()


# --- rate limits and CORS ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict_api(request, tmp_path_factory):
    """A server allowing 3 requests a minute per customer and 5 per key, with one CORS origin."""
    with api_server(
        request,
        tmp_path_factory,
        "duckdb",
        PITWALL_API_CUSTOMER_RATE="3",
        PITWALL_API_KEY_RATE="5",
        PITWALL_API_CORS_ORIGINS="https://app.example.com",
    ) as server:
        yield server


def test_rate_limits_per_customer_and_per_key(strict_api):
    with strict_api.engine.begin() as conn:
        mechanic = add_mechanic(conn, "Rita")
    cora, otto = uuid.uuid4(), uuid.uuid4()
    answers = [profile(strict_api, mechanic, strict_api.as_customer(cora)).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    limited = profile(strict_api, mechanic, strict_api.as_customer(cora))
    assert limited.json()["code"] == "rate_limited" and 1 <= int(limited.headers["Retry-After"]) <= 20
    assert profile(strict_api, mechanic, strict_api.as_customer(otto)).status_code == 200  # a bucket each
    keyed = [profile(strict_api, mechanic, strict_api.as_platform()).status_code for _ in range(6)]
    assert keyed == [200] * 5 + [429]


def test_cors_only_for_the_configured_origin(api, strict_api):
    preflight = {
        "Origin": "https://app.example.com",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    allowed = strict_api.http.options("/v1/mechanics/x", headers=preflight)
    assert allowed.headers.get("access-control-allow-origin") == "https://app.example.com"
    other = strict_api.http.options("/v1/mechanics/x", headers={**preflight, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    unconfigured = api.http.options("/v1/mechanics/x", headers=preflight)
    assert "access-control-allow-origin" not in unconfigured.headers


def test_a_token_expiring_now_is_refused(api, mechanic):
    refused(profile(api, mechanic, bearer(token(uuid.uuid4(), exp=int(dt.datetime.now().timestamp()) - 1))), "expired")


def test_a_jwks_can_be_a_file(tmp_path, jwks):
    from api.auth import TokenVerifier

    path = tmp_path / "jwks.json"
    path.write_text(httpx.get(jwks.url).text)
    customer = uuid.uuid4()
    verifier = TokenVerifier(None, str(path))
    assert verifier.customer(token(customer, algorithm="RS256", key=jwks.rsa_key, kid="rsa-1")) == customer
    with pytest.raises(Exception, match="not accepted"):
        verifier.customer(token(customer))  # HS256 without a configured secret


def test_an_unreachable_jwks_is_an_outage_not_a_forgery(jwks):
    from api.auth import TokenVerifier
    from api.problems import Problem
    from tests.browser_support import free_port

    verifier = TokenVerifier(None, f"http://127.0.0.1:{free_port()}/jwks.json")
    with pytest.raises(Problem) as raised:
        verifier.customer(token(uuid.uuid4(), algorithm="ES256", key=jwks.ec_key, kid="ec-1"))
    assert (raised.value.status, raised.value.code) == (503, "jwks_unavailable")
