"""Executions: accept programs, enforce who may run and see what, and record results.

Accepting one is one INSERT plus after-commit work: the backend is told about the
execution only once its row is committed (`infra.db.after_commit`), so a worker never gets
an id the database does not know, and a rolled-back request enqueues nothing.
"""

from __future__ import annotations

import base64
import signal
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from coderoom.auth.models import User
from coderoom.core.errors import PermissionDeniedError
from coderoom.core.pagination import Cursor
from coderoom.executions import repository
from coderoom.executions.backend import ExecutionBackend, Placement, Submission
from coderoom.executions.errors import (
    ExecutionNotFound,
    ExecutionQuotaExceeded,
    InvalidLimits,
    InvalidProgram,
    SourceTooLarge,
    UnknownLanguage,
    VersionUnavailable,
)
from coderoom.executions.live import LiveRuns
from coderoom.executions.models import Execution
from coderoom.executions.schemas import (
    CompileLimitsIn,
    ExecutionCreate,
    ExecutionPage,
    ExecutionRead,
    LanguageRead,
    LimitsIn,
    SessionRun,
)
from coderoom.executions.status import ExecutionStatus
from coderoom.infra.db import after_commit
from coderoom.sandbox import (
    Language,
    LanguageRegistry,
    Limits,
    LimitsError,
    Program,
    ProgramError,
    ProgramFile,
)
from coderoom.sandbox.languages import LanguageNotFound, VersionNotAvailable
from coderoom.sandbox.policy import CompileLimits
from coderoom.sandbox.result import Result
from coderoom.sessions import service as sessions_service
from coderoom.sessions.documents import SessionDocuments
from coderoom.sessions.errors import SessionNotFound


@dataclass(frozen=True)
class ExecutionPolicy:
    """What the executions services need to know about this deployment."""

    languages: LanguageRegistry
    max_active_per_user: int
    max_source_bytes: int


@dataclass(frozen=True)
class RunSpec:
    """What the sandbox needs to run a stored execution."""

    language: str
    program: Program
    limits: Limits
    compile_limits: CompileLimits | None = None  # None: the engine's defaults
    interactive: bool = False


def _now() -> datetime:
    return datetime.now(UTC)


def _signal_name(number: int | None) -> str | None:
    try:
        return signal.Signals(number).name if number is not None else None
    except ValueError:  # a real-time signal has no name of its own
        return f"SIG{number}"


def to_read(execution: Execution) -> ExecutionRead:
    return ExecutionRead(
        id=execution.id,
        language=execution.language,
        status=execution.status,
        exit_code=execution.exit_code,
        signal=execution.signal,
        signal_name=_signal_name(execution.signal),
        stdout=execution.stdout,
        stderr=execution.stderr,
        compile_output=execution.compile_output,
        stdout_truncated=execution.stdout_truncated,
        stderr_truncated=execution.stderr_truncated,
        wall_time_ms=execution.wall_time_ms,
        cpu_time_ms=execution.cpu_time_ms,
        memory_kb=execution.memory_kb,
        limits=execution.limits,
        compile_limits=execution.compile_limits,
        interactive=execution.interactive,
        message=execution.error,
        session_id=execution.session_id,
        created_by=execution.created_by,
        created_at=execution.created_at,
        started_at=execution.started_at,
        finished_at=execution.finished_at,
    )


def language_read(language: Language) -> LanguageRead:
    """What GET /sandbox/languages says about one language."""
    return LanguageRead(
        id=language.id,
        name=language.name,
        version=language.version,
        aliases=list(language.aliases),
        extensions=list(language.spec.extensions),
        compiled=language.compiled,
        file_name=language.file_name,
        arguments=language.spec.arguments,
        limits=language.limits.as_dict(),
        maxima=language.maxima.as_dict(),
        compile_limits=language.compile_limits.as_dict() if language.compiled else None,
        compile_maxima=language.compile_maxima.as_dict() if language.compiled else None,
        notes=language.spec.notes,
    )


