"""For browsers: CORS (Starlette's middleware), and security headers on every response.

Both wrap the rest of the app, outside `RequestContextMiddleware`, so the responses that middleware
makes itself (the 413 of an oversized body, the 500 of an unhandled error) carry them too, and so
do CORS preflights, which CORSMiddleware answers without calling the app. Starlette's own
ServerErrorMiddleware still sits outside them, but it only ever sees errors of these two, since
`RequestContextMiddleware` answers every other one.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskmanager_api.core.config import Settings

# On every response, whatever its status. The API serves JSON, and /docs a page that loads its
# scripts from a CDN, so the CSP only forbids framing (clickjacking), which X-Frame-Options says
# again for browsers without CSP level 2. no-referrer rather than strict-origin-when-cross-origin:
# nothing links from the API to other sites that would want its origin, and the docs page then
# tells the CDN nothing about where the API lives.
_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
)


class SecurityHeadersMiddleware:
    """Pure ASGI, not BaseHTTPMiddleware: that would buffer streamed bodies and run background
    tasks inside the request; this adds a few prebuilt headers to the response's start only."""

    def __init__(self, app: ASGIApp, *, hsts_max_age_seconds: int) -> None:
        self.app = app
        hsts = f"max-age={hsts_max_age_seconds}; includeSubDomains".encode()
        self.plain = list(_ALWAYS)
        self.tls = [*_ALWAYS, (b"strict-transport-security", hsts)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # HSTS only over TLS (browsers ignore it over plain http). The scheme is https when
        # uvicorn served TLS, or when a proxy it trusts (`serve --forwarded-allow-ips`) said so
        # in X-Forwarded-Proto; an untrusted client's header leaves it http.
        extra = self.tls if scope.get("scheme") == "https" else self.plain

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_browser_headers(app: FastAPI, settings: Settings) -> None:
    """Call after every other middleware is added: the last one added runs first."""
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=settings.cors_allow_methods,
            allow_headers=settings.cors_allow_headers,
            allow_credentials=settings.cors_allow_credentials,
            max_age=settings.cors_max_age_seconds,
        )
    if settings.security_headers_enabled:
        app.add_middleware(
            SecurityHeadersMiddleware, hsts_max_age_seconds=settings.hsts_max_age_seconds
        )
