"""Interactive API docs served from the package: no CDN, works offline.

Swagger UI's assets come from the fastapi-offline wheel. The page needs one inline script to
start Swagger UI; it gets a per-response nonce and a Content-Security-Policy of its own, so
the relaxation is for this page only and does not allow arbitrary inline script.
`persistAuthorization` keeps the token entered under "Authorize" across reloads (in the
browser's localStorage, for this origin only).
"""

from __future__ import annotations

import html
import json
import secrets
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" href="{assets}/favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script nonce="{nonce}">
window.ui = SwaggerUIBundle({{url: {openapi_url}, dom_id: "#swagger-ui",
  deepLinking: true, persistAuthorization: true, presets: [SwaggerUIBundle.presets.apis]}});
</script>
</body>
</html>
"""


def docs_csp(nonce: str) -> str:
    return (
        "default-src 'self';base-uri 'self';form-action 'self';frame-ancestors 'self';"
        "img-src 'self' data:;object-src 'none';"
        f"script-src 'self' 'nonce-{nonce}';script-src-attr 'none';"
        "style-src 'self' 'unsafe-inline'"
    )


def install_docs(app: FastAPI, *, prefix: str, openapi_url: str) -> None:
    assets_url = f"{prefix}/docs/assets"
    app.mount(assets_url, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get(f"{prefix}/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        page = _PAGE.format(
            title=html.escape(app.title),
            assets=assets_url,
            nonce=nonce,
            openapi_url=json.dumps(openapi_url),
        )
        return HTMLResponse(page, headers={"Content-Security-Policy": docs_csp(nonce)})
