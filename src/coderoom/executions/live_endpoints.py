"""Live routes: a run's events over SSE, a session's runs over SSE, and /attach (WebSocket).

Authorization is checked once, before the stream starts, exactly as for GET of the same
resource; the request's database session is closed before the first event (`DbSession` is
function-scoped), so an open stream holds no database connection. Each live connection
takes one of the user's slots (`ConnectionSlots`), given back when it ends.

SSE framing is sse-starlette's (`EventSourceResponse`: `id:`/`event:`/`data:` lines,
keep-alive comments, client-disconnect handling, graceful shutdown); the events come from
`LiveRuns` (live.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, WebSocket, WebSocketDisconnect
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from coderoom.auth.deps import CurrentUser, ExecutionCaller, hide_session_work_from_api_keys
from coderoom.auth.models import User
from coderoom.auth.websocket import authenticate_websocket
from coderoom.core.closecodes import CloseCode, close_reason
from coderoom.core.errors import raises
from coderoom.executions import repository, service
from coderoom.executions.deps import Executions, ExecutionsContext, Slot
from coderoom.executions.errors import ExecutionNotFound, TooManyStreams
from coderoom.executions.live import (
    EventKind,
    LiveEvent,
    LiveRuns,
    Steer,
    replay,
    valid_event_id,
)
from coderoom.executions.status import TERMINAL
from coderoom.infra.db import session_scope
from coderoom.infra.dbdeps import DbSession
from coderoom.sandbox.control import ALLOWED_SIGNALS
from coderoom.sessions import service as sessions_service
from coderoom.sessions.errors import SessionNotFound

router = APIRouter(tags=["live executions"])

LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        max_length=64,
        description="Resume after this event id (SSE reconnection); anything else is ignored.",
    ),
]
_SSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An SSE stream (`text/event-stream`); see docs/API.md.",
        "content": {"text/event-stream": {}},
    }
}
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def _live(executions: ExecutionsContext) -> LiveRuns:
    assert executions.live is not None, "the lifespan sets it"
    return executions.live


def _after(last_event_id: str | None) -> str | None:
    """The position to resume after; a value that is no event id of ours (a browser only
    sends back ids it was given) is ignored: the stream starts from the beginning."""
    if last_event_id is None or not valid_event_id(last_event_id):
        return None
    return last_event_id


def sse(event: LiveEvent) -> ServerSentEvent:
    return ServerSentEvent(data=event.json, event=event.kind.value, id=event.id, sep="\n")


def stored_events(executions: ExecutionsContext, execution_id: uuid.UUID) -> Any:
    """The `stored` callback of LiveRuns.events: the row's replay once it is over."""

    async def stored() -> list[LiveEvent] | None:
        async with session_scope(executions.sessionmaker) as db:
            execution = await repository.get(db, execution_id)
            if execution is None or execution.status not in TERMINAL:
                return None
            return replay(service.to_read(execution).model_dump(mode="json"))

    return stored


async def _bounded(
    events: AsyncGenerator[ServerSentEvent, None], executions: ExecutionsContext, slot: Slot
) -> AsyncIterator[ServerSentEvent]:
    """End the stream at the connection's maximum time; give the slot back at the end."""
    deadline = asyncio.get_running_loop().time() + executions.streams.max_seconds
    try:
        while True:
            try:
                async with asyncio.timeout_at(deadline):  # around the wait only, not the send
                    event = await anext(events)
            except (StopAsyncIteration, TimeoutError):
                return
            yield event
    finally:
        slot.release()
        await events.aclose()  # now, not when collected: the log's relay stops with it


def _response(
    events: AsyncGenerator[ServerSentEvent, None], executions: ExecutionsContext, slot: Slot
) -> EventSourceResponse:
    return EventSourceResponse(
        _bounded(events, executions, slot),
        headers=SSE_HEADERS,
        sep="\n",  # what line-based tools (grep, read) expect; EventSource takes any
        ping=executions.streams.keepalive_seconds,
        # A reader that takes no data for this long is gone (or hopeless): end it.
        send_timeout=executions.streams.idle_seconds,
        background=BackgroundTask(slot.release),  # also when the body never started
    )


