"""Pure ASGI middleware (no BaseHTTPMiddleware: it breaks streaming and contextvars).

Order, outermost first: RequestContext → SecurityHeaders → CORS → ErrorBoundary → BodyGuard
→ app. RequestContext is outermost so the correlation id and the access-log line cover every
response; ErrorBoundary is inside CORS and the security headers so a 500 carries them too.
"""

from __future__ import annotations

import re
import time
import traceback
import uuid
from collections.abc import Sequence

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coderoom.api.problems import error_response, problem_response
from coderoom.core.errors import (
    BadRequestError,
    CoderoomError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from coderoom.core.net import IPNetwork, resolve_client_ip
from coderoom.infra import sentry as monitoring

access_log = structlog.get_logger("coderoom.access")
log = structlog.get_logger(__name__)

CORRELATION_HEADER = "X-Correlation-ID"
_SANE_CORRELATION_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def correlation_id_from(value: str | None) -> str:
    """The client's id when it is a sane token, else a fresh UUID4."""
    if value and _SANE_CORRELATION_ID.fullmatch(value):
        return value
    return str(uuid.uuid4())


#: Paths whose last part is a secret (the web app's invite page, /join/<token>).
_SECRET_PATH = re.compile(r"^(/join/)[^/]+")


def loggable_path(path: str) -> str:
    """The path as the access log may write it: never an invite token."""
    return _SECRET_PATH.sub(r"\1[redacted]", path)


class RequestContextMiddleware:
    """Correlation id, client IP and one access-log line per request."""

    def __init__(self, app: ASGIApp, *, trusted_proxies: Sequence[IPNetwork]) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        correlation_id = correlation_id_from(headers.get(CORRELATION_HEADER))
        client = scope.get("client")
        client_ip = resolve_client_ip(
            client[0] if client else None,
            headers.getlist("x-forwarded-for"),
            self.trusted_proxies,
        )
        state = scope.setdefault("state", {})
        state["correlation_id"] = correlation_id
        state["client_ip"] = client_ip
        monitoring.set_tags(correlation_id=correlation_id)

        status_code = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                MutableHeaders(scope=message)[CORRELATION_HEADER] = correlation_id
            await send(message)

        start = time.perf_counter()
        with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                access_log.info(
                    "request",
                    method=scope.get("method"),
                    path=loggable_path(scope.get("path", "")),
                    status=status_code,
                    duration_ms=round((time.perf_counter() - start) * 1000, 2),
                    client_ip=client_ip,
                    user_id=state.get("user_id"),
                )


class ErrorBoundaryMiddleware:
    """Turn an unhandled exception into a 500 problem, logged with the correlation id.

    It sits inside CORS and the security headers so the 500 carries them like any other
    response. In production the body says nothing of the exception; elsewhere it adds the
    type and traceback to speed up debugging.
    """

    def __init__(self, app: ASGIApp, *, expose_errors: bool) -> None:
        self.app = app
        self.expose_errors = expose_errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.exception("request.unhandled_exception", path=scope.get("path"))
            if response_started:
                raise
            extra: dict[str, object] = {}
            if self.expose_errors:
                extra = {
                    "exception": type(exc).__name__,
                    "traceback": traceback.format_exception(exc),
                }
            response = problem_response(
                scope,
                status=500,
                code="internal_error",
                title="Internal Server Error",
                detail="An unexpected error occurred. Quote the correlation id when reporting it.",
                extra=extra,
            )
            await response(scope, receive, send)


class SecurityHeadersMiddleware:
    """The headers Helmet sets by default, on every response.

    A route may set its own Content-Security-Policy (the API docs page does); the others are
    fixed. `Server` is dropped so no version leaks.
    """

    def __init__(self, app: ASGIApp, *, content_security_policy: str, hsts: bool) -> None:
        self.app = app
        self.defaults: dict[str, str] = {
            "Content-Security-Policy": content_security_policy,
            "Cross-Origin-Opener-Policy": "same-origin",
            "Cross-Origin-Resource-Policy": "same-origin",
            "Origin-Agent-Cluster": "?1",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "X-DNS-Prefetch-Control": "off",
            "X-Download-Options": "noopen",
            "X-Frame-Options": "SAMEORIGIN",
            "X-Permitted-Cross-Domain-Policies": "none",
            "X-XSS-Protection": "0",
        }
        if hsts:
            self.defaults["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.defaults.items():
                    if name not in headers:
                        headers[name] = value
                for leak in ("server", "x-powered-by"):
                    if leak in headers:
                        del headers[leak]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyGuardMiddleware:
    """Refuse bodies over the cap (413) and non-JSON bodies on the JSON API (415).

    The cap holds for chunked uploads too: the stream is counted as it arrives and cut off
    the moment it passes the limit, so an oversize body is never buffered whole.
    """

    _BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, json_prefix: str) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.json_prefix = json_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in self._BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length_header = headers.get("content-length")
        has_body = "transfer-encoding" in headers or (length_header not in (None, "0"))
        if length_header is not None:
            try:
                length = int(length_header)
            except ValueError:
                length = -1
            if length < 0:
                await _reject(scope, receive, send, BadRequestError("Invalid Content-Length."))
                return
            if length > self.max_body_bytes:
                await _reject(scope, receive, send, self._too_large())
                return
        if has_body and scope["path"].startswith(self.json_prefix):
            media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if not (media_type == "application/json" or media_type.endswith("+json")):
                error = UnsupportedMediaTypeError(
                    "Request bodies must be JSON (Content-Type: application/json)."
                )
                await _reject(scope, receive, send, error)
                return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # An HTTPException passes through FastAPI's body parsing untouched and is
                    # rendered by the one error handler, like every other 4xx.
                    raise HTTPException(413, self._too_large().detail)
            return message

        await self.app(scope, counting_receive, send)

    def _too_large(self) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"Request body exceeds the limit of {self.max_body_bytes} bytes."
        )


async def _reject(scope: Scope, receive: Receive, send: Send, error: CoderoomError) -> None:
    response = error_response(scope, error)
    response.headers["Connection"] = "close"
    await response(scope, receive, send)
