"""Errors as RFC 9457 problem details: ``{type, title, status, detail, code}``
(``type`` is ``/problems/<code>``, relative to the API).

``code`` is stable (clients branch on it); ``detail`` is the domain's own message.
No answer ever carries a stack trace, a SQL statement or the input that was sent.
"""

from __future__ import annotations

import logging
import traceback
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from dashboard.core.errors import Conflict, DatabaseUnavailable, Invalid, NotFound, PermissionDenied
from dashboard.domain.calendars.slots import BookingRejected
from dashboard.domain.followups import FollowUpError
from dashboard.domain.funnel.interactions import CrmInputError
from dashboard.domain.reviews import ReviewError

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "/problems/"  # a relative reference: the code is the problem's type
log = logging.getLogger("api")

# The error family (dashboard/core/errors.py) by class, most specific first: (class, status, code).
DOMAIN_ERRORS = (
    (NotFound, 404, "not_found"),
    (BookingRejected, 409, "not_bookable"),
    (Conflict, 409, "conflict"),
    (FollowUpError, 422, "follow_up_rejected"),
    (ReviewError, 422, "review_rejected"),
    (CrmInputError, 422, "interaction_rejected"),
    (Invalid, 422, "invalid_input"),
    (PermissionDenied, 403, "forbidden"),
)


class Problem(Exception):
    """An answer other than success, raised anywhere a request is handled."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.headers = headers or {}
        self.extra = extra


def problem_body(status: int, code: str, detail: str, **extra) -> dict:
    return {
        "type": TYPE_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }


def problem_response(problem: Problem) -> JSONResponse:
    return JSONResponse(
        problem_body(problem.status, problem.code, problem.detail, **problem.extra),
        status_code=problem.status,
        headers=problem.headers,
        media_type=MEDIA_TYPE,
    )


def from_domain(exc: Exception) -> Problem | None:
    """The problem of an error of the family, None for anything else."""
    for cls, status, code in DOMAIN_ERRORS:
        if isinstance(exc, cls):
            reason = {"reason": exc.reason} if isinstance(exc, BookingRejected) else {}
            return Problem(status, code, str(exc), **reason)
    return None


def _validation_errors(exc: RequestValidationError) -> list[dict]:
    """Where and what, without the value that was sent (it may be huge or personal)."""
    return [
        {"location": ".".join(str(part) for part in error.get("loc", ())), "message": error.get("msg", "")}
        for error in exc.errors()[:20]
    ]


def install(app: FastAPI) -> None:
    """Every error the app can raise becomes a problem response."""

    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem):
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError):
        errors = _validation_errors(exc)
        first = errors[0] if errors else {"location": "request", "message": "is not valid"}
        return problem_response(
            Problem(422, "invalid_request", f"{first['location']}: {first['message']}", errors=errors)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException):
        code = {404: "no_such_route", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        detail = "There is no such route." if exc.status_code == 404 else str(exc.detail)
        return problem_response(Problem(exc.status_code, code, detail, headers=dict(exc.headers or {})))


class CatchAll:
    """ASGI middleware: a domain error, a database outage or a bug raised by a route
    becomes a problem response (Starlette would otherwise log the error's message and
    answer plain text)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # every error is answered, none escapes to the server
            if started:
                raise
            response = problem_response(_problem_of(exc, scope))
            await response(scope, receive, send)


def _problem_of(exc: Exception, scope) -> Problem:
    problem = from_domain(exc)
    if problem is not None:
        return problem
    where = f"{scope.get('method')} {scope.get('path')}"
    if isinstance(exc, (DatabaseUnavailable, OperationalError)) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    ):
        log.warning("database unavailable on %s: %s", where, type(exc).__name__)
        return Problem(
            503,
            "database_unavailable",
            "The database is not reachable; try again shortly.",
            headers={"Retry-After": "5"},
        )
    # The traceback's frames go to the server log; its message may hold row values, so it does not.
    log.error("unexpected %s on %s\n%s", type(exc).__name__, where, "".join(traceback.format_tb(exc.__traceback__)))
    return Problem(500, "internal_error", "Something went wrong on our side; it was logged.")