@router.get(
    "/sandbox/executions/{execution_id:uuid}/events",
    response_class=EventSourceResponse,
    responses=_SSE_RESPONSES,
)
@raises(ExecutionNotFound, TooManyStreams)
async def execution_events(
    execution_id: uuid.UUID,
    db: DbSession,
    user: ExecutionCaller,
    executions: Executions,
    request: Request,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """The run's events as Server-Sent Events, from its start (or after `Last-Event-ID`):
    `status`, `compile`, `stdout`, `stderr`, `lagged`, and last `result` (the body of GET
    /sandbox/executions/{id}), then the stream ends. Who may GET it may watch it."""
    execution = await service.get_visible(db, user=user, execution_id=execution_id)
    hide_session_work_from_api_keys(
        request, execution.session_id, ExecutionNotFound("No such execution.")
    )
    after = _after(last_event_id)
    slot = executions.slots.take(user.id)
    live = _live(executions)
    idle = executions.streams.idle_seconds

    async def events() -> AsyncGenerator[ServerSentEvent, None]:
        async for event in live.events(
            execution_id,
            after=after,
            idle=min(idle, 5.0),  # the row is looked at this often when nothing comes
            stored=stored_events(executions, execution_id),
        ):
            yield sse(event)

    return _response(events(), executions, slot)


@router.get(
    "/sessions/{session_id:uuid}/events",
    response_class=EventSourceResponse,
    responses=_SSE_RESPONSES,
)
@raises(SessionNotFound, TooManyStreams)
async def session_events(
    session_id: uuid.UUID,
    db: DbSession,
    user: CurrentUser,
    executions: Executions,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """Every run of the session as it happens, for every participant: the same events as
    /sandbox/executions/{id}/events, each with `execution_id`; `status` events say who
    started the run (`created_by`). From now on, or after `Last-Event-ID` while retained."""
    await sessions_service.access(db, session_id=session_id, user=user, need="read")
    after = _after(last_event_id)
    slot = executions.slots.take(user.id)
    live = _live(executions)
    idle = executions.streams.idle_seconds

    async def events() -> AsyncGenerator[ServerSentEvent, None]:
        async for event in live.session_events(session_id, after=after, idle=idle):
            if event is None:
                return  # idle: the client reconnects with Last-Event-ID when it wants more
            yield sse(event)

    return _response(events(), executions, slot)


# -- /attach: the WebSocket ---------------------------------------------------------------

#: The largest message a client may send (one stdin chunk, JSON-encoded).
MAX_CLIENT_MESSAGE_BYTES = 64 * 1024
SIGNALS = {signal.Signals(s).name: int(s) for s in ALLOWED_SIGNALS}


def ws_message(event: LiveEvent) -> dict[str, Any]:
    """An event as a WebSocket message: chunks carry their text in `data`, the other
    kinds the same object as the SSE `data:` line."""
    chunk = event.kind in (EventKind.COMPILE, EventKind.STDOUT, EventKind.STDERR)
    return {
        "type": event.kind.value,
        "id": event.id,
        "data": event.data["data"] if chunk else event.data,
    }


class _Refused(Exception):
    """A client message that is answered with an `error` message and not applied."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@router.websocket("/sandbox/executions/{execution_id:uuid}/attach")
async def attach_execution(websocket: WebSocket, execution_id: uuid.UUID) -> None:
    """Watch a run and, if you may run it, type into it and signal it (docs/API.md)."""
    state = websocket.app.state.coderoom
    executions: ExecutionsContext = state.executions
    caller = await authenticate_websocket(
        websocket, executions.sessionmaker, state.auth, allow_api_keys=True
    )
    user = caller.user
    async with session_scope(executions.sessionmaker) as db:
        execution = await service.get_visible(db, user=user, execution_id=execution_id)
        if caller.api_key_id is not None and execution.session_id is not None:
            raise ExecutionNotFound("No such execution.")
        writable = await service.may_steer(db, user=user, execution=execution)
        interactive = execution.interactive
    slot = executions.slots.take(user.id)
    try:
        await websocket.accept(subprotocol=caller.subprotocol)
        await _attached(websocket, executions, execution_id, writable, interactive, user)
    finally:
        slot.release()


async def _attached(
    websocket: WebSocket,
    executions: ExecutionsContext,
    execution_id: uuid.UUID,
    writable: bool,
    interactive: bool,
    user: User,
) -> None:
    live = _live(executions)
    activity = asyncio.Event()  # an event sent or a message received: not idle
    await websocket.send_json(
        {
            "type": "attached",
            "execution_id": str(execution_id),
            "interactive": interactive,
            "writable": writable,
        }
    )

    async def pump() -> None:
        async for event in live.events(
            execution_id,
            after=None,
            idle=min(executions.streams.idle_seconds, 5.0),
            stored=stored_events(executions, execution_id),
        ):
            await websocket.send_json(ws_message(event))
            activity.set()

    async def listen() -> None:
        while True:
            text = await websocket.receive_text()
            activity.set()
            try:
                if len(text.encode()) > MAX_CLIENT_MESSAGE_BYTES:
                    raise _Refused(
                        "too_big", f"Messages are at most {MAX_CLIENT_MESSAGE_BYTES} bytes."
                    )
                await _command(executions, live, execution_id, user, text, writable, interactive)
            except _Refused as refused:
                await websocket.send_json(
                    {"type": "error", "code": refused.code, "message": str(refused)}
                )

    async def idle_watch() -> None:
        while True:
            try:
                async with asyncio.timeout(executions.streams.idle_seconds):
                    await activity.wait()
            except TimeoutError:
                return
            activity.clear()

    tasks = {
        asyncio.create_task(pump(), name="pump"),
        asyncio.create_task(listen(), name="listen"),
        asyncio.create_task(idle_watch(), name="idle"),
    }
    code, reason = CloseCode.NORMAL, "the run is over"
    try:
        done, _ = await asyncio.wait(
            tasks, timeout=executions.streams.max_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        if not done:
            code, reason = CloseCode.IDLE_TIMEOUT, "connection time is up; reconnect"
        for task in done:
            if task.get_name() == "idle":
                code, reason = CloseCode.IDLE_TIMEOUT, "idle"
            elif task.get_name() == "listen":
                return  # the client left (or broke the protocol): nothing to close
            elif task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(code=code, reason=close_reason(reason))


async def _command(
    executions: ExecutionsContext,
    live: LiveRuns,
    execution_id: uuid.UUID,
    user: User,
    text: str,
    writable: bool,
    interactive: bool,
) -> None:
    try:
        message = json.loads(text)
    except ValueError:
        raise _Refused("invalid_message", "Send JSON messages.") from None
    kind = message.get("type") if isinstance(message, dict) else None
    if kind not in {"stdin", "eof", "signal", "cancel"}:
        raise _Refused("invalid_message", "type must be stdin, eof, signal or cancel.")
    if not writable:
        raise _Refused("read_only", "You may watch this run but not write to it.")
    if kind == "cancel":
        async with session_scope(executions.sessionmaker) as db:
            await service.cancel(
                db, user=user, execution_id=execution_id, backend=executions.backend, live=live
            )
        return
    if kind == "signal":
        number = SIGNALS.get(str(message.get("signal", "")))
        if number is None:
            raise _Refused("invalid_signal", f"signal must be one of {', '.join(sorted(SIGNALS))}.")
        live.steer(execution_id, Steer.SIGNAL, str(number))
        return
    if not interactive:
        raise _Refused("not_interactive", 'Create the run with "interactive": true to send stdin.')
    if kind == "eof":
        live.steer(execution_id, Steer.EOF)
        return
    data = message.get("data")
    if not isinstance(data, str):
        raise _Refused("invalid_message", "stdin needs data: a string.")
    live.steer(execution_id, Steer.STDIN, data)
