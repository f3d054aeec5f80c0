"""`GET /metrics` and the middleware that counts HTTP requests.

The route sits at the root (`/metrics`, where Prometheus looks), outside `/api/v1`, so it is
never rate limited. Access: open in development and test when `METRICS_TOKEN` is unset;
otherwise `Authorization: Bearer <METRICS_TOKEN>` (401 without it); in production without
a token the route answers 404, as if it did not exist.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from fastapi import APIRouter, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coderoom.api.deps import State
from coderoom.core.errors import AuthenticationError, NotFoundError
from coderoom.infra import metrics

log = structlog.get_logger(__name__)

router = APIRouter(include_in_schema=False)
UNMATCHED = "unmatched"  # every path no route knows, so scanners cannot explode the labels


def route_template(scope: Scope) -> str:
    """The template of the route that answered (`/api/v1/sessions/{session_id}`).

    FastAPI records the route object as declared in its own router, whose path lacks the
    prefix the router was included under; the prefix is the part of the request path in
    front of what the route's pattern matches.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None)  # `path` keeps convertors (`:uuid`)
    pattern = getattr(route, "path_regex", None)
    if not isinstance(template, str) or pattern is None:
        return UNMATCHED
    path: str = scope.get("path", "")
    for cut in (i for i, ch in enumerate(path) if ch == "/"):
        if pattern.fullmatch(path[cut:]):
            return path[:cut] + template
    return template


class MetricsMiddleware:
    """One count and one duration per HTTP request, labelled by route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, recording_send)
        finally:
            template = route_template(scope)
            method = scope.get("method", "")
            metrics.HTTP_REQUESTS.labels(method=method, route=template, status=str(status)).inc()
            metrics.HTTP_DURATION.labels(method=method, route=template).observe(
                time.perf_counter() - start
            )


async def _measure_queue(state: State) -> None:
    try:
        async with asyncio.timeout(state.settings.health_probe_timeout_seconds):
            health = await state.executions.backend.health()
        if health.depth is not None:
            metrics.QUEUE_DEPTH.set(health.depth)
    except Exception as exc:  # noqa: BLE001 - a scrape never fails because Redis is down
        log.warning("metrics.queue_depth_unavailable", error=type(exc).__name__)


@router.get("/metrics")
async def prometheus_metrics(request: Request, state: State) -> Response:
    """Prometheus text format, every process of this server summed."""
    settings = state.settings
    if settings.metrics_token is None and not settings.metrics_open:
        raise NotFoundError("Not Found")
    if not metrics.authorized(
        request.headers.get("authorization"),
        token=settings.metrics_token,
        open_access=settings.metrics_open,
    ):
        raise AuthenticationError("Send Authorization: Bearer <METRICS_TOKEN>.")
    await _measure_queue(state)
    return Response(
        metrics.render(), media_type=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"}
    )