def resolve_language(policy: ExecutionPolicy, name: str, version: str | None = None) -> Language:
    """The language a request names (id or alias), in the version it asks for, or 422."""
    try:
        return policy.languages.resolve(name, version)
    except LanguageNotFound as exc:
        raise UnknownLanguage(
            f"Unknown language {name!r}; known: {', '.join(exc.known)}.",
            errors=[{"field": "body.language", "message": "unknown language", "type": "language"}],
            extra={"known_languages": exc.known},
        ) from None
    except VersionNotAvailable as exc:
        raise VersionUnavailable(
            f"{exc.language} {version} is not available here; available: "
            f"{', '.join(exc.available)}.",
            errors=[{"field": "body.version", "message": "not available", "type": "version"}],
            extra={"available_versions": exc.available},
        ) from None


def _limits_error(exc: LimitsError, field: str) -> InvalidLimits:
    return InvalidLimits(
        "Limits outside what this server allows: "
        + "; ".join(f"{k} {v}" for k, v in exc.fields.items()),
        errors=[
            {"field": f"body.{field}.{name}", "message": message, "type": "limit"}
            for name, message in exc.fields.items()
        ],
    )


def _limits(language: Language, requested: LimitsIn | None) -> Limits:
    """The language's default limits with the caller's, each within the language's maxima."""
    try:
        return language.limits.merged(
            requested.model_dump(exclude_none=True) if requested else None,
            maxima=language.maxima,
        )
    except LimitsError as exc:
        raise _limits_error(exc, "limits") from None


def _compile_limits(language: Language, requested: CompileLimitsIn | None) -> CompileLimits | None:
    if not language.compiled:
        if requested is not None:
            raise InvalidLimits(
                f"{language.name} is not compiled: compile_limits do not apply.",
                errors=[
                    {"field": "body.compile_limits", "message": "not compiled", "type": "limit"}
                ],
            )
        return None
    try:
        return language.compile_limits.merged(
            requested.model_dump(exclude_none=True) if requested else None,
            maxima=language.compile_maxima,
        )
    except LimitsError as exc:
        raise _limits_error(exc, "compile_limits") from None


