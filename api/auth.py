"""Who is calling: a customer with their Supabase access token, or the platform with a service key.

Both are checked on every request:

- ``Authorization: Bearer <jwt>``: a Supabase access token, verified here without
  calling Supabase: HS256 with the project's JWT secret and/or ES256/RS256 with a key
  of the project's JWKS (by the token's ``kid``); ``aud`` must be "authenticated",
  ``exp`` in the future, ``sub`` the customer's id. No other algorithm is accepted
  ("none" included).
- ``Authorization: Bearer pw_...`` (or ``X-Api-Key``): a service key. Only its SHA-256
  is stored; a revoked key is refused at once. A key with scope "platform" acts for
  any customer, who is named with ``X-Pitwall-Customer: <uuid>``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from api.problems import Problem
from dashboard.core.actors import SystemActor
from dashboard.core.audit import record_audit
from dashboard.core.errors import Conflict, Invalid, NotFound
from dashboard.core.schema import API_SCOPES, api_keys
from dashboard.core.validation import parse_text

KEY_PREFIX = "pw_"
PREFIX_CHARS = 12
AUDIENCE = "authenticated"
ASYMMETRIC = ("ES256", "RS256")
CUSTOMER_HEADER = "X-Pitwall-Customer"
LAST_USED_EVERY = 60.0  # seconds between writes of a key's last_used_at by one process
KEYS_COMMAND = SystemActor("python -m dashboard keys", role="operator")  # who the audit trail names
KEY_ENTITY = "api_key"
KEY_NAME_MAX = 80


@dataclass(frozen=True)
class Principal:
    """The caller. ``customer_id``: the customer acted for (None for a key naming none)."""

    kind: str  # "customer" or "key"
    customer_id: uuid.UUID | None
    key_id: uuid.UUID | None = None
    key_name: str | None = None
    scopes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """Stable text for idempotency records and rate limits."""
        return f"key:{self.key_id}" if self.kind == "key" else f"customer:{self.customer_id}"

    def customer(self) -> uuid.UUID:
        """The customer this request acts for."""
        if self.customer_id is None:
            raise Problem(
                400,
                "customer_required",
                f"A service key acting for a customer names them with the {CUSTOMER_HEADER} header.",
            )
        return self.customer_id

    def require_platform(self) -> None:
        if "platform" not in self.scopes:
            raise Problem(403, "forbidden", "This route takes a service key with the platform scope.")


def unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="pitwall"'})


# --- customer tokens ------------------------------------------------------------------


class _JwksFile:
    """A JWKS read from a file once (the same lookup as PyJWKClient's)."""

    def __init__(self, path: Path):
        self.keys = jwt.PyJWKSet.from_json(path.read_text())

    def get_signing_key_from_jwt(self, token: str) -> jwt.PyJWK:
        kid = jwt.get_unverified_header(token).get("kid")
        for key in self.keys.keys:
            if key.key_id == kid:
                return key
        raise jwt.PyJWKClientError(f"no key with kid {str(kid)[:40]!r}")


class TokenVerifier:
    """Verifies Supabase access tokens with the configured secret and/or JWKS."""

    def __init__(self, jwt_secret: str | None, jwks_url: str | None):
        self.secret = jwt_secret
        self.jwks = None
        if jwks_url:
            self.jwks = (
                jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=5)
                if jwks_url.startswith(("http://", "https://"))
                else _JwksFile(Path(jwks_url))
            )

    def customer(self, token: str) -> uuid.UUID:
        """The token's customer; raises a 401 Problem saying what is wrong with it."""
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            raise unauthorized("The bearer token is not a JWT or a service key.") from None
        if algorithm == "HS256" and self.secret:
            key, algorithms = self.secret, ["HS256"]
        elif algorithm in ASYMMETRIC and self.jwks is not None:
            try:
                key, algorithms = self.jwks.get_signing_key_from_jwt(token), [algorithm]
            except jwt.PyJWKClientConnectionError:
                raise Problem(
                    503,
                    "jwks_unavailable",
                    "The sign-in service's signing keys cannot be fetched; try again shortly.",
                    headers={"Retry-After": "5"},
                ) from None
            except (jwt.PyJWKClientError, jwt.PyJWKError, jwt.DecodeError):
                raise unauthorized("The token is signed with a key this API does not know.") from None
        else:
            raise unauthorized(f"Tokens signed with {str(algorithm)[:10]!r} are not accepted.")
        try:
            claims = jwt.decode(
                token, key, algorithms=algorithms, audience=AUDIENCE, options={"require": ["exp", "sub", "aud"]}
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("The token has expired.") from None
        except jwt.InvalidAudienceError:
            raise unauthorized(f"The token's audience is not {AUDIENCE!r}.") from None
        except jwt.PyJWTError:
            raise unauthorized("The token's signature or claims are not valid.") from None
        try:
            return uuid.UUID(str(claims["sub"]))
        except ValueError:
            raise unauthorized("The token's subject is not a customer id.") from None


# --- service keys ---------------------------------------------------------------------


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(engine: Engine, name: str, scopes: tuple[str, ...] = ("platform",)) -> str:
    """Store a new key under ``name`` and return it: the only time it is shown."""
    name = " ".join(parse_text(name, "A key's name", KEY_NAME_MAX, Invalid).split())
    unknown = sorted(set(scopes) - set(API_SCOPES))
    if unknown or not scopes:
        raise Invalid(f"Scopes are some of: {', '.join(API_SCOPES)}.")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id, shown = uuid.uuid4(), {"name": name, "prefix": key[:PREFIX_CHARS], "scopes": list(scopes)}
    try:
        with engine.begin() as conn:
            conn.execute(api_keys.insert().values(id=key_id, key_hash=hash_key(key), **shown))
            record_audit(conn, KEYS_COMMAND, "api_key.create", KEY_ENTITY, key_id, after=shown)
    except sa.exc.IntegrityError:
        raise Conflict(f"A key named {name!r} exists already; choose another name.") from None
    return key


def list_keys(engine: Engine) -> list[dict]:
    """Every key without its secret: name, prefix, scopes, created, last used, revoked."""
    k = api_keys
    with engine.connect() as conn:
        rows = (
            conn.execute(
                sa.select(k.c.name, k.c.prefix, k.c.scopes, k.c.created_at, k.c.last_used_at, k.c.revoked_at).order_by(
                    k.c.created_at, k.c.name
                )
            )
            .mappings()
            .all()
        )
    return [dict(row, scopes=list(row["scopes"] or [])) for row in rows]


def revoke_key(engine: Engine, name: str) -> None:
    """Refuse the key from the next request on (revoking it again changes nothing)."""
    k = api_keys
    name = " ".join(str(name).split())  # as create_key stores it
    with engine.begin() as conn:
        found = conn.execute(sa.select(k.c.id, k.c.revoked_at).where(k.c.name == name)).first()
        if found is None:
            raise NotFound(f"No key named {name[:KEY_NAME_MAX]!r}.")
        if found.revoked_at is None:
            now = dt.datetime.now(dt.UTC)
            conn.execute(k.update().where(k.c.id == found.id).values(revoked_at=now))
            record_audit(
                conn,
                KEYS_COMMAND,
                "api_key.revoke",
                KEY_ENTITY,
                found.id,
                before={"name": name, "revoked_at": None},
                after={"name": name, "revoked_at": now},
            )


class KeyStore:
    """Looks keys up on every request; writes ``last_used_at`` at most once a minute per key."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._written: dict[uuid.UUID, float] = {}
        self._lock = threading.Lock()

    def principal(self, key: str, customer_header: str | None) -> Principal:
        k = api_keys
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(k.c.id, k.c.name, k.c.scopes, k.c.revoked_at).where(k.c.key_hash == hash_key(key))
            ).first()
        if row is None:
            raise unauthorized("The service key is not known.")
        if row.revoked_at is not None:
            raise unauthorized("The service key was revoked.")
        self._touch(row.id)
        customer = None
        if customer_header is not None:
            if "platform" not in (row.scopes or ()):
                raise Problem(403, "forbidden", "Only a key with the platform scope acts for a customer.")
            try:
                customer = uuid.UUID(customer_header.strip())
            except ValueError:
                raise Problem(
                    400, "invalid_customer_header", f"{CUSTOMER_HEADER} must be a customer id (a UUID)."
                ) from None
        return Principal("key", customer, row.id, row.name, tuple(row.scopes or ()))

    def _touch(self, key_id: uuid.UUID) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._written.get(key_id, -LAST_USED_EVERY) < LAST_USED_EVERY:
                return
            self._written[key_id] = now
        with self.engine.begin() as conn:
            conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(last_used_at=dt.datetime.now(dt.UTC)))
