"""Routes that run code: /sandbox/languages, /sandbox/executions, /sessions/{id}/run."""

from __future__ import annotations

import uuid
from typing import Annotated

import structlog
from fastapi import APIRouter, Query, Request, Response, status

from coderoom.auth.deps import (
    CurrentUser,
    ExecutionCaller,
    hide_session_work_from_api_keys,
    refuse_sessions_for_api_keys,
    via_api_key,
)
from coderoom.core.text import Identifier
from coderoom.executions import service
from coderoom.executions.backend import ExecutionBackend
from coderoom.executions.errors import ExecutionNotFound, QueueFull, QueueUnavailable
from coderoom.executions.models import Execution
from coderoom.executions.schemas import (
    TERMINAL,
    ExecutionCreate,
    ExecutionPage,
    ExecutionRead,
    LanguageRead,
    SessionRun,
)
from coderoom.executions.service import ExecutionPolicy
from coderoom.infra.dbdeps import DbSession
from coderoom.infra.queue import QueueError

log = structlog.get_logger(__name__)

router = APIRouter(tags=["executions"])
Wait = Annotated[bool, Query(description="Answer when the run is over (or after the wait cap).")]


def _policy(request: Request) -> ExecutionPolicy:
    policy: ExecutionPolicy = request.app.state.coderoom.executions
    return policy


def _backend(request: Request) -> ExecutionBackend:
    backend: ExecutionBackend = request.app.state.coderoom.backend
    return backend


async def _check_queue(request: Request) -> None:
    """Past the queue's cap, refuse new work (503) rather than build an unbounded backlog."""
    cap = request.app.state.coderoom.settings.queue_max_depth
    try:
        depth = await _backend(request).depth()
    except QueueError:
        raise QueueUnavailable(
            "The execution queue is unreachable; try again shortly.", headers={"Retry-After": "5"}
        ) from None
    if depth >= cap:
        raise QueueFull(
            f"{cap} executions are already waiting; try again shortly.",
            headers={"Retry-After": "5"},
        )


async def _respond(
    request: Request, db: DbSession, execution: Execution, response: Response, wait: bool
) -> ExecutionRead:
    """Commit, enqueue, and answer 202 at once, or 200 when `wait` and the run ends in time."""
    await db.commit()  # a job is only enqueued once its row is committed
    backend = _backend(request)
    try:
        await backend.submit(execution.id, correlation_id=execution.correlation_id)
        if wait:
            seconds = request.app.state.coderoom.settings.execution_wait_seconds
            await backend.wait(execution.id, seconds)
    except QueueError as exc:
        # Accepted and committed: the workers' reconciler queues it once Redis is back.
        log.error("executions.enqueue_failed", execution_id=str(execution.id), error=repr(exc))
    await db.refresh(execution)
    response.headers["Location"] = f"/api/v1/sandbox/executions/{execution.id}"
    response.status_code = status.HTTP_200_OK if execution.status in TERMINAL else 202
    return service.to_read(execution)


@router.get("/sandbox/languages", response_model=list[LanguageRead])
async def list_languages(request: Request) -> list[LanguageRead]:
    """The languages this server runs (no sign-in needed): ids, aliases, versions, and
    each one's default limits and the most a request may ask for."""
    return [service.language_read(language) for language in _policy(request).languages]


@router.post(
    "/sandbox/executions",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExecutionRead,
    responses={200: {"model": ExecutionRead, "description": "Finished (with ?wait=true)."}},
)
async def create_execution(
    data: ExecutionCreate,
    db: DbSession,
    user: ExecutionCaller,
    request: Request,
    response: Response,
    wait: Wait = False,
) -> ExecutionRead:
    """Run a program: `source` (one file) or `files` (the first is the entry point).
    Accepts an API key (without `session_id`)."""
    refuse_sessions_for_api_keys(request, data.session_id)
    await _check_queue(request)
    execution = await service.create(
        db,
        user=user,
        data=data,
        policy=_policy(request),
        correlation_id=request.state.correlation_id,
    )
    return await _respond(request, db, execution, response, wait)


@router.get("/sandbox/executions", response_model=ExecutionPage)
async def list_executions(
    db: DbSession,
    user: ExecutionCaller,
    request: Request,
    session_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[Identifier | None, Query(max_length=200)] = None,
) -> ExecutionPage:
    """Your executions, or a session's, newest first. With an API key: yours outside
    sessions only."""
    refuse_sessions_for_api_keys(request, session_id)
    page = await service.list_visible(
        db, user=user, session_id=session_id, limit=limit, cursor=cursor
    )
    if via_api_key(request):
        page.items = [item for item in page.items if item.session_id is None]
    return page


@router.get("/sandbox/executions/{execution_id}", response_model=ExecutionRead)
async def get_execution(
    execution_id: uuid.UUID, db: DbSession, user: ExecutionCaller, request: Request
) -> ExecutionRead:
    """One execution with its result once it has one."""
    execution = await service.get_visible(db, user=user, execution_id=execution_id)
    hide_session_work_from_api_keys(
        request, execution.session_id, ExecutionNotFound("No such execution.")
    )
    return service.to_read(execution)


@router.post("/sandbox/executions/{execution_id}/cancel", response_model=ExecutionRead)
async def cancel_execution(
    execution_id: uuid.UUID, db: DbSession, user: ExecutionCaller, request: Request
) -> ExecutionRead:
    """Cancel a queued or running execution (a running program is killed); a finished one
    is returned unchanged."""
    execution = await service.get_visible(db, user=user, execution_id=execution_id)
    hide_session_work_from_api_keys(
        request, execution.session_id, ExecutionNotFound("No such execution.")
    )
    if await service.cancel(db, user=user, execution_id=execution_id):
        await db.commit()
        try:
            await _backend(request).cancel(execution_id)
        except QueueError as exc:  # the row says cancelled: a worker will not start it
            log.error("executions.abort_failed", execution_id=str(execution_id), error=repr(exc))
    return service.to_read(await service.get_visible(db, user=user, execution_id=execution_id))


@router.post(
    "/sessions/{session_id}/run",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExecutionRead,
    responses={200: {"model": ExecutionRead, "description": "Finished (with ?wait=true)."}},
)
async def run_session(
    session_id: uuid.UUID,
    data: SessionRun,
    db: DbSession,
    user: CurrentUser,
    request: Request,
    response: Response,
    wait: Wait = False,
) -> ExecutionRead:
    """Run the session's current source (owner, editor)."""
    await _check_queue(request)
    execution = await service.run_session(
        db,
        user=user,
        session_id=session_id,
        data=data,
        policy=_policy(request),
        correlation_id=request.state.correlation_id,
    )
    return await _respond(request, db, execution, response, wait)


@router.get("/sessions/{session_id}/executions", response_model=ExecutionPage)
async def list_session_executions(
    session_id: uuid.UUID,
    db: DbSession,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[Identifier | None, Query(max_length=200)] = None,
) -> ExecutionPage:
    """The session's executions, newest first (participants)."""
    return await service.list_visible(
        db, user=user, session_id=session_id, limit=limit, cursor=cursor
    )