def _decoded(index: int, name: str, content: str, encoding: str) -> str | bytes:
    if encoding == "utf8":
        return content
    try:
        return base64.b64decode(content, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text (a plain ValueError)
        raise InvalidProgram(
            f"File {name!r} is not valid base64.",
            errors=[
                {
                    "field": f"body.files.{index}.content",
                    "message": "invalid base64",
                    "type": "encoding",
                }
            ],
        ) from None


def _program(
    policy: ExecutionPolicy,
    language: Language,
    files: list[tuple[str, str, str]],
    stdin: str,
    args: list[str],
) -> Program:
    contents = [
        (name, _decoded(i, name, content, encoding))
        for i, (name, content, encoding) in enumerate(files)
    ]
    size = sum(len(c.encode() if isinstance(c, str) else c) for _, c in contents)
    if size > policy.max_source_bytes:
        raise SourceTooLarge(
            f"The program is {size} bytes; the limit is {policy.max_source_bytes} bytes."
        )
    if args and not language.spec.arguments:
        raise InvalidProgram(f"{language.name} programs take no command-line arguments.")
    try:
        return Program(
            files=tuple(ProgramFile(name, content) for name, content in contents),
            stdin=stdin,
            args=tuple(args),
        )
    except ProgramError as exc:
        raise InvalidProgram(str(exc)) from None


async def _admit(
    db: AsyncSession, policy: ExecutionPolicy, backend: ExecutionBackend, user: User
) -> Placement:
    await repository.lock_admissions(db, user.id)
    if await repository.count_active(db, user.id) >= policy.max_active_per_user:
        raise ExecutionQuotaExceeded(
            f"You already have {policy.max_active_per_user} executions queued or running; "
            "wait for one to finish.",
            headers={"Retry-After": "1"},
        )
    return await backend.admit()


async def _accept(
    db: AsyncSession,
    *,
    backend: ExecutionBackend,
    placement: Placement,
    user: User,
    spec: RunSpec,
    files: list[tuple[str, str, str]],
    session_id: uuid.UUID | None,
    correlation_id: str | None,
    live: LiveRuns | None,
) -> Execution:
    """Insert the row (already `running` when the backend starts it at once) and submit it
    to the backend after the commit (telling its watchers it is queued)."""
    now = _now()
    claimed = placement.claimed
    execution = Execution(
        language=spec.language,
        status=ExecutionStatus.RUNNING if claimed else ExecutionStatus.QUEUED,
        # As sent: a base64 file stays base64 text (JSON holds no raw bytes).
        files=[
            {"name": name, "content": content}
            | ({"encoding": encoding} if encoding != "utf8" else {})
            for name, content, encoding in files
        ],
        stdin=spec.program.stdin,
        args=list(spec.program.args),
        limits=spec.limits.as_dict(),
        compile_limits=spec.compile_limits.as_dict() if spec.compile_limits else None,
        interactive=spec.interactive,
        session_id=session_id,
        created_by=user.id,
        correlation_id=correlation_id,
        created_at=now,
        attempts=1 if claimed else 0,
        started_at=now if claimed else None,
    )
    db.add(execution)
    await db.flush()
    submission = Submission(execution.id, correlation_id, placement)
    execution_id, created_by = execution.id, user.id

    async def submit() -> None:
        if live is not None and not claimed:
            live.status(execution_id, session_id=session_id, created_by=created_by, status="queued")
        await backend.submit(submission)

    after_commit(db, submit)
    return execution


async def create(
    db: AsyncSession,
    *,
    user: User,
    data: ExecutionCreate,
    policy: ExecutionPolicy,
    backend: ExecutionBackend,
    correlation_id: str | None = None,
    live: LiveRuns | None = None,
) -> Execution:
    """Accept a program to run; it goes to `backend` once this transaction commits."""
    if data.session_id is not None:
        await sessions_service.access(db, session_id=data.session_id, user=user, need="edit")
    language = resolve_language(policy, data.language, data.version)
    files: list[tuple[str, str, str]] = (
        [(f.name, f.content, f.encoding) for f in data.files]
        if data.files is not None
        else [(language.entry_name(data.source or ""), data.source or "", "utf8")]
    )
    program = _program(policy, language, files, data.stdin, data.args)
    spec = RunSpec(
        language.id,
        program,
        _limits(language, data.limits),
        _compile_limits(language, data.compile_limits),
        interactive=data.interactive,
    )
    placement = await _admit(db, policy, backend, user)
    return await _accept(
        db,
        backend=backend,
        placement=placement,
        user=user,
        spec=spec,
        files=files,
        session_id=data.session_id,
        correlation_id=correlation_id,
        live=live,
    )


async def run_session(
    db: AsyncSession,
    *,
    user: User,
    session_id: uuid.UUID,
    data: SessionRun,
    policy: ExecutionPolicy,
    backend: ExecutionBackend,
    documents: SessionDocuments,
    correlation_id: str | None = None,
    live: LiveRuns | None = None,
) -> Execution:
    """Run exactly what the session's live document holds now: every file, its entry file
    first, in the document's language (owner, editor)."""
    session, _ = await sessions_service.access(db, session_id=session_id, user=user, need="edit")
    state = await documents.read(db, session)
    language = resolve_language(policy, state.language or session.language)
    if state.entry_file not in state.files:
        raise InvalidProgram(f"The session's entry file {state.entry_file!r} does not exist.")
    files = [(name, text, "utf8") for name, text in state.program_files()]
    program = _program(policy, language, files, data.stdin, data.args)
    placement = await _admit(db, policy, backend, user)
    return await _accept(
        db,
        backend=backend,
        placement=placement,
        user=user,
        spec=RunSpec(
            language.id,
            program,
            language.limits,
            language.compile_limits if language.compiled else None,
            interactive=data.interactive,
        ),
        files=files,
        session_id=session_id,
        correlation_id=correlation_id,
        live=live,
    )


async def _may_see(db: AsyncSession, user: User, execution: Execution) -> bool:
    if execution.created_by == user.id:
        return True
    if execution.session_id is None:
        return False
    try:
        await sessions_service.access(db, session_id=execution.session_id, user=user, need="read")
    except SessionNotFound:
        return False
    return True


async def get_visible(db: AsyncSession, *, user: User, execution_id: uuid.UUID) -> Execution:
    """An execution the caller created, or one of a session they take part in."""
    execution = await repository.get(db, execution_id)
    if execution is None or not await _may_see(db, user, execution):
        raise ExecutionNotFound("No such execution.")
    return execution


async def list_visible(
    db: AsyncSession,
    *,
    user: User,
    session_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> ExecutionPage:
    """Newest first: the caller's own executions, or a session's (for its participants)."""
    if session_id is not None:
        await sessions_service.access(db, session_id=session_id, user=user, need="read")
    position = Cursor.decode(cursor) if cursor else None
    rows = await repository.page(
        db,
        created_by=None if session_id is not None else user.id,
        session_id=session_id,
        limit=limit + 1,
        cursor=position,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = Cursor(rows[-1].created_at, rows[-1].id).encode() if more else None
    return ExecutionPage(items=[to_read(r) for r in rows], next_cursor=next_cursor)


async def may_steer(db: AsyncSession, *, user: User, execution: Execution) -> bool:
    """Whether `user` may run it, so cancel it, type into it or signal it: its creator, or
    an owner/editor of its session (a viewer may only watch)."""
    if execution.created_by == user.id:
        return True
    if execution.session_id is None:
        return False
    try:
        await sessions_service.access(db, session_id=execution.session_id, user=user, need="edit")
    except (PermissionDeniedError, SessionNotFound):
        return False
    return True


async def cancel(
    db: AsyncSession,
    *,
    user: User,
    execution_id: uuid.UUID,
    backend: ExecutionBackend,
    live: LiveRuns | None = None,
) -> Execution:
    """Cancel if still queued or running (the backend stops a running program once this
    commits, and its output so far is kept); a finished execution is returned unchanged.
    The creator, or an owner/editor of its session, may cancel."""
    execution = await get_visible(db, user=user, execution_id=execution_id)
    if not await may_steer(db, user=user, execution=execution):
        raise PermissionDeniedError("Only its creator or the session's editors may cancel it.")
    was_queued = execution.status is ExecutionStatus.QUEUED
    if await repository.cancel(db, execution_id, now=_now()):
        await db.refresh(execution)
        final = to_read(execution).model_dump(mode="json")
        session_id = execution.session_id

        async def stop_it() -> None:
            if was_queued and live is not None:  # it never runs: nobody else says it ended
                live.finish(execution_id, session_id=session_id, result=final)
            await backend.cancel(execution_id)

        after_commit(db, stop_it)
    return execution


def _storable(text: str) -> str:
    """Program output as the database can hold it: NUL becomes U+FFFD (PostgreSQL text
    cannot store NUL; everything else is kept exactly)."""
    return text.replace("\x00", "\ufffd")


def result_values(result: Result) -> dict[str, Any]:
    return {
        "status": ExecutionStatus.of(result.status),
        "exit_code": result.exit_code,
        "signal": result.signal,
        "stdout": _storable(result.stdout),
        "stderr": _storable(result.stderr),
        "compile_output": _storable(result.compile_output),
        "stdout_truncated": result.stdout_truncated,
        "stderr_truncated": result.stderr_truncated,
        "wall_time_ms": result.wall_time_ms,
        "cpu_time_ms": result.cpu_time_ms,
        "memory_kb": result.memory_kb,
        "error": _storable(result.message) if result.message else None,
    }


def run_spec(execution: Execution) -> RunSpec:
    program = Program(
        files=tuple(
            ProgramFile(
                f["name"],
                base64.b64decode(f["content"]) if f.get("encoding") == "base64" else f["content"],
            )
            for f in execution.files
        ),
        stdin=execution.stdin,
        args=tuple(execution.args),
    )
    compile_limits = CompileLimits(**execution.compile_limits) if execution.compile_limits else None
    return RunSpec(
        execution.language,
        program,
        Limits(**execution.limits),
        compile_limits,
        interactive=execution.interactive,
    )
