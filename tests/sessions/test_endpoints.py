"""Coding sessions through the API: roles, invites, optimistic concurrency, on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from coderoom.sessions.models import Invite
from tests.support.factories import create_session, invite, join, user

TRICKY_SOURCE = "<script>alert(1)</script>\nif a < b && c > d: print('&amp;')\n"


async def test_create_returns_the_session_with_its_owner(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    session = await create_session(
        client, ada, title="Sorting <b>fun</b>", description="<i>x</i> & y"
    )
    assert session["title"] == "Sorting fun"
    assert session["description"] == "x & y"
    assert session["version"] == 1
    assert session["owner"] == {"id": ada["X-User-Id"], "display_name": "ada"}
    assert [(p["user_id"], p["role"]) for p in session["participants"]] == [
        (ada["X-User-Id"], "owner")
    ]
    assert set(session) >= {"id", "language", "source", "created_at", "updated_at"}


async def test_source_is_stored_byte_for_byte(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    session = await create_session(client, ada, source=TRICKY_SOURCE)
    assert session["source"] == TRICKY_SOURCE
    fetched = await client.get(f"/api/v1/sessions/{session['id']}", headers=ada)
    assert fetched.json()["source"] == TRICKY_SOURCE


async def test_unknown_language_is_a_422_listing_known_ones(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    response = await client.post(
        "/api/v1/sessions", json={"title": "x", "language": "brainfuck"}, headers=ada
    )
    assert response.status_code == 422
    assert "python" in response.json()["known_languages"]


async def test_list_is_mine_newest_activity_first_with_cursor(client: httpx.AsyncClient) -> None:
    ada, bob = await user(client, "ada"), await user(client, "bob")
    ids = [(await create_session(client, ada, title=f"s{i}"))["id"] for i in range(3)]
    await create_session(client, bob, title="not ada's")
    first = (await client.get("/api/v1/sessions?limit=2", headers=ada)).json()
    assert [s["id"] for s in first["items"]] == [ids[2], ids[1]]
    second = (
        await client.get(f"/api/v1/sessions?limit=2&cursor={first['next_cursor']}", headers=ada)
    ).json()
    assert [s["id"] for s in second["items"]] == [ids[0]]
    assert second["next_cursor"] is None
    bad = await client.get("/api/v1/sessions?cursor=garbage!", headers=ada)
    assert bad.status_code == 422


async def test_strangers_get_404_everywhere(client: httpx.AsyncClient) -> None:
    ada, eve = await user(client, "ada"), await user(client, "eve")
    sid = (await create_session(client, ada))["id"]
    attempts = [
        client.get(f"/api/v1/sessions/{sid}", headers=eve),
        client.patch(f"/api/v1/sessions/{sid}", json={"title": "pwned"}, headers=eve),
        client.delete(f"/api/v1/sessions/{sid}", headers=eve),
        client.post(f"/api/v1/sessions/{sid}/invites", json={}, headers=eve),
        client.get(f"/api/v1/sessions/{sid}/invites", headers=eve),
        client.post(f"/api/v1/sessions/{sid}/run", json={}, headers=eve),
        client.get(f"/api/v1/sessions/{sid}/executions", headers=eve),
        client.get(f"/api/v1/sandbox/executions?session_id={sid}", headers=eve),
    ]
    for response in await asyncio.gather(*attempts):
        assert response.status_code == 404, (response.request.url, response.text)
    missing = await client.get("/api/v1/sessions/00000000-0000-4000-8000-000000000000", headers=eve)
    assert (
        missing.json()["detail"]
        == (await client.get(f"/api/v1/sessions/{sid}", headers=eve)).json()["detail"]
    )
    assert (await client.get(f"/api/v1/sessions/{sid}")).status_code == 401


async def test_invites_grant_roles_and_roles_limit_rights(client: httpx.AsyncClient) -> None:
    ada, ed, vic = await user(client, "ada"), await user(client, "ed"), await user(client, "vic")
    sid = (await create_session(client, ada))["id"]
    editor_link = await invite(client, ada, sid, role="editor", label="<b>team</b>")
    assert editor_link["label"] == "team"
    viewer_link = await invite(client, ada, sid, role="viewer")
    joined = await join(client, ed, editor_link["token"])
    assert joined.status_code == 200
    assert (await join(client, vic, viewer_link["token"])).status_code == 200
    roles = {p["user_id"]: p["role"] for p in joined.json()["participants"]}
    assert roles[ed["X-User-Id"]] == "editor"

    assert (
        await client.patch(f"/api/v1/sessions/{sid}", json={"source": "x=1"}, headers=ed)
    ).status_code == 200
    assert (
        await client.patch(f"/api/v1/sessions/{sid}", json={"source": "x=2"}, headers=vic)
    ).status_code == 403
    assert (await client.get(f"/api/v1/sessions/{sid}", headers=vic)).status_code == 200
    assert (
        await client.post(f"/api/v1/sessions/{sid}/run", json={}, headers=vic)
    ).status_code == 403
    assert (
        await client.post(f"/api/v1/sessions/{sid}/invites", json={}, headers=ed)
    ).status_code == 403
    assert (await client.delete(f"/api/v1/sessions/{sid}", headers=ed)).status_code == 403
    listed = (await client.get(f"/api/v1/sessions/{sid}/invites", headers=ada)).json()
    assert {i["id"] for i in listed} == {editor_link["id"], viewer_link["id"]}
    assert all("token" not in i for i in listed)


async def test_join_is_idempotent_and_max_uses_is_enforced(client: httpx.AsyncClient) -> None:
    ada, bob, cy = await user(client, "ada"), await user(client, "bob"), await user(client, "cy")
    sid = (await create_session(client, ada))["id"]
    link = await invite(client, ada, sid, max_uses=1)
    assert (await join(client, bob, link["token"])).status_code == 200
    assert (await join(client, bob, link["token"])).status_code == 200  # no second use spent
    used_up = await join(client, cy, link["token"])
    assert used_up.status_code == 410
    assert (await join(client, cy, "not-a-token")).status_code == 404
    uses = (await client.get(f"/api/v1/sessions/{sid}/invites", headers=ada)).json()[0]["uses"]
    assert uses == 1


async def test_revoked_and_expired_invites_are_gone(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    ada, bob = await user(client, "ada"), await user(client, "bob")
    sid = (await create_session(client, ada))["id"]
    revoked = await invite(client, ada, sid)
    gone = await client.delete(f"/api/v1/sessions/{sid}/invites/{revoked['id']}", headers=ada)
    assert gone.status_code == 204
    assert (await join(client, bob, revoked["token"])).status_code == 410
    expiring = await invite(client, ada, sid, expires_in_hours=1)
    async with app.state.coderoom.sessionmaker() as db:
        await db.execute(
            update(Invite)
            .where(Invite.token_hash != "")
            .where(Invite.id == __import__("uuid").UUID(expiring["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await db.commit()
    assert (await join(client, bob, expiring["token"])).status_code == 410


async def test_stale_base_version_is_a_409_with_the_current_version(
    client: httpx.AsyncClient,
) -> None:
    ada = await user(client, "ada")
    sid = (await create_session(client, ada))["id"]
    first = await client.patch(
        f"/api/v1/sessions/{sid}", json={"source": "a = 1", "base_version": 1}, headers=ada
    )
    assert first.json()["version"] == 2
    stale = await client.patch(
        f"/api/v1/sessions/{sid}", json={"source": "a = 2", "base_version": 1}, headers=ada
    )
    assert stale.status_code == 409
    assert stale.json()["current_version"] == 2
    assert (await client.get(f"/api/v1/sessions/{sid}", headers=ada)).json()["source"] == "a = 1"
    title_only = await client.patch(f"/api/v1/sessions/{sid}", json={"title": "t"}, headers=ada)
    assert title_only.json()["version"] == 2


async def test_concurrent_edits_on_one_version_let_one_win(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    sid = (await create_session(client, ada))["id"]
    results = await asyncio.gather(
        *(
            client.patch(
                f"/api/v1/sessions/{sid}",
                json={"source": f"v = {i}", "base_version": 1},
                headers=ada,
            )
            for i in range(4)
        )
    )
    assert sorted(r.status_code for r in results) == [200, 409, 409, 409]


async def test_participants_leave_or_are_removed_but_the_owner_stays(
    client: httpx.AsyncClient,
) -> None:
    ada, bob, cy = await user(client, "ada"), await user(client, "bob"), await user(client, "cy")
    sid = (await create_session(client, ada))["id"]
    link = await invite(client, ada, sid)
    await join(client, bob, link["token"])
    await join(client, cy, link["token"])
    left = await client.delete(
        f"/api/v1/sessions/{sid}/participants/{bob['X-User-Id']}", headers=bob
    )
    assert left.status_code == 204
    assert (await client.get(f"/api/v1/sessions/{sid}", headers=bob)).status_code == 404
    cy_kicks = await client.delete(
        f"/api/v1/sessions/{sid}/participants/{ada['X-User-Id']}", headers=cy
    )
    assert cy_kicks.status_code == 403
    removed = await client.delete(
        f"/api/v1/sessions/{sid}/participants/{cy['X-User-Id']}", headers=ada
    )
    assert removed.status_code == 204
    owner = await client.delete(
        f"/api/v1/sessions/{sid}/participants/{ada['X-User-Id']}", headers=ada
    )
    assert owner.status_code == 409


async def test_delete_takes_invites_and_participants(client: httpx.AsyncClient) -> None:
    ada, bob = await user(client, "ada"), await user(client, "bob")
    sid = (await create_session(client, ada))["id"]
    link = await invite(client, ada, sid)
    await join(client, bob, link["token"])
    assert (await client.delete(f"/api/v1/sessions/{sid}", headers=ada)).status_code == 204
    assert (await client.get(f"/api/v1/sessions/{sid}", headers=ada)).status_code == 404
    assert (await join(client, bob, link["token"])).status_code == 404
    assert (await client.get("/api/v1/sessions", headers=bob)).json()["items"] == []


async def test_query_strings_are_validated_not_rewritten(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    for query in ("limit=0", "limit=101", "limit=abc", "limit=1.5"):
        response = await client.get(f"/api/v1/sessions?{query}", headers=ada)
        assert response.status_code == 422, query
        assert response.json()["errors"][0]["field"] == "query.limit"
    bad_uuid = await client.get("/api/v1/sandbox/executions?session_id=not-a-uuid", headers=ada)
    assert bad_uuid.status_code == 422
