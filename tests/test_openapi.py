"""The OpenAPI document says what the service answers (api/openapi.py), and the request
edge cases it declares behave as declared."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi import APIRouter, Depends, FastAPI

from coderoom.api import create_app
from coderoom.api.problems import PROBLEM_MEDIA_TYPE
from coderoom.core.errors import raises
from coderoom.sessions.errors import SessionNotFound
from tests.conftest import make_settings
from tests.support.factories import create_session, user


def document(app: FastAPI | None = None) -> dict[str, Any]:
    return (app or create_app(make_settings())).openapi()


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]


def test_every_error_response_is_a_problem_document() -> None:
    schema = document()
    errors = 0
    for method, path, operation in operations(schema):
        for status, response in operation["responses"].items():
            if int(status) < 400 or path.startswith("/api/v1/health"):
                continue
            errors += 1
            content = response["content"]
            assert list(content) == [PROBLEM_MEDIA_TYPE], (method, path, status)
            assert content[PROBLEM_MEDIA_TYPE]["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert errors > 150
    assert "HTTPValidationError" not in json.dumps(schema)


def test_every_example_validates_against_its_schema() -> None:
    schema = document()
    components = schema["components"]

    def valid(target: dict[str, Any], example: object) -> bool:
        root = {**target, "components": components}
        return bool(jsonschema_rs.validator_for(root).is_valid(example))

    checked = 0
    for _, _, operation in operations(schema):
        for response in operation["responses"].values():
            for media in response.get("content", {}).values():
                for example in media.get("examples", {}).values():
                    assert valid(media["schema"], example["value"]), example
                    checked += 1
    for component in components["schemas"].values():
        for prop in component.get("properties", {}).values():
            for example in prop.get("examples", []):
                assert valid({k: v for k, v in prop.items() if k != "examples"}, example), prop
                checked += 1
    assert checked > 200


def test_protected_routes_declare_401_and_403_with_www_authenticate() -> None:
    responses = document()["paths"]["/api/v1/sessions/{session_id}"]["get"]["responses"]
    assert {"401", "403", "404", "422", "429", "503"} <= set(responses)
    assert "WWW-Authenticate" in responses["401"]["headers"]
    assert set(responses["404"]["content"][PROBLEM_MEDIA_TYPE]["examples"]) == {"session_not_found"}


def test_a_dependency_that_declares_an_error_gives_it_to_every_route_using_it() -> None:
    @raises(SessionNotFound)
    def find_it() -> None:
        return None

    app = create_app(make_settings())
    router = APIRouter(prefix="/api/v1")

    @router.post("/_test/thing")
    async def thing(body: dict[str, int], found: None = Depends(find_it)) -> None:
        del body, found

    app.include_router(router)
    responses = document(app)["paths"]["/api/v1/_test/thing"]["post"]["responses"]
    codes = {
        code
        for status, response in responses.items()
        if status != "200"
        for code in response["content"][PROBLEM_MEDIA_TYPE]["examples"]
    }
    assert {"session_not_found", "malformed_json", "payload_too_large"} <= codes
    assert {"unsupported_media_type", "validation_failed", "rate_limited"} <= codes


def test_limits_carry_their_ceilings_as_standard_keywords() -> None:
    limits = document()["components"]["schemas"]["LimitsIn"]["properties"]["memory_mb"]
    integer = next(branch for branch in limits["anyOf"] if branch.get("type") == "integer")
    assert integer["minimum"] == 1
    assert integer["maximum"] == 2048
    assert "le" not in integer


async def test_a_100000_deep_array_is_malformed_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/login", content="[" * 100_000, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


async def test_405_lists_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    response = await client.put(f"/api/v1/sessions/{uuid.uuid4()}")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"DELETE", "GET", "PATCH"}


async def test_a_word_where_an_id_goes_is_404_and_join_answers_405_to_patch(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.patch("/api/v1/sessions/join", json={})).status_code == 405
    assert (await client.get("/api/v1/sessions/not-an-id")).status_code == 404


async def test_session_run_needs_no_body(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    session = await create_session(client, ada, source="print('no body')")
    response = await client.post(f"/api/v1/sessions/{session['id']}/run?wait=true", headers=ada)
    assert response.status_code == 200, response.text
    assert response.json()["stdout"] == "no body\n"


@pytest.mark.parametrize(("max_uses", "status"), [(5.0, 201), (True, 422), ("5", 422), (2.5, 422)])
async def test_integers_are_json_schema_integers(
    client: httpx.AsyncClient, max_uses: object, status: int
) -> None:
    ada = await user(client, "ada")
    session = await create_session(client, ada)
    response = await client.post(
        f"/api/v1/sessions/{session['id']}/invites", json={"max_uses": max_uses}, headers=ada
    )
    assert response.status_code == status, response.text


async def test_any_cursor_matching_the_declared_pattern_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    ada = await user(client, "ada")
    for cursor in ("0-" + "0" * 32, "9999999999999999-" + "f" * 32):
        response = await client.get("/api/v1/sessions", params={"cursor": cursor}, headers=ada)
        assert response.status_code == 200, response.text
    refused = await client.get("/api/v1/sessions", params={"cursor": "\\"}, headers=ada)
    assert refused.status_code == 422


async def test_both_source_and_files_is_refused_as_the_schema_says(
    client: httpx.AsyncClient,
) -> None:
    ada = await user(client, "ada")
    body = {
        "language": "python",
        "source": "print(1)",
        "files": [{"name": "main.py", "content": "print(2)"}],
    }
    one_of = document()["components"]["schemas"]["ExecutionCreate"]["oneOf"]
    assert len(one_of) == 2
    response = await client.post("/api/v1/sandbox/executions", json=body, headers=ada)
    assert response.status_code == 422


async def test_swagger_ui_keeps_the_authorization_across_reloads(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/api/v1/docs")
    assert "persistAuthorization: true" in page.text


async def test_an_invite_needs_no_body(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    session = await create_session(client, ada)
    response = await client.post(f"/api/v1/sessions/{session['id']}/invites", headers=ada)
    assert response.status_code == 201, response.text
    assert response.json()["role"] == "viewer"
