"""Real API processes for the live tests, and the REST calls those tests make on them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.cluster import Api
from tests.support.yclient import YClient

#: Settings every live test server shares: roomy rate limits, cheap hashes, and quick ticks.
LIVE_ENV = {
    "RATE_LIMIT_API": "100000/minute",
    "RATE_LIMIT_AUTH": "100000/minute",
    "RATE_LIMIT_SESSION": "100000/minute",
    "RATE_LIMIT_EXECUTION": "100000/minute",
    "ARGON2_MEMORY_KIB": "1024",
    "ARGON2_TIME_COST": "1",
}


@dataclass
class Person:
    id: str
    headers: dict[str, str]


async def person(api: Api, name: str = "user") -> Person:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{api.url}/auth/register",
            json={
                "email": f"{name}-{uuid.uuid4().hex[:8]}@example.com",
                "password": "live-test-password",
                "display_name": name,
            },
        )
    assert response.status_code == 201, response.text
    body = response.json()
    return Person(body["user"]["id"], {"Authorization": f"Bearer {body['access_token']}"})


async def call(
    api: Api, method: str, path: str, who: Person, json: Any = None, expect: int = 200
) -> Any:
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.request(method, f"{api.url}{path}", json=json, headers=who.headers)
    assert response.status_code == expect, response.text
    return response.json() if response.content else None


async def new_session(api: Api, owner: Person, source: str = "print('hi')\n") -> str:
    body = await call(
        api,
        "POST",
        "/sessions",
        owner,
        {"title": "Live", "language": "python", "source": source},
        expect=201,
    )
    return str(body["id"])


async def add_member(api: Api, owner: Person, session_id: str, role: str) -> Person:
    member = await person(api, role)
    invite = await call(
        api, "POST", f"/sessions/{session_id}/invites", owner, {"role": role}, expect=201
    )
    await call(api, "POST", "/sessions/join", member, {"token": invite["token"]})
    return member


def live_url(api: Api, session_id: str) -> str:
    return api.url.replace("http://", "ws://") + f"/sessions/{session_id}/live"


async def connect(api: Api, who: Person, session_id: str, **kwargs: Any) -> YClient:
    return await YClient(live_url(api, session_id), who.headers).connect(**kwargs)
