"""Who may have an account and who runs the server: registration modes, admins, disabling."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from coderoom.config import Settings
from tests.conftest import make_settings
from tests.support.app import running, running_app
from tests.support.factories import PASSWORD, bearer, make_admin, register, unique_email, user


def _settings(settings: Settings, **overrides: object) -> Settings:
    return make_settings(database_url=settings.database_url, **overrides)


async def _seed(app: FastAPI, client: httpx.AsyncClient) -> dict[str, str]:
    """A user made behind REGISTRATION's back (the CLI's way), signed in."""
    from coderoom.auth import accounts
    from coderoom.auth.schemas import LoginRequest
    from coderoom.auth.service import login

    email = unique_email("admin")
    state = app.state.coderoom
    async with state.sessionmaker() as db:
        await accounts.create_user(db, config=state.auth, email=email, password=PASSWORD)
        await db.commit()
        tokens = await login(
            db, config=state.auth, data=LoginRequest(email=email, password=PASSWORD)
        )
        await db.commit()
    del client
    return {**bearer(tokens.model_dump()), "X-User-Id": str(tokens.user.id)}


async def test_registration_mode_is_public(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/auth/registration")
    assert response.json() == {"mode": "open"}


async def test_closed_registration_refuses_everyone(settings: Settings) -> None:
    async with running(_settings(settings, registration="closed")) as c:
        response = await c.post(
            "/api/v1/auth/register", json={"email": unique_email(), "password": PASSWORD}
        )
        mode = (await c.get("/api/v1/auth/registration")).json()
    assert response.status_code == 403
    assert response.json()["code"] == "registration_closed"
    assert mode == {"mode": "closed"}


async def test_invite_only_registration_needs_an_invite(settings: Settings) -> None:
    async with running(_settings(settings, registration="invite-only")) as c:
        response = await c.post(
            "/api/v1/auth/register", json={"email": unique_email(), "password": PASSWORD}
        )
    assert response.status_code == 403
    assert response.json()["code"] == "invite_required"


async def test_an_admin_invite_admits_one_account(app: FastAPI, settings: Settings) -> None:
    del app  # the fixture empties the tables afterwards
    async with running_app(_settings(settings, registration="invite-only")) as (a, c):
        # The first admin comes from the CLI in real life; here, straight from the database.
        admin = await make_admin(a, await _seed(a, c))
        invite = await c.post("/api/v1/admin/invites", json={}, headers=admin)
        assert invite.status_code == 201, invite.text
        token = invite.json()["token"]
        first = await c.post(
            "/api/v1/auth/register",
            json={"email": unique_email(), "password": PASSWORD, "invite": token},
        )
        again = await c.post(
            "/api/v1/auth/register",
            json={"email": unique_email(), "password": PASSWORD, "invite": token},
        )
        listed = (await c.get("/api/v1/admin/invites", headers=admin)).json()
    assert first.status_code == 201, first.text
    assert again.status_code == 403
    assert again.json()["code"] == "invite_invalid"
    assert listed[0]["used"] is True
    assert "token" not in listed[0]


async def test_an_invite_for_one_email_admits_only_that_email(
    app: FastAPI, settings: Settings
) -> None:
    del app
    async with running_app(_settings(settings, registration="invite-only")) as (a, c):
        admin = await make_admin(a, await _seed(a, c))
        email = unique_email("invited")
        token = (
            await c.post("/api/v1/admin/invites", json={"email": email.upper()}, headers=admin)
        ).json()["token"]
        other = await c.post(
            "/api/v1/auth/register",
            json={"email": unique_email(), "password": PASSWORD, "invite": token},
        )
        invited = await c.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "invite": token}
        )
    assert other.status_code == 403
    assert invited.status_code == 201


async def test_a_revoked_invite_admits_nobody(app: FastAPI, settings: Settings) -> None:
    del app
    async with running_app(_settings(settings, registration="invite-only")) as (a, c):
        admin = await make_admin(a, await _seed(a, c))
        created = (await c.post("/api/v1/admin/invites", json={}, headers=admin)).json()
        revoked = await c.delete(f"/api/v1/admin/invites/{created['id']}", headers=admin)
        response = await c.post(
            "/api/v1/auth/register",
            json={"email": unique_email(), "password": PASSWORD, "invite": created["token"]},
        )
    assert revoked.status_code == 204
    assert response.status_code == 403


async def test_an_invalid_invite_does_not_reveal_taken_emails(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    taken = unique_email()
    await register(client, email=taken)
    async with running(_settings(settings, registration="invite-only")) as c:
        response = await c.post(
            "/api/v1/auth/register", json={"email": taken, "password": PASSWORD, "invite": "x"}
        )
    assert response.status_code == 403  # not 409: the invite is checked first
    assert response.json()["code"] == "invite_invalid"


async def test_non_admins_get_403_on_every_admin_route(client: httpx.AsyncClient) -> None:
    someone = await user(client)
    target = (await user(client))["X-User-Id"]
    attempts = [
        await client.get("/api/v1/admin/users", headers=someone),
        await client.post(f"/api/v1/admin/users/{target}/disable", headers=someone),
        await client.post(f"/api/v1/admin/users/{target}/enable", headers=someone),
        await client.post("/api/v1/admin/invites", json={}, headers=someone),
        await client.get("/api/v1/admin/invites", headers=someone),
    ]
    assert [r.status_code for r in attempts] == [403] * 5
    assert {r.json()["code"] for r in attempts} == {"admin_required"}
    anonymous = await client.get("/api/v1/admin/users")
    assert anonymous.status_code == 401


async def test_admins_list_users_newest_first_with_a_cursor(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_admin(app, await user(client, "admin"))
    for _ in range(3):
        await user(client)
    first = (await client.get("/api/v1/admin/users?limit=2", headers=admin)).json()
    rest = (
        await client.get(
            f"/api/v1/admin/users?limit=2&cursor={first['next_cursor']}", headers=admin
        )
    ).json()
    items = first["items"] + rest["items"]
    assert len(items) == 4
    assert rest["next_cursor"] is None
    assert set(items[0]) == {"id", "email", "display_name", "is_admin", "disabled_at", "created_at"}
    assert "password" not in str(items)
    assert [i["created_at"] for i in items] == sorted(
        (i["created_at"] for i in items), reverse=True
    )


async def test_disabling_ends_every_way_in_at_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_admin(app, await user(client, "admin"))
    email = unique_email()
    tokens = await register(client, email=email)
    victim = bearer(tokens)
    assert (await client.get("/api/v1/auth/me", headers=victim)).status_code == 200  # cached
    disabled = await client.post(
        f"/api/v1/admin/users/{tokens['user']['id']}/disable", headers=admin
    )
    assert disabled.status_code == 200
    assert disabled.json()["disabled_at"] is not None
    # The still-valid access token, the refresh token and the password all stop at once.
    me = await client.get("/api/v1/auth/me", headers=victim)
    assert me.status_code == 401
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 401
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 403
    assert login.json()["code"] == "account_disabled"


async def test_a_wrong_password_on_a_disabled_account_says_nothing_more(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_admin(app, await user(client, "admin"))
    email = unique_email()
    tokens = await register(client, email=email)
    await client.post(f"/api/v1/admin/users/{tokens['user']['id']}/disable", headers=admin)
    login = await client.post(
        "/api/v1/auth/login", json={"email": email, "password": "not the password at all"}
    )
    assert login.status_code == 401
    assert login.json()["code"] == "invalid_credentials"


async def test_an_enabled_account_signs_in_again(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_admin(app, await user(client, "admin"))
    email = unique_email()
    tokens = await register(client, email=email)
    uid = tokens["user"]["id"]
    await client.post(f"/api/v1/admin/users/{uid}/disable", headers=admin)
    enabled = await client.post(f"/api/v1/admin/users/{uid}/enable", headers=admin)
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert enabled.json()["disabled_at"] is None
    assert login.status_code == 200


async def test_an_admin_cannot_disable_themselves(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_admin(app, await user(client, "admin"))
    response = await client.post(f"/api/v1/admin/users/{admin['X-User-Id']}/disable", headers=admin)
    assert response.status_code == 409
    assert (await client.get("/api/v1/auth/me", headers=admin)).status_code == 200


@pytest.mark.parametrize("action", ["disable", "enable"])
async def test_an_unknown_user_is_404(app: FastAPI, client: httpx.AsyncClient, action: str) -> None:
    admin = await make_admin(app, await user(client, "admin"))
    response = await client.post(
        f"/api/v1/admin/users/00000000-0000-4000-8000-000000000000/{action}", headers=admin
    )
    assert response.status_code == 404
