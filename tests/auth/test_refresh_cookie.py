"""The browser's refresh cookie: httpOnly, SameSite=Strict, scoped to /api/v1/auth, rotated."""

from __future__ import annotations

import httpx

from tests.support.factories import PASSWORD, unique_email

AUTH = "/api/v1/auth"


async def _signed_up(client: httpx.AsyncClient) -> tuple[str, httpx.Response]:
    email = unique_email()
    response = await client.post(
        f"{AUTH}/register",
        json={"email": email, "password": PASSWORD, "refresh_cookie": True},
    )
    assert response.status_code == 201
    return email, response


def _cookie_header(response: httpx.Response) -> str:
    [header] = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    return header


async def test_refresh_cookie_is_http_only_strict_and_scoped_to_auth(
    client: httpx.AsyncClient,
) -> None:
    _, response = await _signed_up(client)
    assert response.json()["refresh_token"] is None  # never readable by script
    header = _cookie_header(response).lower()
    assert header.startswith("coderoom_refresh=")
    assert "httponly" in header
    assert "samesite=strict" in header
    assert "path=/api/v1/auth" in header
    assert "secure" not in header  # plain http here; https adds Secure


async def test_refresh_cookie_is_secure_over_https(app: object) -> None:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as https:
        _, response = await _signed_up(https)
    assert "; secure" in _cookie_header(response).lower()


async def test_reload_refreshes_from_the_cookie_and_rotates_it(client: httpx.AsyncClient) -> None:
    _, signed_up = await _signed_up(client)
    first = client.cookies.get("coderoom_refresh")
    assert first

    refreshed = await client.post(f"{AUTH}/refresh", json={})
    assert refreshed.status_code == 200
    assert refreshed.json()["refresh_token"] is None
    second = client.cookies.get("coderoom_refresh")
    assert second
    assert second != first
    me = await client.get(
        f"{AUTH}/me", headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    )
    assert me.json()["id"] == signed_up.json()["user"]["id"]

    # The old cookie value is a used refresh token: replaying it revokes the login.
    client.cookies.set("coderoom_refresh", first, path="/api/v1/auth")
    replayed = await client.post(f"{AUTH}/refresh", json={})
    assert replayed.status_code == 401
    assert replayed.json()["code"] == "refresh_token_reused"


async def test_login_with_cookie_and_logout_clears_and_revokes_it(
    client: httpx.AsyncClient,
) -> None:
    email, _ = await _signed_up(client)
    client.cookies.clear()
    login = await client.post(
        f"{AUTH}/login", json={"email": email, "password": PASSWORD, "refresh_cookie": True}
    )
    assert login.status_code == 200
    token = client.cookies.get("coderoom_refresh")
    assert token

    logout = await client.post(f"{AUTH}/logout", json={})
    assert logout.status_code == 204
    assert 'coderoom_refresh=""' in _cookie_header(logout) or "max-age=0" in (
        _cookie_header(logout).lower()
    )
    assert client.cookies.get("coderoom_refresh") is None
    revoked = await client.post(f"{AUTH}/refresh", json={"refresh_token": token})
    assert revoked.status_code == 401


async def test_refresh_without_token_or_cookie_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{AUTH}/refresh", json={})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


async def test_body_clients_still_get_the_refresh_token_in_the_body(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        f"{AUTH}/register", json={"email": unique_email(), "password": PASSWORD}
    )
    assert response.json()["refresh_token"]
    assert "set-cookie" not in response.headers
