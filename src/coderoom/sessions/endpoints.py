"""Routes under /sessions: rooms, their invites and participants."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from coderoom.auth.deps import CurrentUser
from coderoom.core.errors import raises
from coderoom.infra.dbdeps import DbSession
from coderoom.infra.origin import PublicUrl
from coderoom.infra.params import CursorQuery
from coderoom.sessions import service
from coderoom.sessions.deps import Documents
from coderoom.sessions.errors import (
    InviteGone,
    InviteNotFound,
    OwnerCannotLeave,
    OwnerRoleFixed,
    ParticipantNotFound,
    SessionNotFound,
    SessionPermissionDenied,
    VersionConflict,
)
from coderoom.sessions.schemas import (
    InviteCreate,
    InviteCreated,
    InviteRead,
    JoinRequest,
    ParticipantRead,
    ParticipantRoleUpdate,
    SessionCreate,
    SessionPage,
    SessionRead,
    SessionUpdate,
)

router = APIRouter(prefix="/sessions", tags=["sessions"])


def known_languages(request: Request) -> list[str]:
    registry = request.app.state.coderoom.languages
    return list(registry.ids())


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SessionRead)
async def create_session(
    data: SessionCreate, db: DbSession, user: CurrentUser, request: Request, documents: Documents
) -> SessionRead:
    """Open a coding session; you are its owner. `source` becomes its entry file."""
    return await service.create(
        db, owner=user, data=data, languages=known_languages(request), documents=documents
    )


@router.get("", response_model=SessionPage)
async def list_sessions(
    db: DbSession,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: CursorQuery = None,
) -> SessionPage:
    """Your sessions (owned or joined), most recently active first."""
    return await service.list_for(db, user=user, limit=limit, cursor=cursor)


@router.post("/join", response_model=SessionRead)
@raises(InviteNotFound, InviteGone)
async def join_session(data: JoinRequest, db: DbSession, user: CurrentUser) -> SessionRead:
    """Join a session with an invite token (idempotent for participants)."""
    return await service.join(db, user=user, token=data.token)


@router.get("/{session_id:uuid}", response_model=SessionRead)
@raises(SessionNotFound, SessionPermissionDenied)
async def get_session(
    session_id: uuid.UUID, db: DbSession, user: CurrentUser, documents: Documents
) -> SessionRead:
    """A session you take part in: its files as the live document holds them now, who is
    connected to it, and when it was last active."""
    session, _ = await service.access(db, session_id=session_id, user=user, need="read")
    return await service.render_one(db, session, documents=documents)


@router.patch("/{session_id:uuid}", response_model=SessionRead)
@raises(SessionNotFound, SessionPermissionDenied, VersionConflict)
async def update_session(
    session_id: uuid.UUID,
    data: SessionUpdate,
    db: DbSession,
    user: CurrentUser,
    request: Request,
    documents: Documents,
) -> SessionRead:
    """Edit title, description, language, source or files (owner, editor). Text is merged
    into the live document as a change of only the ranges that differ (see docs/API.md);
    a text change bumps `version`; `base_version` gets 409 instead of a stale write."""
    return await service.update(
        db,
        session_id=session_id,
        user=user,
        data=data,
        languages=known_languages(request),
        documents=documents,
    )


@router.delete("/{session_id:uuid}", status_code=status.HTTP_204_NO_CONTENT)
@raises(SessionNotFound, SessionPermissionDenied)
async def delete_session(session_id: uuid.UUID, db: DbSession, user: CurrentUser) -> Response:
    """Delete the session (owner). Executions stay readable by their creators."""
    await service.delete(db, session_id=session_id, user=user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{session_id:uuid}/invites", status_code=status.HTTP_201_CREATED, response_model=InviteCreated
)
@raises(SessionNotFound, SessionPermissionDenied)
async def create_invite(
    session_id: uuid.UUID,
    db: DbSession,
    user: CurrentUser,
    origin: PublicUrl,
    data: InviteCreate | None = None,
) -> InviteCreated:
    """Create an invite link (owner). The token and the link are in this response only.
    The body is optional (a viewer invite for 72 hours)."""
    return await service.create_invite(
        db, session_id=session_id, user=user, data=data or InviteCreate(), public_url=origin
    )


@router.get("/{session_id:uuid}/invites", response_model=list[InviteRead])
@raises(SessionNotFound, SessionPermissionDenied)
async def list_invites(session_id: uuid.UUID, db: DbSession, user: CurrentUser) -> list[InviteRead]:
    """The session's invites, without their tokens (owner)."""
    return await service.list_invites(db, session_id=session_id, user=user)


@router.delete(
    "/{session_id:uuid}/invites/{invite_id:uuid}", status_code=status.HTTP_204_NO_CONTENT
)
@raises(SessionNotFound, SessionPermissionDenied, InviteNotFound)
async def revoke_invite(
    session_id: uuid.UUID, invite_id: uuid.UUID, db: DbSession, user: CurrentUser
) -> Response:
    """Revoke an invite (owner); it stops working at once."""
    await service.revoke_invite(db, session_id=session_id, invite_id=invite_id, user=user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/{session_id:uuid}/participants/{user_id:uuid}", status_code=status.HTTP_204_NO_CONTENT
)
@raises(SessionNotFound, SessionPermissionDenied, ParticipantNotFound, OwnerCannotLeave)
async def remove_participant(
    session_id: uuid.UUID, user_id: uuid.UUID, db: DbSession, user: CurrentUser
) -> Response:
    """Remove a participant (owner), or leave (yourself)."""
    await service.remove_participant(db, session_id=session_id, user_id=user_id, user=user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch("/{session_id:uuid}/participants/{user_id:uuid}", response_model=ParticipantRead)
@raises(SessionNotFound, SessionPermissionDenied, ParticipantNotFound, OwnerRoleFixed)
async def set_participant_role(
    session_id: uuid.UUID,
    user_id: uuid.UUID,
    data: ParticipantRoleUpdate,
    db: DbSession,
    user: CurrentUser,
) -> ParticipantRead:
    """Make a participant an editor or a viewer (owner). Their open live connections follow
    within a second."""
    return await service.set_role(db, session_id=session_id, user_id=user_id, user=user, data=data)
