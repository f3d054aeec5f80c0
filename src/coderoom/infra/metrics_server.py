"""A metrics listener for processes without an HTTP API of their own (`coderoom worker`).

It serves the same `/metrics` as the API, with the same access rule (METRICS_TOKEN), from a
small uvicorn server on its own thread: the worker's event loop stays free for jobs, and a
server outside the main thread leaves the worker's signal handling alone.
"""

from __future__ import annotations

import asyncio
import threading

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from coderoom.infra import metrics


def metrics_app(*, token: str | None, open_access: bool) -> Starlette:
    async def endpoint(request: Request) -> Response:
        if token is None and not open_access:
            return PlainTextResponse("Not Found", status_code=404)
        if not metrics.authorized(
            request.headers.get("authorization"), token=token, open_access=open_access
        ):
            return PlainTextResponse(
                "Unauthorized", status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)

    return Starlette(routes=[Route("/metrics", endpoint)])


class MetricsServer:
    def __init__(self, *, host: str, port: int, token: str | None, open_access: bool) -> None:
        config = uvicorn.Config(
            metrics_app(token=token, open_access=open_access),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve()), name="metrics", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    @property
    def started(self) -> bool:
        return self.server.started

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
