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
from coderoom.sessions.errors import (
    InviteGone,
    InviteNotFound,
    OwnerCannotLeave,
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
    data: SessionCreate, db: DbSession, user: CurrentUser, request: Request
) -> SessionRead:
    """Open a coding session; you are its owner."""
    return await service.create(db, owner=user, data=data, languages=known_languages(request))


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
async def get_session(session_id: uuid.UUID, db: DbSession, user: CurrentUser) -> SessionRead:
    """A session you take part in."""
    session, _ = await service.access(db, session_id=session_id, user=user, need="read")
    return await service.render_one(db, session)


@router.patch("/{session_id:uuid}", response_model=SessionRead)
@raises(SessionNotFound, SessionPermissionDenied, VersionConflict)
async def update_session(
    session_id: uuid.UUID, data: SessionUpdate, db: DbSession, user: CurrentUser, request: Request
) -> SessionRead:
    """Edit title, description, language or source (owner, editor). A source change bumps
    `version`; send `base_version` to get 409 instead of overwriting someone's change."""
    return await service.update(
        db, session_id=session_id, user=user, data=data, languages=known_languages(request)
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
