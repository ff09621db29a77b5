"""One error body for every 4xx and 5xx: {"error": {"code", "message", "request_id", "details"}}."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from taskmanager_api.core.logging import request_id_var
from taskmanager_api.core.state_store import StoreUnavailableError

logger = logging.getLogger(__name__)


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the problem is, e.g. ['body', 'title'].")
    msg: str
    type: str


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable reason, e.g. not_found.")
    message: str
    request_id: str | None = None
    details: list[FieldError] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class APIError(Exception):
    """An error the client should see, with a stable code."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.headers = headers


class NotFoundError(APIError):
    def __init__(self, what: str = "resource") -> None:
        super().__init__(404, "not_found", f"{what} not found")


class UnauthorizedError(APIError):
    def __init__(self, message: str = "missing or invalid credentials") -> None:
        super().__init__(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


class ForbiddenError(APIError):
    def __init__(self, message: str = "not allowed") -> None:
        super().__init__(403, "forbidden", message)


class ConflictError(APIError):
    def __init__(self, message: str) -> None:
        super().__init__(409, "conflict", message)


class RateLimitedError(APIError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            429,
            "rate_limited",
            "too many requests; retry later",
            headers={"Retry-After": str(retry_after)},
        )


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def error_response(
    status_code: int,
    code: str | None = None,
    message: str | None = None,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "code": code or _CODES.get(status_code, "error"),
        "message": message or HTTPStatus(status_code).phrase,
        "request_id": request_id_var.get(),
    }
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status_code, headers=headers)


def _field_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    # Never echo the input back: it may be a password.
    return [
        {
            "loc": [part if isinstance(part, int) else str(part) for part in item.get("loc", ())],
            "msg": str(item.get("msg", "")),
            "type": str(item.get("type", "")),
        }
        for item in error.errors()
    ]


async def _api_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, APIError)  # noqa: S101 - registered for APIError only
    return error_response(error.status_code, error.code, error.message, headers=error.headers)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)  # noqa: S101 - registered for it only
    message = error.detail if isinstance(error.detail, str) else None
    headers = dict(error.headers or {})
    if error.status_code == 405:
        # Starlette's Allow lists only the first route on the path; the whole resource counts.
        allowed = allowed_methods(request.app, request.url.path)
        if allowed:
            headers["Allow"] = allowed
    return error_response(error.status_code, message=message, headers=headers or None)


_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def allowed_methods(app: FastAPI, path: str) -> str | None:
    table: list[tuple[re.Pattern[str], str]] | None = getattr(app.state, "allow_table", None)
    if table is None:
        templates = sorted(app.openapi()["paths"].items(), key=lambda item: item[0].count("{"))
        table = [
            (
                re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"),
                ", ".join(
                    sorted(method.upper() for method in operations if method in _HTTP_METHODS)
                ),
            )
            for template, operations in templates
        ]
        app.state.allow_table = table
    return next((methods for pattern, methods in table if pattern.match(path)), None)


async def _validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)  # noqa: S101 - registered for it only
    return error_response(
        422, "validation_error", "the request is invalid", details=_field_errors(error)
    )


async def _unavailable(_request: Request, error: Exception) -> JSONResponse:
    logger.error("a dependency is unavailable: %s", error)
    return error_response(
        503, "unavailable", "a dependency is unavailable; retry later", headers={"Retry-After": "1"}
    )


async def _stale(_request: Request, _error: Exception) -> JSONResponse:
    return error_response(409, "conflict", "changed concurrently by another request; retry")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StoreUnavailableError, _unavailable)
    # Connection-level database failures (lost server, pool exhausted) are not the client's fault.
    app.add_exception_handler(OperationalError, _unavailable)
    app.add_exception_handler(InterfaceError, _unavailable)
    app.add_exception_handler(PoolTimeoutError, _unavailable)
    app.add_exception_handler(StaleDataError, _stale)


_DESCRIPTIONS = {
    400: "Bad request.",
    401: "Missing, invalid, expired or revoked credentials.",
    403: "Authenticated, but not allowed.",
    404: "Not found (or not visible to the caller).",
    409: "Conflicts with the current state.",
    413: "The body is too large.",
    422: "The request is invalid; details lists each field at fault.",
    429: "Rate limited; Retry-After says when to retry.",
    503: "A dependency is unavailable.",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the errors an operation can answer, all with the one error body."""
    responses: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {"model": ErrorBody, "description": _DESCRIPTIONS[code]}
        if code == 429:
            entry["headers"] = {
                "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
            }
        responses[code] = entry
    return responses


# Every operation can answer these: bad bodies, oversized bodies, rate limits, a lost dependency.
COMMON_ERRORS = (400, 413, 422, 429, 503)
AUTHENTICATED_ERRORS = (*COMMON_ERRORS, 401)
