"""Routes under /auth: sign-up, sign-in, token refresh, sign-out, the current user, API keys."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from coderoom.auth import apikeys, service
from coderoom.auth.deps import AuthConfigDep, CurrentUser
from coderoom.auth.errors import RefreshTokenReused
from coderoom.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    LoginRequest,
    RefreshRequest,
    RegisterRequest,
    RegistrationInfo,
    TokenPair,
    UserRead,
    WebSocketTicket,
)
from coderoom.auth.tickets import TICKET_SECONDS
from coderoom.infra.dbdeps import DbSession

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=TokenPair)
async def register(data: RegisterRequest, db: DbSession, config: AuthConfigDep) -> TokenPair:
    """Create an account and sign in. 409 if the email is taken, 422 for a weak password,
    403 when REGISTRATION does not allow it (closed, or invite-only without a valid invite)."""
    return await service.register(db, config=config, data=data)


@router.post("/login", response_model=TokenPair)
async def login(data: LoginRequest, db: DbSession, config: AuthConfigDep) -> TokenPair:
    """Sign in with email and password; starts a new login (refresh-token family)."""
    return await service.login(db, config=config, data=data)


@router.post("/refresh", response_model=TokenPair)
async def refresh(data: RefreshRequest, db: DbSession, config: AuthConfigDep) -> TokenPair:
    """Trade a refresh token for a new pair. Each refresh token works once; reusing one
    signs that login out everywhere."""
    try:
        return await service.refresh(db, config=config, token=data.refresh_token)
    except RefreshTokenReused:
        await db.commit()  # the revocation must outlive the 401
        raise


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(data: RefreshRequest, db: DbSession) -> Response:
    """Sign out: the refresh token and every token of its login stop working."""
    await service.logout(db, token=data.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=UserRead)
async def me(user: CurrentUser) -> UserRead:
    """The signed-in user."""
    return UserRead.model_validate(user)


@router.post("/ws-tickets", status_code=status.HTTP_201_CREATED, response_model=WebSocketTicket)
async def create_ws_ticket(user: CurrentUser, config: AuthConfigDep) -> WebSocketTicket:
    """A ticket to open one WebSocket as yourself: single-use, valid for 30 seconds.
    Browsers cannot send `Authorization` on a WebSocket; they send this instead."""
    ticket = await config.tickets.issue(user.id)
    return WebSocketTicket(ticket=ticket, expires_in=TICKET_SECONDS)


@router.get("/registration", response_model=RegistrationInfo)
async def registration(config: AuthConfigDep) -> RegistrationInfo:
    """Who may create an account here: open, invite-only or closed (no sign-in needed)."""
    return RegistrationInfo(mode=config.registration.value)


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
async def create_api_key(data: ApiKeyCreate, db: DbSession, user: CurrentUser) -> ApiKeyCreated:
    """A key for a machine client, scoped to the execution routes. The key is in this
    response only; send it as `Authorization: Bearer <key>`."""
    return await apikeys.create(db, user=user, data=data)


@router.get("/api-keys", response_model=list[ApiKeyRead])
async def list_api_keys(db: DbSession, user: CurrentUser) -> list[ApiKeyRead]:
    """Your API keys, without the keys themselves."""
    return await apikeys.list_for(db, user=user)


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(
    key_id: uuid.UUID, db: DbSession, user: CurrentUser, config: AuthConfigDep
) -> Response:
    """Revoke one of your keys; every server process refuses it from then on."""
    await apikeys.revoke(db, config=config, user=user, key_id=key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
