"""Pure ASGI middleware (no BaseHTTPMiddleware: it breaks streaming and contextvars).

Order, outermost first: RequestContext → Metrics → SecurityHeaders → CORS → WebSocketOrigin
→ RateLimit → ErrorBoundary → BodyGuard → app. WebSockets pass through the same chain as
requests (correlation id, access log, security headers on a denial, Origin, rate limit of
the upgrade, errors); a refusal before the handshake is an HTTP problem+json response on
the upgrade (the ASGI WebSocket Denial Response extension, which uvicorn implements).
RequestContext is outermost so the correlation id and the access-log line cover every
response; ErrorBoundary is inside CORS and the security headers so a 500 carries them too.
"""

from __future__ import annotations

import contextlib
import re
import time
import traceback
import uuid
from collections.abc import Sequence

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coderoom.api.problems import error_response, problem_response
from coderoom.core.errors import (
    BadRequestError,
    CoderoomError,
    PayloadTooLargeError,
    PermissionDeniedError,
    UnsupportedMediaTypeError,
)
from coderoom.core.net import IPNetwork, resolve_client_ip
from coderoom.infra import sentry as monitoring


class OriginNotAllowed(PermissionDeniedError):
    code = "origin_not_allowed"


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
    """Correlation id, client IP and one access-log line per request or WebSocket.

    A WebSocket's line is written when it ends: `status` is 101 once accepted (or the
    status of the HTTP denial of its upgrade) and `duration_ms` is the connection's life.
    Query strings are never logged: a WebSocket ticket may be in one.
    """

    def __init__(self, app: ASGIApp, *, trusted_proxies: Sequence[IPNetwork]) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        websocket = scope["type"] == "websocket"
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
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                status_code = message["status"]
                MutableHeaders(scope=message)[CORRELATION_HEADER] = correlation_id
            elif kind == "websocket.accept":
                status_code = 101
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        (CORRELATION_HEADER.lower().encode(), correlation_id.encode()),
                    ],
                }
            elif kind == "websocket.close" and status_code == 500:
                status_code = 403  # closed before accepting: the server answers 403
            await send(message)

        start = time.perf_counter()
        with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                access_log.info(
                    "websocket" if websocket else "request",
                    method="GET" if websocket else scope.get("method"),
                    path=loggable_path(scope.get("path", "")),
                    status=status_code,
                    duration_ms=round((time.perf_counter() - start) * 1000, 2),
                    client_ip=client_ip,
                    user_id=state.get("user_id"),
                )


def _same_origin(origin: str, host: str | None) -> bool:
    """Whether `origin` (scheme://host[:port]) names the host the upgrade was sent to."""
    scheme, _, rest = origin.partition("://")
    if not rest or host is None:
        return False
    default = {"http": "80", "https": "443"}.get(scheme.lower())
    if default is None:
        return False

    def normal(authority: str) -> str:
        authority = authority.lower()
        if authority.endswith(f":{default}"):
            authority = authority[: -len(default) - 1]
        return authority

    return normal(rest) == normal(host)


class WebSocketOriginMiddleware:
    """Refuse WebSocket upgrades from web pages of other sites (cross-site WebSocket
    hijacking): the `Origin` must be the service's own, or one of CORS_ORIGINS.

    Browsers always send `Origin` on a WebSocket; a client without one is not a browser
    page and is judged by its credentials alone. The refusal is a 403 problem on the
    upgrade, before any route (or credential check) runs.
    """

    def __init__(self, app: ASGIApp, *, allowed_origins: Sequence[str]) -> None:
        self.app = app
        self.any_origin = "*" in allowed_origins
        self.allowed = frozenset(o.rstrip("/").lower() for o in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and not self.allows(origin, headers.get("host")):
                error = OriginNotAllowed(
                    "WebSockets may only be opened from this site or from CORS_ORIGINS."
                )
                await error_response(scope, error)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def allows(self, origin: str, host: str | None) -> bool:
        origin = origin.strip().rstrip("/").lower()
        return self.any_origin or origin in self.allowed or _same_origin(origin, host)


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
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
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
            await self._problem(scope, exc)(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Before the handshake a crash is a 500 denial; after it, a 1011 close."""
        phase = "handshake"

        async def tracking_send(message: Message) -> None:
            nonlocal phase
            if message["type"] in ("websocket.accept", "websocket.http.response.start"):
                phase = "open"
            elif message["type"] == "websocket.close":
                phase = "closed"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.exception("websocket.unhandled_exception", path=scope.get("path"))
            if phase == "handshake":
                await self._problem(scope, exc)(scope, receive, send)
            elif phase == "open":
                with contextlib.suppress(Exception):  # the peer may be gone already
                    await send({"type": "websocket.close", "code": 1011, "reason": ""})

    def _problem(self, scope: Scope, exc: Exception) -> Response:
        extra: dict[str, object] = {}
        if self.expose_errors:
            extra = {"exception": type(exc).__name__, "traceback": traceback.format_exception(exc)}
        return problem_response(
            scope,
            status=500,
            code="internal_error",
            title="Internal Server Error",
            detail="An unexpected error occurred. Quote the correlation id when reporting it.",
            extra=extra,
        )


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
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
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
