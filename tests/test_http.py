"""Cross-cutting HTTP behaviour: problem+json errors, correlation ids, security headers, CORS,
body limits."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from coderoom.api import create_app
from coderoom.config import Settings
from tests.conftest import make_settings
from tests.support.routes import add_test_routes

PROBLEM = "application/problem+json"
HELMET_HEADERS = [
    "content-security-policy",
    "cross-origin-opener-policy",
    "cross-origin-resource-policy",
    "origin-agent-cluster",
    "referrer-policy",
    "x-content-type-options",
    "x-dns-prefetch-control",
    "x-download-options",
    "x-frame-options",
    "x-permitted-cross-domain-policies",
    "x-xss-protection",
]


async def _client_for(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application: FastAPI = create_app(settings)
    add_test_routes(application)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


@pytest.fixture
async def http(sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database_url=sqlite_url, cors_origins="https://a.example,https://b.example"
    )
    async for c in _client_for(settings):
        yield c


@pytest.fixture
async def production_http(postgres_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        environment="production",
        jwt_secret="p" * 40,
        database_url=postgres_url,
        cors_origins="https://a.example",
    )
    async for c in _client_for(settings):
        yield c


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail", "instance", "correlation_id"} <= body.keys()
    assert body["correlation_id"] == response.headers["x-correlation-id"]
    return body


async def test_unknown_route_is_a_404_problem(http: httpx.AsyncClient) -> None:
    body = assert_problem(await http.get("/api/v1/does-not-exist"), 404)
    assert body["instance"] == "/api/v1/does-not-exist"


async def test_wrong_method_is_a_405_problem_with_allow(http: httpx.AsyncClient) -> None:
    response = await http.delete("/api/v1/health/live")
    assert_problem(response, 405)
    assert "GET" in response.headers["allow"]


async def test_domain_error_keeps_its_status_and_extra_fields(http: httpx.AsyncClient) -> None:
    body = assert_problem(await http.get("/api/v1/_test/conflict"), 409)
    assert body["detail"] == "already there"
    assert body["current_version"] == 3


async def test_validation_errors_list_fields_without_echoing_input(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/api/v1/_test/echo", json={"name": "", "count": "many"})
    body = assert_problem(response, 422)
    fields = {error["field"] for error in body["errors"]}  # type: ignore[attr-defined]
    assert fields == {"body.name", "body.count"}
    assert "many" not in response.text


async def test_malformed_json_is_a_400(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/api/v1/_test/echo", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400)


async def test_non_json_body_is_a_415(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/api/v1/_test/echo", content=b"name=x", headers={"content-type": "text/plain"}
    )
    assert_problem(response, 415)


async def test_oversize_body_is_a_413(http: httpx.AsyncClient) -> None:
    big = json.dumps({"name": "x" * (2 * 1024 * 1024), "count": 1})
    response = await http.post(
        "/api/v1/_test/echo", content=big, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)


async def test_oversize_chunked_body_is_cut_off_with_413(http: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'", "count": 1}'

    response = await http.post(
        "/api/v1/_test/echo", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)


async def test_body_just_under_the_cap_is_accepted(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/v1/_test/echo", json={"name": "ok", "count": 2})
    assert response.status_code == 200
    assert response.json() == {"name": "ok", "count": 2}


async def test_unhandled_error_in_development_shows_the_exception(
    http: httpx.AsyncClient,
) -> None:
    body = assert_problem(await http.get("/api/v1/_test/boom"), 500)
    assert body["exception"] == "RuntimeError"


async def test_unhandled_error_in_production_leaks_nothing(
    production_http: httpx.AsyncClient,
) -> None:
    response = await production_http.get("/api/v1/_test/boom")
    body = assert_problem(response, 500)
    assert "exception" not in body
    assert "traceback" not in body
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text


async def test_sane_client_correlation_id_is_echoed(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/health/live", headers={"X-Correlation-ID": "req-1.a_B"})
    assert response.headers["x-correlation-id"] == "req-1.a_B"


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "<script>", "a/b", ""])
async def test_insane_correlation_id_is_replaced_by_a_uuid4(
    http: httpx.AsyncClient, bad: str
) -> None:
    response = await http.get("/api/v1/health/live", headers={"X-Correlation-ID": bad})
    assert uuid.UUID(response.headers["x-correlation-id"]).version == 4


async def test_every_response_has_helmet_headers(http: httpx.AsyncClient) -> None:
    for response in (
        await http.get("/api/v1/health/live"),
        await http.get("/api/v1/nope"),
        await http.get("/api/v1/_test/boom"),
    ):
        for header in HELMET_HEADERS:
            assert header in response.headers, (header, response.status_code)
        assert response.headers["x-xss-protection"] == "0"
        assert "server" not in response.headers
        assert "x-powered-by" not in response.headers
        assert "strict-transport-security" not in response.headers


async def test_production_adds_hsts(production_http: httpx.AsyncClient) -> None:
    response = await production_http.get("/api/v1/health/live")
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_docs_work_offline_with_a_page_only_csp(http: httpx.AsyncClient) -> None:
    page = await http.get("/api/v1/docs")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    nonce = csp.split("'nonce-", 1)[1].split("'", 1)[0]
    assert f'nonce="{nonce}"' in page.text
    assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert "cdn" not in page.text.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        response = await http.get(f"/api/v1/docs/assets/{asset}")
        assert response.status_code == 200
        assert len(response.content) > 10_000
    other = await http.get("/api/v1/health/live")
    assert "nonce-" not in other.headers["content-security-policy"]


async def test_openapi_is_served_under_the_prefix(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/api/v1/openapi.json")).json()
    assert "/api/v1/health" in schema["paths"]
    assert all(path.startswith("/api/v1/") for path in schema["paths"])


async def test_cors_allows_each_configured_origin_with_credentials(
    http: httpx.AsyncClient,
) -> None:
    for origin in ("https://a.example", "https://b.example"):
        response = await http.options(
            "/api/v1/health",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization, x-correlation-id",
            },
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == origin
        assert response.headers["access-control-allow-credentials"] == "true"
    simple = await http.get("/api/v1/health/live", headers={"Origin": "https://a.example"})
    exposed = simple.headers["access-control-expose-headers"].lower()
    assert "x-correlation-id" in exposed
    assert "ratelimit-remaining" in exposed


async def test_cors_ignores_other_origins_and_methods(http: httpx.AsyncClient) -> None:
    response = await http.options(
        "/api/v1/health",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in response.headers
    response = await http.options(
        "/api/v1/health",
        headers={"Origin": "https://a.example", "Access-Control-Request-Method": "TRACE"},
    )
    assert response.status_code == 400
