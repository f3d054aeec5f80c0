"""Routes that run code: /sandbox/languages, /sandbox/executions, /sessions/{id}/run.

Accepting a run never commits by hand: the service inserts the row and registers the hand-
over to the backend as after-commit work; the request boundary (`DbSession`) commits and
runs it; only then does the `Accepted` response below go out, waiting for the result first
when asked to.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated

import structlog
from fastapi import APIRouter, Query, Request, status
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from coderoom.auth.deps import (
    CurrentUser,
    ExecutionCaller,
    hide_session_work_from_api_keys,
    refuse_sessions_for_api_keys,
    via_api_key,
)
from coderoom.auth.errors import ApiKeyNotAllowed
from coderoom.core.errors import PermissionDeniedError, ServiceUnavailableError, raises
from coderoom.executions import repository, service
from coderoom.executions.backend import wait_for_end
from coderoom.executions.deps import Executions, ExecutionsContext
from coderoom.executions.errors import (
    ExecutionNotFound,
    ExecutionQuotaExceeded,
    InvalidLimits,
    InvalidProgram,
    QueueFull,
    QueueUnavailable,
    SandboxUnavailable,
    SourceTooLarge,
    UnknownLanguage,
    VersionUnavailable,
)
from coderoom.executions.models import Execution
from coderoom.executions.schemas import (
    ExecutionCreate,
    ExecutionPage,
    ExecutionRead,
    LanguageRead,
    SessionRun,
)
from coderoom.executions.status import TERMINAL
from coderoom.infra.db import session_scope
from coderoom.infra.dbdeps import DbSession
from coderoom.infra.params import CursorQuery
from coderoom.sessions.errors import SessionNotFound, SessionPermissionDenied

log = structlog.get_logger(__name__)

router = APIRouter(tags=["executions"])
Wait = Annotated[bool, Query(description="Answer when the run is over (or after the wait cap).")]
_RUN_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": ExecutionRead, "description": "Finished (with ?wait=true)."},
    202: {
        "model": ExecutionRead,
        "description": "Accepted: not finished yet (always without ?wait=true; with it, when "
        "the wait cap passed or the server is shutting down). Poll `Location`.",
    },
}


#: What accepting any run can answer besides success: the program, the caller's quota, the
#: backend, and the session it runs in.
_ACCEPT_ERRORS = (
    InvalidProgram,
    SourceTooLarge,
    ExecutionQuotaExceeded,
    SandboxUnavailable,
    QueueFull,
    QueueUnavailable,
    SessionNotFound,
    SessionPermissionDenied,
)


class Accepted(Response):
    """The answer to a run request, produced after the request's transaction committed.

    Without `wait`: 202 with the row as inserted. With `wait`: waits for the end of the run,
    at most the wait cap and never past the shutdown's answer time, then 200 with the
    result, or 202 when it is not over (the run is durable; `Location` tells where to look).
    A queue or database that fails during the wait also gives 202: the execution was
    accepted, and an error now would make the client submit it again.
    """

    def __init__(self, execution: Execution, context: ExecutionsContext, *, wait: bool) -> None:
        super().__init__(status_code=status.HTTP_202_ACCEPTED)
        self.read = service.to_read(execution)
        self.context = context
        self.wait = wait

    async def _ended(self) -> bool:
        context = self.context
        waiting = asyncio.ensure_future(
            wait_for_end(context.backend, self.read.id, context.wait_seconds)
        )
        cutoff = asyncio.ensure_future(context.shutdown.answer_time())
        try:
            await asyncio.wait({waiting, cutoff}, return_when=asyncio.FIRST_COMPLETED)
            return waiting.done() and not waiting.cancelled() and waiting.result()
        finally:
            for task in (waiting, cutoff):
                task.cancel()
            await asyncio.gather(waiting, cutoff, return_exceptions=True)

    async def _outcome(self) -> tuple[int, ExecutionRead]:
        if not self.wait:
            return status.HTTP_202_ACCEPTED, self.read
        try:
            if await self._ended():
                async with session_scope(self.context.sessionmaker) as db:
                    execution = await repository.get(db, self.read.id)
                if execution is not None and execution.status in TERMINAL:
                    return status.HTTP_200_OK, service.to_read(execution)
        except ServiceUnavailableError as exc:  # queue or database gone while waiting
            log.warning(
                "executions.wait_interrupted", execution_id=str(self.read.id), error=exc.code
            )
        return status.HTTP_202_ACCEPTED, self.read

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        code, read = await self._outcome()
        response = JSONResponse(
            read.model_dump(mode="json"),
            status_code=code,
            headers={"Location": f"/api/v1/sandbox/executions/{read.id}"},
        )
        await response(scope, receive, send)


@router.get("/sandbox/languages", response_model=list[LanguageRead])
async def list_languages(executions: Executions) -> list[LanguageRead]:
    """The languages this server runs (no sign-in needed): ids, aliases, versions, and
    each one's default limits and the most a request may ask for."""
    return [service.language_read(language) for language in executions.policy.languages]


