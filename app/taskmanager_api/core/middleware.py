"""One pure ASGI middleware for request ids, body size limit, metrics and the access log.

Pure ASGI rather than BaseHTTPMiddleware: it adds little per request and never buffers a body.
"""

from __future__ import annotations

import logging
import random
import re
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskmanager_api.core.errors import error_response
from taskmanager_api.core.logging import redact, request_id_var
from taskmanager_api.metrics import Metrics

logger = logging.getLogger("taskmanager_api.access")

# A client-chosen id is echoed into logs and headers: keep it short and free of control bytes.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class BodyTooLargeError(HTTPException):
    """An HTTPException, so that FastAPI's body parsing passes it through instead of a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body exceeds {limit} bytes")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLargeError(self.max_body_bytes)
            return message

        self.metrics.in_flight.inc()
        try:
            if _declared_length(scope) > self.max_body_bytes:
                await self._too_large(scope, receive, send_with_id)
                return
            try:
                await self.app(scope, limited_receive, send_with_id)
            except BodyTooLargeError:
                if response_started:
                    raise
                await self._too_large(scope, receive, send_with_id)
            except Exception:
                # The last line of defence: whatever escaped the handlers is logged with the
                # request id and answered with the one error shape, never a traceback.
                logger.exception("unhandled error")
                if response_started:
                    raise
                response = error_response(500, "internal_error", "internal server error")
                await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            self.metrics.in_flight.dec()
            template = route_template(scope)
            self.metrics.observe(scope["method"], template, status, elapsed)
            logger.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    # The only client-chosen text in the line; redacted here, not per line.
                    "path": redact(scope["path"]),
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )
            request_id_var.reset(token)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "payload_too_large", f"the body exceeds {self.max_body_bytes} bytes"
        )
        await response(scope, receive, send)


def route_template(scope: Scope) -> str:
    """The matched route as a template (`/api/v1/tasks/{task_id}`): bounded metric labels."""
    route_path = getattr(scope.get("route"), "path", None)
    if isinstance(route_path, str):
        # An included router's own prefix is not in route.path, and here prefixes are static:
        # the path's leading segments that the route's template does not cover are that prefix.
        covered = route_path.count("/")
        segments = scope["path"].split("/")
        return "/".join(segments[: len(segments) - covered]) + route_path
    # Plain Starlette routes (the docs) are static paths; anything else matched nothing.
    return str(scope["path"]) if "endpoint" in scope else "<unmatched>"


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _VALID_REQUEST_ID.match(candidate):
                return candidate
            break
    # 128 random bits like a uuid4: unique, not secret, so no system call per request for them.
    return f"{random.getrandbits(128):032x}"


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0
