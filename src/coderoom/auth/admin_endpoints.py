"""Routes under /admin: accounts and sign-up invites (administrators only)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from coderoom.auth import accounts
from coderoom.auth.deps import AuthConfigDep, CurrentAdmin
from coderoom.auth.errors import CannotDisableSelf, InvalidEmail, SignupInviteNotFound, UserNotFound
from coderoom.auth.schemas import (
    SignupInviteCreate,
    SignupInviteCreated,
    SignupInviteRead,
    UserAdminPage,
    UserAdminRead,
)
from coderoom.core.errors import raises
from coderoom.infra.dbdeps import DbSession
from coderoom.infra.params import CursorQuery

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/users", response_model=UserAdminPage)
async def list_users(
    db: DbSession,
    admin: CurrentAdmin,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: CursorQuery = None,
) -> UserAdminPage:
    """Every account, newest first."""
    del admin
    return await accounts.list_users(db, limit=limit, cursor=cursor)


@router.post("/users/{user_id:uuid}/disable", response_model=UserAdminRead)
@raises(UserNotFound, CannotDisableSelf)
async def disable_user(
    user_id: uuid.UUID, db: DbSession, admin: CurrentAdmin, config: AuthConfigDep
) -> UserAdminRead:
    """Disable an account: it cannot sign in, and its tokens and API keys stop working."""
    return await accounts.set_disabled(
        db, config=config, user_id=user_id, disabled=True, actor=admin.id
    )


@router.post("/users/{user_id:uuid}/enable", response_model=UserAdminRead)
@raises(UserNotFound)
async def enable_user(
    user_id: uuid.UUID, db: DbSession, admin: CurrentAdmin, config: AuthConfigDep
) -> UserAdminRead:
    """Enable a disabled account again (it signs in afresh; old logins stay ended)."""
    return await accounts.set_disabled(
        db, config=config, user_id=user_id, disabled=False, actor=admin.id
    )


@router.post("/invites", status_code=status.HTTP_201_CREATED, response_model=SignupInviteCreated)
@raises(InvalidEmail)
async def create_invite(
    db: DbSession, admin: CurrentAdmin, data: SignupInviteCreate | None = None
) -> SignupInviteCreated:
    """A single-use sign-up invite (for REGISTRATION=invite-only). The token is in this
    response only. The body is optional (anyone's invite, for 168 hours)."""
    return await accounts.create_invite(db, data=data or SignupInviteCreate(), actor=admin.id)


@router.get("/invites", response_model=list[SignupInviteRead])
async def list_invites(db: DbSession, admin: CurrentAdmin) -> list[SignupInviteRead]:
    """Every sign-up invite, without its token."""
    del admin
    return await accounts.list_invites(db)


@router.delete("/invites/{invite_id:uuid}", status_code=status.HTTP_204_NO_CONTENT)
@raises(SignupInviteNotFound)
async def revoke_invite(invite_id: uuid.UUID, db: DbSession, admin: CurrentAdmin) -> Response:
    """Revoke a sign-up invite."""
    del admin
    await accounts.revoke_invite(db, invite_id=invite_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
