"""Accounts and sign-in through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
import warnings
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
import structlog

from coderoom.config import DEV_JWT_SECRET
from tests.support.factories import PASSWORD, bearer, register, unique_email

PROBLEM = "application/problem+json"


async def test_register_login_me_refresh_and_reuse_revokes_the_family(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email()
    registered = await register(client, email=email, display_name="Ada")
    assert registered["token_type"] == "bearer"
    assert registered["expires_in"] == 900
    assert registered["user"]["email"] == email
    assert registered["user"]["display_name"] == "Ada"

    login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200
    tokens = login.json()

    me = await client.get("/api/v1/auth/me", headers=bearer(tokens))
    assert me.status_code == 200
    assert me.json()["email"] == email
    assert set(me.json()) == {"id", "email", "display_name", "created_at"}

    first = tokens["refresh_token"]
    rotated = await client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200
    second = rotated.json()["refresh_token"]
    assert second != first
    assert (await client.get("/api/v1/auth/me", headers=bearer(rotated.json()))).status_code == 200

    reused = await client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert reused.status_code == 401
    assert reused.json()["code"] == "refresh_token_reused"
    # The thief's reuse revoked the family: the legitimate newer token is dead too.
    after = await client.post("/api/v1/auth/refresh", json={"refresh_token": second})
    assert after.status_code == 401
    # Another login (another family) is untouched.
    other = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": registered["refresh_token"]}
    )
    assert other.status_code == 200


async def test_responses_never_contain_the_hash_or_foreign_tokens(
    client: httpx.AsyncClient,
) -> None:
    tokens = await register(client)
    assert set(tokens["user"]) == {"id", "email", "display_name", "created_at"}
    assert "argon2" not in json.dumps(tokens)


async def test_email_is_normalised_and_unique(client: httpx.AsyncClient) -> None:
    local = f"Mixed.{uuid.uuid4().hex[:8]}"
    first = await register(client, email=f"  {local}@Example.COM ")
    assert first["user"]["email"] == f"{local.lower()}@example.com"
    again = await client.post(
        "/api/v1/auth/register",
        json={"email": f"{local.upper()}@example.com", "password": PASSWORD},
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM
    login = await client.post(
        "/api/v1/auth/login", json={"email": f"{local}@EXAMPLE.com", "password": PASSWORD}
    )
    assert login.status_code == 200


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "8 to 128"),
        ("x" * 129, "8 to 128"),
        ("password1", "common"),
        ("Iloveyou123", "common"),
    ],
)
async def test_weak_passwords_are_refused(
    client: httpx.AsyncClient, password: str, reason: str
) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"email": unique_email(), "password": password}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert any(e["field"] == "body.password" for e in response.json()["errors"])
    if reason == "common":
        assert "common" in response.json()["detail"]


async def test_password_equal_to_email_is_refused(client: httpx.AsyncClient) -> None:
    email = unique_email()
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": email.upper()}
    )
    assert response.status_code == 422
    assert "email" in response.json()["detail"]


async def test_invalid_email_is_a_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"email": "not-an-email", "password": PASSWORD}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.email"


async def test_display_name_markup_is_removed(client: httpx.AsyncClient) -> None:
    tokens = await register(client, display_name="<img src=x onerror=alert(1)>Eve <b>&</b> Co")
    assert tokens["user"]["display_name"] == "Eve & Co"
    blank = await client.post(
        "/api/v1/auth/register",
        json={"email": unique_email(), "password": PASSWORD, "display_name": "<script></script>"},
    )
    assert blank.status_code == 422


async def test_wrong_password_and_unknown_email_look_the_same(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(client, email=email)
    wrong = await client.post("/api/v1/auth/login", json={"email": email, "password": "nope" * 3})
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": unique_email(), "password": "nope" * 3}
    )
    assert wrong.status_code == unknown.status_code == 401
    strip = {"correlation_id", "instance"}
    assert {k: v for k, v in wrong.json().items() if k not in strip} == {
        k: v for k, v in unknown.json().items() if k not in strip
    }
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"] == "Bearer"


async def test_logout_revokes_the_family(client: httpx.AsyncClient) -> None:
    tokens = await register(client)
    rotated = (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).json()
    out = await client.post("/api/v1/auth/logout", json={"refresh_token": rotated["refresh_token"]})
    assert out.status_code == 204
    again = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
    )
    assert again.status_code == 401


async def test_unknown_refresh_token_is_a_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": "made-up"})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def _forge(claims: dict[str, object], secret: str = DEV_JWT_SECRET, alg: str = "HS256") -> str:
    with warnings.catch_warnings():  # PyJWT warns about short HS512 keys; the forgery is the point
        warnings.simplefilter("ignore")
        return jwt.encode(claims, secret, algorithm=alg)


def _claims(user_id: str, **overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "iss": "coderoom",
        "sub": user_id,
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    claims.update(overrides)
    return claims


def _unsigned(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        raw = json.dumps(data, default=lambda d: int(d.timestamp())).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def test_bad_access_tokens_are_401_with_www_authenticate(client: httpx.AsyncClient) -> None:
    tokens = await register(client)
    user_id = tokens["user"]["id"]
    access = tokens["access_token"]
    head, body, signature = access.split(".")
    tampered_body = json.loads(base64.urlsafe_b64decode(body + "=="))
    tampered_body["sub"] = str(uuid.uuid4())
    tampered = ".".join(
        [
            head,
            base64.urlsafe_b64encode(json.dumps(tampered_body).encode()).rstrip(b"=").decode(),
            signature,
        ]
    )
    candidates = {
        "missing": None,
        "malformed": "Bearer not.a.jwt",
        "wrong scheme": f"Basic {access}",
        "tampered": f"Bearer {tampered}",
        "expired": "Bearer "
        + _forge(_claims(user_id, exp=datetime.now(UTC) - timedelta(seconds=5))),
        "forged secret": "Bearer " + _forge(_claims(user_id), secret="x" * 40),
        "alg none": "Bearer " + _unsigned(_claims(user_id)),
        "other alg": "Bearer " + _forge(_claims(user_id), alg="HS512"),
        "not access": "Bearer " + _forge(_claims(user_id, typ="refresh")),
        "unknown user": "Bearer " + _forge(_claims(str(uuid.uuid4()))),
    }
    for name, header in candidates.items():
        headers = {"Authorization": header} if header else {}
        response = await client.get("/api/v1/auth/me", headers=headers)
        assert response.status_code == 401, name
        assert response.headers["www-authenticate"] == "Bearer", name
        assert response.headers["content-type"] == PROBLEM, name
    assert (await client.get("/api/v1/auth/me", headers=bearer(tokens))).status_code == 200


async def test_authenticated_requests_log_the_user_id(client: httpx.AsyncClient) -> None:
    tokens = await register(client)
    with structlog.testing.capture_logs() as logs:
        await client.get("/api/v1/auth/me", headers=bearer(tokens))
    access = [entry for entry in logs if entry["event"] == "request"]
    assert access[-1]["user_id"] == tokens["user"]["id"]


async def test_concurrent_refreshes_with_one_token_let_only_one_through(
    client: httpx.AsyncClient,
) -> None:
    tokens = await register(client)
    body = {"refresh_token": tokens["refresh_token"]}
    results = await asyncio.gather(
        *(client.post("/api/v1/auth/refresh", json=body) for _ in range(4))
    )
    assert sorted(r.status_code for r in results) == [200, 401, 401, 401]
