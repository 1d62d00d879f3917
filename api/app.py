"""The FastAPI application: settings, engines, middleware, the caller of each request.

``create_app()`` is what uvicorn serves (``python -m dashboard api``). The routes live in
``api.routes``; every rule they apply is the domain's (``dashboard/``, ``queries/``).
"""

from __future__ import annotations

import socket
import uuid

import uvicorn
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.engine import Engine

from api.auth import CUSTOMER_HEADER, KEY_PREFIX, KeyStore, Principal, TokenVerifier, unauthorized
from api.limits import RateLimiter
from api.problems import CatchAll, Problem, install, problem_response
from api.settings import ApiSettings, load_api_settings
from dashboard.core.db import make_engine
from dashboard.core.errors import NotFound
from dashboard.core.validation import parse_uuid

VERSION = "1.0.0"


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is refused with 413 before any route reads it."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_big = Problem(413, "body_too_large", f"The request body is over {self.limit:,} bytes.")
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await problem_response(too_big)(scope, receive, send)
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.limit:
                return await problem_response(too_big)(scope, receive, send)
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def create_app(settings: ApiSettings | None = None, engine: Engine | None = None) -> FastAPI:
    """The app over the configured database (or ``engine``); the embedded one is migrated
    and filled with demo data on first start, as the Streamlit app does."""
    from api import routes

    settings = settings or load_api_settings()
    if engine is None:
        engine = make_engine(settings.app.database_url)
        if settings.app.embedded:
            from dashboard.tools.demo.load import load_if_empty

            load_if_empty(engine, scale=settings.app.demo_scale, progress=False)
    read_engine = make_engine(settings.app.read_url) if settings.app.read_url else engine
    app = FastAPI(
        title="Pitwall platform API",
        version=VERSION,
        description="The routes the platform's server calls; see docs/api.md.",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.read_engine = read_engine
    app.state.tokens = TokenVerifier(settings.jwt_secret, settings.jwks_url)
    app.state.keys = KeyStore(engine)
    app.state.limiter = RateLimiter()
    install(app)
    app.include_router(routes.router)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        )
    app.add_middleware(CatchAll)
    return app


def caller(request: Request) -> Principal:
    """Who is calling (checked on every request), after their rate limit."""
    state = request.app.state
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if request.headers.get("X-Api-Key"):
        credential, scheme = request.headers["X-Api-Key"].strip(), "bearer"
    if scheme.lower() != "bearer" or not credential:
        raise unauthorized("Send a customer's access token or a service key as 'Authorization: Bearer ...'.")
    if credential.startswith(KEY_PREFIX):
        principal = state.keys.principal(credential, request.headers.get(CUSTOMER_HEADER))
        state.limiter.take(principal.name, state.settings.key_rate)
    else:
        principal = Principal("customer", state.tokens.customer(credential))
    if principal.customer_id is not None:
        state.limiter.take(f"customer:{principal.customer_id}", state.settings.customer_rate)
    return principal


def parse_id(value: str, what: str) -> uuid.UUID:
    """A path or query id; NotFound (404) when it is not a UUID (no such thing can exist)."""
    return parse_uuid(value, what.capitalize(), NotFound)


class TcpNoDelayConfig(uvicorn.Config):
    """uvicorn's Config whose shared listening socket (``--workers`` above 1) is marked as TCP.

    uvicorn binds it with protocol 0, and asyncio sets TCP_NODELAY only on sockets whose
    protocol is IPPROTO_TCP, so every keep-alive answer waited for a delayed ACK (measured on
    /healthz: 7 ms with one worker, 52 ms with two)."""

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return sock
        return socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
