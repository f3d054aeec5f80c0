"""Roles on the live connection: viewers read, and role changes reach open connections."""

from __future__ import annotations

import itertools

import pytest
import websockets
from websockets.typing import Subprotocol

from coderoom.core.closecodes import CloseCode
from coderoom.live import protocol
from tests.support.cluster import Api
from tests.support.live import add_member, call, connect, new_session, person
from tests.support.yclient import YClient

pytestmark = pytest.mark.server


async def test_a_viewers_update_is_refused_and_never_reaches_anyone(embedded_api: Api) -> None:
    owner = await person(embedded_api, "owner")
    sid = await new_session(embedded_api, owner, source="safe\n")
    viewer = await add_member(embedded_api, owner, sid, "viewer")
    watching = await connect(embedded_api, owner, sid)
    intruder = await connect(embedded_api, viewer, sid)

    await intruder.insert("main.py", 0, "EVIL ")
    await intruder.wait_for(lambda: bool(intruder.denials))
    # The owner's own later edit arrives; the viewer's, sent before it, never did.
    await watching.insert("main.py", 0, "ok ")
    await intruder.wait_for(lambda: "ok " in intruder.text("main.py"))
    assert "EVIL" not in watching.text("main.py")
    body = await call(embedded_api, "GET", f"/sessions/{sid}", owner)
    assert body["files"]["main.py"] == "ok safe\n"
    await watching.close()
    await intruder.close()


async def test_a_viewers_awareness_is_relayed(embedded_api: Api) -> None:
    owner = await person(embedded_api, "owner")
    sid = await new_session(embedded_api, owner)
    viewer = await add_member(embedded_api, owner, sid, "viewer")
    watching = await connect(embedded_api, owner, sid)
    looking = await connect(embedded_api, viewer, sid)
    await looking.set_awareness(4242, 1, {"user": {"name": "viewer"}, "cursor": 3})
    await watching.wait_for(lambda: watching.awareness.get(4242) is not None)
    assert watching.awareness[4242] == {"user": {"name": "viewer"}, "cursor": 3}
    await looking.close()
    # Leaving removes the state for everyone else.
    await watching.wait_for(lambda: watching.awareness.get(4242, "x") is None)
    await watching.close()


async def _send_until_refused(sender: YClient, peer: YClient) -> int:
    """Send numbered edits until the server says no; return the refused one's number."""
    for number in itertools.count():
        marker = f"<{number}>"
        await sender.insert("main.py", 0, marker)
        await sender.wait_for(lambda m=marker: m in peer.text("main.py") or bool(sender.denials))  # type: ignore[misc]
        if sender.denials:
            return number
    raise AssertionError("unreachable")


async def test_an_editor_made_viewer_is_read_only_on_the_open_connection(
    embedded_api: Api,
) -> None:
    owner = await person(embedded_api, "owner")
    sid = await new_session(embedded_api, owner, source="")
    editor = await add_member(embedded_api, owner, sid, "editor")
    watching = await connect(embedded_api, owner, sid)
    typing = await connect(embedded_api, editor, sid)
    await typing.insert("main.py", 0, "before ")
    await watching.wait_for(lambda: "before" in watching.text("main.py"))

    await call(
        embedded_api,
        "PATCH",
        f"/sessions/{sid}/participants/{editor.id}",
        owner,
        {"role": "viewer"},
    )
    refused = await _send_until_refused(typing, watching)
    body = await call(embedded_api, "GET", f"/sessions/{sid}", owner)
    assert f"<{refused}>" not in body["files"]["main.py"]
    assert typing.close_code is None  # still connected, read-only
    await typing.close()
    await watching.close()


async def test_a_removed_participant_is_disconnected(embedded_api: Api) -> None:
    owner = await person(embedded_api, "owner")
    sid = await new_session(embedded_api, owner)
    editor = await add_member(embedded_api, owner, sid, "editor")
    connection = await connect(embedded_api, editor, sid)
    await call(
        embedded_api, "DELETE", f"/sessions/{sid}/participants/{editor.id}", owner, expect=204
    )
    assert await connection.wait_closed() == CloseCode.FORBIDDEN


async def test_deleting_the_session_disconnects_everyone(embedded_api: Api) -> None:
    owner = await person(embedded_api, "owner")
    sid = await new_session(embedded_api, owner)
    editor = await add_member(embedded_api, owner, sid, "editor")
    clients = [await connect(embedded_api, owner, sid), await connect(embedded_api, editor, sid)]
    await call(embedded_api, "DELETE", f"/sessions/{sid}", owner, expect=204)
    for client in clients:
        assert await client.wait_closed() == CloseCode.GONE


async def test_a_stranger_is_refused_before_the_upgrade(embedded_api: Api) -> None:
    owner = await person(embedded_api, "owner")
    stranger = await person(embedded_api, "stranger")
    sid = await new_session(embedded_api, owner)
    with pytest.raises(Exception, match="404"):
        await connect(embedded_api, stranger, sid)
    with pytest.raises(Exception, match="401"):
        await YClient(
            embedded_api.url.replace("http", "ws") + f"/sessions/{sid}/live", {}
        ).connect()


async def test_a_browser_opens_the_socket_with_a_ticket_subprotocol(embedded_api: Api) -> None:
    owner = await person(embedded_api, "owner")
    sid = await new_session(embedded_api, owner, source="x\n")
    issued = await call(embedded_api, "POST", "/auth/ws-tickets", owner, {}, expect=201)
    offered = f"coderoom.ticket.{issued['ticket']}"
    url = embedded_api.url.replace("http://", "ws://") + f"/sessions/{sid}/live"
    async with websockets.connect(url, subprotocols=[Subprotocol(offered)]) as socket:
        assert socket.subprotocol == offered  # echoed, or a browser would drop the socket
        frame = await socket.recv()
        assert isinstance(frame, bytes)
        first = protocol.parse(frame, from_client=False)
        assert isinstance(first, protocol.SyncStep1)
    # Single use: the same ticket does not open a second socket.
    with pytest.raises(websockets.InvalidStatus, match="401"):
        await websockets.connect(url, subprotocols=[Subprotocol(offered)])
