"""API keys for machine clients, and a hostile client's attempts to abuse them."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from sqlalchemy import select, text, update

from coderoom.auth.models import ApiKey
from coderoom.config import Settings
from tests.conftest import make_settings
from tests.support.app import running_app
from tests.support.factories import (
    api_key,
    create_session,
    key_header,
    make_admin,
    register,
    user,
)

PYTHON = {"language": "python", "source": "print(6 * 7)"}


async def run_with(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> httpx.Response:
    return await client.post(
        "/api/v1/sandbox/executions?wait=true", json={**PYTHON, **body}, headers=headers
    )


async def test_a_key_is_shown_once_and_stored_only_as_its_hash(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    owner = await user(client)
    created = await api_key(client, owner, name="CI runner")
    secret = created["key"]
    assert secret.startswith("crk_")
    assert len(secret) >= 40
    assert created["prefix"] == secret[:12]
    assert created["scope"] == "executions"
    listed = (await client.get("/api/v1/auth/api-keys", headers=owner)).json()
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0]
    async with app.state.coderoom.sessionmaker() as db:
        rows = (await db.execute(text("SELECT * FROM api_keys"))).mappings().all()
    (row,) = rows
    assert row["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(secret in str(value) for value in row.values())


async def test_a_key_runs_and_reads_its_owners_executions(client: httpx.AsyncClient) -> None:
    owner = await user(client)
    key = key_header(await api_key(client, owner))
    ran = await run_with(client, key)
    assert ran.status_code == 200, ran.text
    body = ran.json()
    assert (body["status"], body["stdout"]) == ("succeeded", "42\n")
    assert body["created_by"] == owner["X-User-Id"]
    fetched = await client.get(f"/api/v1/sandbox/executions/{body['id']}", headers=key)
    assert fetched.status_code == 200
    listed = (await client.get("/api/v1/sandbox/executions", headers=key)).json()
    assert [item["id"] for item in listed["items"]] == [body["id"]]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/auth/me", None),
        ("GET", "/api/v1/sessions", None),
        ("POST", "/api/v1/sessions", {"title": "x", "language": "python"}),
        ("POST", "/api/v1/auth/api-keys", {"name": "a key minting keys"}),
        ("GET", "/api/v1/auth/api-keys", None),
        ("GET", "/api/v1/admin/users", None),
        ("POST", "/api/v1/sessions/join", {"token": "whatever"}),
    ],
)
async def test_a_key_outside_its_scope_is_refused(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    key = key_header(await api_key(client, await user(client)))
    response = await client.request(method, path, json=body, headers=key)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "api_key_scope"


async def test_even_an_admin_s_key_cannot_reach_admin_routes(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_admin(app, await user(client, "admin"))
    key = key_header(await api_key(client, admin))
    response = await client.get("/api/v1/admin/users", headers=key)
    assert response.status_code == 403


async def test_a_key_cannot_touch_sessions_through_executions(client: httpx.AsyncClient) -> None:
    owner = await user(client)
    key = key_header(await api_key(client, owner))
    session = await create_session(client, owner)
    in_session = (await run_with(client, owner, session_id=session["id"])).json()
    created = await run_with(client, key, session_id=session["id"])
    listed = await client.get(f"/api/v1/sandbox/executions?session_id={session['id']}", headers=key)
    run_session = await client.post(f"/api/v1/sessions/{session['id']}/run", json={}, headers=key)
    fetched = await client.get(f"/api/v1/sandbox/executions/{in_session['id']}", headers=key)
    cancelled = await client.post(
        f"/api/v1/sandbox/executions/{in_session['id']}/cancel", headers=key
    )
    mine = (await client.get("/api/v1/sandbox/executions", headers=key)).json()
    assert (created.status_code, created.json()["code"]) == (403, "api_key_scope")
    assert listed.status_code == 403
    assert run_session.status_code == 403
    assert fetched.status_code == 404
    assert cancelled.status_code == 404
    assert in_session["id"] not in {item["id"] for item in mine["items"]}


async def test_a_revoked_key_stops_at_once(client: httpx.AsyncClient) -> None:
    owner = await user(client)
    created = await api_key(client, owner)
    key = key_header(created)
    assert (await client.get("/api/v1/sandbox/executions", headers=key)).status_code == 200
    revoked = await client.delete(f"/api/v1/auth/api-keys/{created['id']}", headers=owner)
    assert revoked.status_code == 204
    after = await client.get("/api/v1/sandbox/executions", headers=key)
    assert after.status_code == 401
    assert (await run_with(client, key)).status_code == 401
    listed = (await client.get("/api/v1/auth/api-keys", headers=owner)).json()
    assert listed[0]["revoked"] is True


async def test_nobody_revokes_someone_else_s_key(client: httpx.AsyncClient) -> None:
    owner, stranger = await user(client, "owner"), await user(client, "stranger")
    created = await api_key(client, owner)
    response = await client.delete(f"/api/v1/auth/api-keys/{created['id']}", headers=stranger)
    assert response.status_code == 404
    assert (
        await client.get("/api/v1/sandbox/executions", headers=key_header(created))
    ).status_code == 200


async def test_a_disabled_owner_s_key_stops_at_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_admin(app, await user(client, "admin"))
    owner = await user(client)
    key = key_header(await api_key(client, owner))
    assert (await client.get("/api/v1/sandbox/executions", headers=key)).status_code == 200
    await client.post(f"/api/v1/admin/users/{owner['X-User-Id']}/disable", headers=admin)
    assert (await client.get("/api/v1/sandbox/executions", headers=key)).status_code == 401


async def test_an_expired_key_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    owner = await user(client)
    created = await api_key(client, owner)
    state = app.state.coderoom
    async with state.sessionmaker() as db:
        await db.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(created["id"]))
            .values(expires_at=ApiKey.created_at)
        )
        await db.commit()
    response = await client.get("/api/v1/sandbox/executions", headers=key_header(created))
    assert response.status_code == 401


async def test_wrong_keys_all_look_alike(client: httpx.AsyncClient) -> None:
    """A key one character off gets exactly what a random one gets: lookup is by hash, so
    neither the answer nor its cost says how close a guess was."""
    secret = (await api_key(client, await user(client)))["key"]
    near_miss = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    answers = []
    for guess in (near_miss, "crk_" + "x" * 43, "crk_"):
        response = await client.get(
            "/api/v1/sandbox/executions", headers={"Authorization": f"Bearer {guess}"}
        )
        body = response.json()
        answers.append((response.status_code, body["code"], body["detail"]))
        assert guess not in response.text
    assert len(set(answers)) == 1
    assert answers[0][0] == 401


async def test_keys_never_reach_logs_or_error_bodies(client: httpx.AsyncClient) -> None:
    owner = await user(client)
    with structlog.testing.capture_logs() as logs:
        created = await api_key(client, owner)
        secret = created["key"]
        key = key_header(created)
        bodies = [
            (await run_with(client, key)).text,
            (await client.get("/api/v1/auth/me", headers=key)).text,
            (await run_with(client, key, session_id=str(uuid.uuid4()))).text,
            (await client.post("/api/v1/sandbox/executions", content=b"{", headers=key)).text,
        ]
        await client.delete(f"/api/v1/auth/api-keys/{created['id']}", headers=owner)
        bodies.append((await run_with(client, key)).text)
    assert not any(secret in body for body in bodies)
    assert secret not in json.dumps(logs, default=str)
    assert secret[12:] not in json.dumps(logs, default=str)


async def test_a_key_spends_its_own_limit_not_the_client_s(settings: Settings) -> None:
    limited = make_settings(
        database_url=settings.database_url, rate_limit_api="3/day", rate_limit_api_key="3/day"
    )
    async with running_app(limited) as (_, c):
        owner = {"Authorization": f"Bearer {(await register(c))['access_token']}"}  # api: 1
        key = key_header(await api_key(c, owner))  # api: 2; the first key use makes 3
        answers = [await c.get("/api/v1/sandbox/executions", headers=key) for _ in range(4)]
        anonymous = await c.get("/api/v1/sandbox/languages")
    statuses = [r.status_code for r in answers]
    assert statuses == [200, 200, 200, 429]
    assert answers[3].json()["limit"] == "api_key"
    assert answers[0].headers["ratelimit-limit"] == "3"
    # Only the first key request (not yet verified in this process) spent the IP's budget.
    assert anonymous.status_code == 429
    assert anonymous.json()["limit"] == "api"


async def test_guessing_keys_spends_the_client_s_budget(settings: Settings) -> None:
    limited = make_settings(database_url=settings.database_url, rate_limit_api="2/day")
    async with running_app(limited) as (_, c):
        answers = [
            await c.get(
                "/api/v1/sandbox/executions",
                headers={"Authorization": f"Bearer crk_{uuid.uuid4().hex}"},
            )
            for _ in range(3)
        ]
    assert [r.status_code for r in answers] == [401, 401, 429]


async def test_key_rows_name_their_owner(app: FastAPI, client: httpx.AsyncClient) -> None:
    owner = await user(client)
    created = await api_key(client, owner)
    async with app.state.coderoom.sessionmaker() as db:
        row = (
            await db.execute(select(ApiKey).where(ApiKey.id == uuid.UUID(created["id"])))
        ).scalar_one()
    assert str(row.user_id) == owner["X-User-Id"]
    assert row.scope == "executions"
