"""Typed helpers that create things through the API, the way a client would."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

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
