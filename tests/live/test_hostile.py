"""Hostile or broken messages close the one connection that sent them; the document and
everyone else carry on. Caps close with their own codes."""

from __future__ import annotations

import pytest
from pycrdt import create_update_message

from coderoom.core.closecodes import CloseCode
from coderoom.live import protocol
from tests.live.conftest import Deployment
from tests.support.cluster import Api
from tests.support.live import call, connect, new_session, person

pytestmark = pytest.mark.server

HOSTILE = {
    "garbage": (b"\xff\xff\xff\xff", CloseCode.POLICY_VIOLATION),
    "truncated sync": (b"\x00\x02\x50abc", CloseCode.POLICY_VIOLATION),
    "undecodable update": (
        create_update_message(b"\x01\x05\x00\x00\x00"),
        CloseCode.POLICY_VIOLATION,
    ),
    "endless number": (b"\x00" + b"\xff" * 20, CloseCode.POLICY_VIOLATION),
    "unknown type": (b"\x07", CloseCode.POLICY_VIOLATION),
    "auth from a client": (protocol.permission_denied("x"), CloseCode.POLICY_VIOLATION),
    "awareness not json": (
        protocol.awareness_message(b"\x01\x01\x01\x03{{{"),
        CloseCode.POLICY_VIOLATION,
    ),
    "awareness not an object": (
        protocol.awareness_message(b"\x01\x01\x01\x02[]"),
        CloseCode.POLICY_VIOLATION,
    ),
    "trailing bytes": (bytes([0, 0, 0]) + b"\x00", CloseCode.POLICY_VIOLATION),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_a_hostile_message_closes_only_its_connection(embedded_api: Api, name: str) -> None:
    frame, code = HOSTILE[name]
    ada = await person(embedded_api, "ada")
    sid = await new_session(embedded_api, ada, source="intact\n")
    honest = await connect(embedded_api, ada, sid)
    other = await connect(embedded_api, ada, sid)
    hostile = await connect(embedded_api, ada, sid)
    await hostile.send(frame)
    assert await hostile.wait_closed() == code
    await honest.insert("main.py", 0, "still ")
    await other.wait_for(lambda: other.text("main.py") == "still intact\n")
    body = await call(embedded_api, "GET", f"/sessions/{sid}", ada)
    assert body["files"] == {"main.py": "still intact\n"}
    await honest.close()
    await other.close()


async def test_a_text_frame_is_refused_as_unsupported(embedded_api: Api) -> None:
    ada = await person(embedded_api, "ada")
    sid = await new_session(embedded_api, ada)
    client = await connect(embedded_api, ada, sid)
    await client.send("hello")
    assert await client.wait_closed() == CloseCode.UNSUPPORTED_DATA


async def test_moving_someone_elses_cursor_is_refused(embedded_api: Api) -> None:
    """Dropped, not relayed; the sender stays connected (stock y-websocket re-sends peers'
    states as a matter of course)."""
    ada = await person(embedded_api, "ada")
    sid = await new_session(embedded_api, ada)
    owner_of_7 = await connect(embedded_api, ada, sid)
    spoofer = await connect(embedded_api, ada, sid)
    watcher = await connect(embedded_api, ada, sid)
    await owner_of_7.set_awareness(7, 1, {"cursor": 1})
    await spoofer.wait_for(lambda: spoofer.awareness.get(7) == {"cursor": 1})
    await watcher.wait_for(lambda: watcher.awareness.get(7) == {"cursor": 1})
    await spoofer.set_awareness(7, 2, {"cursor": 99})
    await spoofer.set_awareness(8, 1, {"marker": True})  # sent after the spoof, so it arrives after
    await watcher.wait_for(lambda: watcher.awareness.get(8) is not None)
    assert watcher.awareness.get(7) == {"cursor": 1}
    assert not spoofer.closed.is_set()
    for client in (owner_of_7, spoofer, watcher):
        await client.close()


# --- caps -------------------------------------------------------------------------------

CAPS = {
    "LIVE_MAX_FILE_BYTES": "2048",
    "LIVE_MAX_DOCUMENT_BYTES": "3072",
    "LIVE_MAX_MESSAGE_BYTES": "8192",
    "LIVE_UPDATES_PER_SECOND": "5",
    "LIVE_UPDATE_BURST": "10",
    "LIVE_MAX_CONNECTIONS_PER_USER": "3",
    "LIVE_MAX_CONNECTIONS_PER_SESSION": "4",
}


@pytest.fixture
def capped(embedded: Deployment) -> Api:
    return embedded.start(**CAPS)


async def test_a_message_over_the_cap_is_refused(capped: Api) -> None:
    ada = await person(capped, "ada")
    sid = await new_session(capped, ada)
    client = await connect(capped, ada, sid)
    await client.send(protocol.awareness_message(b"\x00" * 9000))
    assert await client.wait_closed() == CloseCode.TOO_LARGE


async def test_a_file_over_the_cap_is_refused_and_not_stored(capped: Api) -> None:
    ada = await person(capped, "ada")
    sid = await new_session(capped, ada, source="small\n")
    client = await connect(capped, ada, sid)
    await client.insert("main.py", 0, "x" * 2100)
    assert await client.wait_closed() == CloseCode.TOO_LARGE
    assert "file too large" in client.close_reason
    body = await call(capped, "GET", f"/sessions/{sid}", ada)
    assert body["files"] == {"main.py": "small\n"}


async def test_a_document_over_the_cap_is_refused(capped: Api) -> None:
    ada = await person(capped, "ada")
    sid = await new_session(capped, ada, source="")
    client = await connect(capped, ada, sid)
    for name in ("a.py", "b.py"):
        await client.set_file(name, "y" * 1600)
    assert await client.wait_closed() == CloseCode.TOO_LARGE
    assert "document too large" in client.close_reason
    body = await call(capped, "GET", f"/sessions/{sid}", ada)
    assert set(body["files"]) == {"main.py", "a.py"}


async def test_a_flood_of_updates_is_cut_off(capped: Api) -> None:
    ada = await person(capped, "ada")
    sid = await new_session(capped, ada, source="")
    client = await connect(capped, ada, sid)
    for _ in range(60):
        if client.closed.is_set():
            break
        await client.insert("main.py", 0, "z")
    assert await client.wait_closed() == CloseCode.TOO_MANY


async def test_connections_per_user_and_per_session_are_capped(capped: Api) -> None:
    ada = await person(capped, "ada")
    bob = await person(capped, "bob")
    sid = await new_session(capped, ada)
    invite = await call(
        capped, "POST", f"/sessions/{sid}/invites", ada, {"role": "editor"}, expect=201
    )
    await call(capped, "POST", "/sessions/join", bob, {"token": invite["token"]})
    adas = [await connect(capped, ada, sid) for _ in range(3)]
    fourth = await connect(capped, ada, sid, wait_synced=False)
    assert await fourth.wait_closed() == CloseCode.TOO_MANY
    assert "user" in fourth.close_reason
    bobs = await connect(capped, bob, sid)
    fifth = await connect(capped, bob, sid, wait_synced=False)
    assert await fifth.wait_closed() == CloseCode.TOO_MANY
    assert "session" in fifth.close_reason
    for client in [*adas, bobs]:
        await client.close()
