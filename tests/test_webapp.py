"""The web app served by the API: hashed assets cached forever, pages never, the API untouched."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from coderoom.api import create_app
from tests.conftest import make_settings

INDEX = '<!doctype html><html><head><script type="module" src="/assets/index-abc123.js">'
SCRIPT = "console.log('coderoom');" * 100


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(INDEX + "</script></head></html>")
    (tmp_path / "assets" / "index-abc123.js").write_text(SCRIPT)
    (tmp_path / "favicon.svg").write_text("<svg/>")
    return tmp_path


async def _client(dist: Path, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(make_settings(database_url=database_url, web_dist_dir=dist))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


@pytest.fixture
async def web(dist: Path, sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(dist, sqlite_url):
        yield client


async def test_root_serves_index_uncached_under_the_strict_csp(web: httpx.AsyncClient) -> None:
    response = await web.get("/")
    assert response.status_code == 200
    assert response.text.startswith(INDEX)
    assert response.headers["cache-control"] == "no-cache"
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "unsafe-eval" not in csp


@pytest.mark.parametrize("path", ["/sessions/0b7c", "/join/some-invite-token", "/signin"])
async def test_app_routes_fall_back_to_index(web: httpx.AsyncClient, path: str) -> None:
    response = await web.get(path)
    assert response.status_code == 200
    assert response.text.startswith(INDEX)


async def test_hashed_assets_are_cached_for_a_year_and_gzipped(web: httpx.AsyncClient) -> None:
    response = await web.get("/assets/index-abc123.js", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-encoding"] == "gzip"
    assert response.text == SCRIPT  # httpx decodes
    assert int(response.headers["content-length"]) < len(gzip.compress(SCRIPT.encode())) + 64


async def test_missing_asset_is_404_not_index(web: httpx.AsyncClient) -> None:
    assert (await web.get("/assets/index-gone.js")).status_code == 404


async def test_top_level_dist_files_are_served(web: httpx.AsyncClient) -> None:
    response = await web.get("/favicon.svg")
    assert response.text == "<svg/>"


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_unknown_api_paths_stay_problem_json_404(web: httpx.AsyncClient, method: str) -> None:
    response = await web.request(method, "/api/v1/no-such-route")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_api_routes_are_not_shadowed(web: httpx.AsyncClient) -> None:
    response = await web.get("/api/v1/auth/registration")
    assert response.json() == {"mode": "open"}


async def test_unbuilt_app_says_how_to_build_it(tmp_path: Path, sqlite_url: str) -> None:
    async for client in _client(tmp_path / "nothing-here", sqlite_url):
        response = await client.get("/")
        assert response.status_code == 503
        assert "make web" in response.text
        assert (await client.get("/api/v1/auth/registration")).status_code == 200