@router.post(
    "/sandbox/executions",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExecutionRead,
    responses=_RUN_RESPONSES,
)
@raises(
    UnknownLanguage,
    VersionUnavailable,
    InvalidLimits,
    InvalidProgram,
    SourceTooLarge,
    ExecutionQuotaExceeded,
    SandboxUnavailable,
    QueueFull,
    QueueUnavailable,
    ApiKeyNotAllowed,
    SessionNotFound,
    SessionPermissionDenied,
)
async def create_execution(
    data: ExecutionCreate,
    db: DbSession,
    user: ExecutionCaller,
    executions: Executions,
    request: Request,
    wait: Wait = False,
) -> Response:
    """Run a program: `source` (one file) or `files` (the first is the entry point).
    Accepts an API key (without `session_id`)."""
    refuse_sessions_for_api_keys(request, data.session_id)
    execution = await service.create(
        db,
        user=user,
        data=data,
        policy=executions.policy,
        backend=executions.backend,
        correlation_id=request.state.correlation_id,
        live=executions.live,
    )
    return Accepted(execution, executions, wait=wait)


@router.get("/sandbox/executions", response_model=ExecutionPage)
@raises(ApiKeyNotAllowed, SessionNotFound)
async def list_executions(
    db: DbSession,
    user: ExecutionCaller,
    request: Request,
    session_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: CursorQuery = None,
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


@router.get("/sandbox/executions/{execution_id:uuid}", response_model=ExecutionRead)
@raises(ExecutionNotFound)
async def get_execution(
    execution_id: uuid.UUID, db: DbSession, user: ExecutionCaller, request: Request
) -> ExecutionRead:
    """One execution with its result once it has one."""
    execution = await service.get_visible(db, user=user, execution_id=execution_id)
    hide_session_work_from_api_keys(
        request, execution.session_id, ExecutionNotFound("No such execution.")
    )
    return service.to_read(execution)


@router.post("/sandbox/executions/{execution_id:uuid}/cancel", response_model=ExecutionRead)
@raises(ExecutionNotFound, PermissionDeniedError)
async def cancel_execution(
    execution_id: uuid.UUID,
    db: DbSession,
    user: ExecutionCaller,
    executions: Executions,
    request: Request,
) -> ExecutionRead:
    """Cancel a queued or running execution (a running program is killed, and the output it
    printed so far is kept in its result); a finished one is returned unchanged."""
    execution = await service.get_visible(db, user=user, execution_id=execution_id)
    hide_session_work_from_api_keys(
        request, execution.session_id, ExecutionNotFound("No such execution.")
    )
    execution = await service.cancel(
        db, user=user, execution_id=execution_id, backend=executions.backend, live=executions.live
    )
    return service.to_read(execution)


@router.post(
    "/sessions/{session_id:uuid}/run",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExecutionRead,
    responses=_RUN_RESPONSES,
)
@raises(
    SessionNotFound,
    SessionPermissionDenied,
    InvalidProgram,
    SourceTooLarge,
    ExecutionQuotaExceeded,
    SandboxUnavailable,
    QueueFull,
    QueueUnavailable,
)
async def run_session(
    session_id: uuid.UUID,
    db: DbSession,
    user: CurrentUser,
    executions: Executions,
    request: Request,
    wait: Wait = False,
    data: SessionRun | None = None,
) -> Response:
    """Run exactly what the session's live document holds now: all its files, the entry
    file first (owner, editor). The body is optional."""
    execution = await service.run_session(
        db,
        user=user,
        session_id=session_id,
        data=data or SessionRun(),
        policy=executions.policy,
        backend=executions.backend,
        documents=executions.documents,
        correlation_id=request.state.correlation_id,
        live=executions.live,
    )
    return Accepted(execution, executions, wait=wait)


@router.get("/sessions/{session_id:uuid}/executions", response_model=ExecutionPage)
@raises(SessionNotFound)
async def list_session_executions(
    session_id: uuid.UUID,
    db: DbSession,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: CursorQuery = None,
) -> ExecutionPage:
    """The session's executions, newest first (participants)."""
    return await service.list_visible(
        db, user=user, session_id=session_id, limit=limit, cursor=cursor
    )


__all__ = ["Accepted", "router"]
