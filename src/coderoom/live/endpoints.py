"""The live WebSocket: `GET /api/v1/sessions/{id}/live`, the Yjs sync and awareness
protocols as y-websocket speaks them.

y-websocket builds its URL as `serverUrl + '/' + roomname`: use serverUrl
`wss://host/api/v1/sessions` and roomname `<session id>/live`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import structlog
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from coderoom.auth.websocket import authenticate_websocket
from coderoom.core import closecodes
from coderoom.core.closecodes import CloseCode
from coderoom.infra.db import DatabaseUnavailable, session_scope
from coderoom.live.hub import Hub
from coderoom.live.room import CloseConnection, Connection, Room
from coderoom.sessions import service as sessions_service

log = structlog.get_logger(__name__)

router = APIRouter(tags=["live"])

#: How long a closing connection may take to flush what was queued to it.
CLOSE_FLUSH_SECONDS = 2.0


def _hub(websocket: WebSocket) -> Hub:
    hub = websocket.app.state.coderoom.live
    assert isinstance(hub, Hub)
    return hub


@router.websocket("/{session_id}/live")
async def live_session(websocket: WebSocket, session_id: uuid.UUID) -> None:
    """Edit the session's files together (participants; viewers read-only)."""
    state = websocket.app.state.coderoom
    hub = _hub(websocket)
    # Refusals here (401, 404 for strangers and missing sessions) are raised before the
    # accept: the app answers the upgrade with the same problem+json as the REST route.
    caller = await authenticate_websocket(websocket, state.sessionmaker, state.auth)
    async with session_scope(state.sessionmaker) as db:
        session, member = await sessions_service.access(
            db, session_id=session_id, user=caller.user, need="read"
        )
    await websocket.accept(subprotocol=caller.subprotocol)
    refusal = hub.refusal(session_id, caller.user.id)
    if refusal is not None:
        await websocket.close(CloseCode.TOO_MANY, closecodes.close_reason(refusal))
        return

    async def close(code: int, reason: str) -> None:
        with contextlib.suppress(RuntimeError, OSError):
            await websocket.close(code, reason)

    connection = Connection(
        user_id=caller.user.id,
        role=member.role,
        send_frame=websocket.send_bytes,
        close_transport=close,
        limits=hub.limits,
    )
    try:
        room = await hub.attach(session, connection)
    except DatabaseUnavailable:
        await close(CloseCode.TRY_AGAIN_LATER, "the database is unavailable; reconnect")
        return
    pump = asyncio.create_task(connection.pump(), name="live.pump")
    reader = asyncio.create_task(_read(websocket, room, connection), name="live.read")
    try:
        await connection.closed.wait()
    finally:
        reader.cancel()
        await hub.detach(room, connection)
        try:
            await asyncio.wait_for(pump, CLOSE_FLUSH_SECONDS)
        except (TimeoutError, OSError, RuntimeError, WebSocketDisconnect):
            pump.cancel()
            if connection.close_code is not None:
                await close(connection.close_code, connection.close_reason)
        await asyncio.gather(reader, return_exceptions=True)
        if connection.close_code is not None:
            log.info(
                "live.closed",
                session_id=str(session_id),
                code=connection.close_code,
                reason=connection.close_reason,
            )


async def _read(websocket: WebSocket, room: Room, connection: Connection) -> None:
    try:
        while not connection.closed.is_set():
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            frame = message.get("bytes")
            if frame is None:
                connection.close(CloseCode.UNSUPPORTED_DATA, "binary messages only")
                return
            await room.receive(connection, frame)
    except CloseConnection as exc:
        connection.close(exc.code, exc.reason)
        return
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass
    except Exception:
        log.exception("live.failed")
        connection.close(CloseCode.INTERNAL_ERROR, "internal error")
        return
    connection.gone()
