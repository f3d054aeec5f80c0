"""The web app (web/, built by Vite into web/dist), served at `/` by the API itself.

- `/assets/*`: Vite's content-hashed files, cached for a year (`immutable`) and gzipped.
- Any other GET outside `/api/` and `/metrics` is a page of the single-page app: a file of
  dist's top level when one has that name, else index.html, which is never cached so a new
  build is picked up on the next load.
- `/api/...` is never answered with the app: an unknown API path stays a problem+json 404
  (the fallback route does not even match there, so no 405 either).
- When the app is not built, pages answer 503 with how to build it instead of a 500.

The page needs no inline script or style, so the default strict Content-Security-Policy
applies to it unchanged.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Match, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

import coderoom

IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
_RESERVED = ("/api/", "/metrics")

_NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>coderoom: web app not built</title></head>
<body><h1>The coderoom web app is not built yet</h1>
<p>Build it with <code>make web</code> (it needs Node.js and npm: <code>apt-get install
nodejs npm</code>), or run <code>make run</code>, which builds it when its sources change.
Then reload this page.</p>
<p>The API works without it: see <a href="/api/v1/docs">/api/v1/docs</a>.</p>
</body></html>
"""


def default_dist_dir() -> Path:
    """web/dist of the checkout this package runs from."""
    return Path(coderoom.__file__).resolve().parents[2] / "web" / "dist"


class HashedAssets(StaticFiles):
    """Vite's hashed assets: a name changes whenever the content does, so cache forever."""

    def file_response(self, *args: object, **kwargs: object) -> Response:
        response = super().file_response(*args, **kwargs)  # type: ignore[arg-type]
        response.headers["Cache-Control"] = IMMUTABLE
        return response


class _PageRoute(Route):
    """The SPA fallback: matches GET/HEAD anywhere except the API and metrics."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and scope["path"].startswith(_RESERVED):
            return Match.NONE, {}
        return super().matches(scope)


def _page_endpoint(dist: Path) -> object:
    async def page(request: Request) -> Response:
        index = dist / "index.html"
        if not index.is_file():
            return HTMLResponse(_NOT_BUILT, status_code=503, headers={"Cache-Control": NO_CACHE})
        name = request.path_params["path"]
        if name and "/" not in name and not name.startswith("."):
            candidate = dist / name
            if candidate.is_file():
                return FileResponse(candidate, headers={"Cache-Control": NO_CACHE})
        return FileResponse(index, headers={"Cache-Control": NO_CACHE})

    return page


class _LazyAssets:
    """Mount /assets even when dist does not exist yet (a build after start-up works)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.app: GZipMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            if not self.directory.is_dir():
                await Response("Not Found", status_code=404)(scope, receive, send)
                return
            self.app = GZipMiddleware(HashedAssets(directory=self.directory), minimum_size=512)
        await self.app(scope, receive, send)


def install_webapp(app: FastAPI, *, dist: Path | None) -> None:
    """Serve the built app; call after every other route so the fallback comes last."""
    directory = dist or default_dist_dir()
    app.mount("/assets", _LazyAssets(directory / "assets"), name="web-assets")
    app.router.routes.append(
        _PageRoute(
            "/{path:path}",
            _page_endpoint(directory),  # type: ignore[arg-type]
            methods=["GET", "HEAD"],
            include_in_schema=False,
        )
    )
