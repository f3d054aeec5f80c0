"""Typed helpers that create things through the API, the way a client would."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from coderoom.auth.models import User

PASSWORD = "correct horse battery staple"


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


async def register(
    client: httpx.AsyncClient,
    *,
    email: str | None = None,
    password: str = PASSWORD,
    display_name: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"email": email or unique_email(), "password": password}
    if display_name is not None:
        body["display_name"] = display_name
    response = await client.post("/api/v1/auth/register", json=body, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def user(client: httpx.AsyncClient, name: str = "user") -> dict[str, str]:
    """A registered user's Authorization header (plus its id under "id")."""
    tokens = await register(client, email=unique_email(name), display_name=name)
    return {**bearer(tokens), "X-User-Id": tokens["user"]["id"]}


async def create_session(
    client: httpx.AsyncClient, headers: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    body = {"title": "Pairing", "language": "python", "source": "print('hi')", **overrides}
    response = await client.post("/api/v1/sessions", json=body, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def invite(
    client: httpx.AsyncClient, headers: dict[str, str], session_id: str, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/sessions/{session_id}/invites", json=body, headers=headers
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def join(client: httpx.AsyncClient, headers: dict[str, str], token: str) -> httpx.Response:
    return await client.post("/api/v1/sessions/join", json={"token": token}, headers=headers)


async def make_admin(app: FastAPI, headers: dict[str, str]) -> dict[str, str]:
    """Promote a registered user straight in the database (the CLI's job in real life)."""
    state = app.state.coderoom
    async with state.sessionmaker() as db:
        await db.execute(
            update(User).where(User.id == uuid.UUID(headers["X-User-Id"])).values(is_admin=True)
        )
        await db.commit()
    state.auth.cache.clear()
    return headers


async def api_key(
    client: httpx.AsyncClient, headers: dict[str, str], name: str = "ci"
) -> dict[str, Any]:
    response = await client.post("/api/v1/auth/api-keys", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def key_header(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}
