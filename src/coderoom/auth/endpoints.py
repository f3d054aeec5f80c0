"""Routes under /auth: sign-up, sign-in, token refresh, sign-out, the current user, API keys.

Browsers may keep the refresh token in a cookie instead of JavaScript (`refresh_cookie`):
httpOnly (no script reads it), SameSite=Strict (no other site sends it), Path=/api/v1/auth
(sent to refresh and logout only) and Secure over HTTPS. The web app keeps the short-lived
access token in memory and gets a new one from the cookie after a reload.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status

from coderoom.auth import apikeys, service
from coderoom.auth.deps import AuthConfigDep, CurrentUser
from coderoom.auth.errors import (
    AccountDisabled,
    AccountLocked,
    ApiKeyNotFound,
    EmailAlreadyRegistered,
    InvalidCredentials,
    InvalidEmail,
    InvalidInvite,
    InvalidToken,
    InviteRequired,
    RefreshTokenReused,
    RegistrationClosed,
    WeakPassword,
)
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
from coderoom.core.errors import ServiceUnavailableError, raises
from coderoom.infra.dbdeps import DbSession

router = APIRouter(prefix="/auth", tags=["auth"])

REFRESH_COOKIE = "coderoom_refresh"


def _cookie_path(request: Request) -> str:
    """The path of this router (…/auth), so the cookie goes to refresh and logout only."""
    return request.url.path.rsplit("/", 1)[0]


def _set_refresh_cookie(
    request: Request, response: Response, pair: TokenPair, config: AuthConfigDep
) -> TokenPair:
    """Move the refresh token from the body into the cookie."""
    assert pair.refresh_token is not None
    response.set_cookie(
        REFRESH_COOKIE,
        pair.refresh_token,
        max_age=int(config.tokens.refresh_ttl.total_seconds()),
        path=_cookie_path(request),
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return pair.model_copy(update={"refresh_token": None})


def _clear_refresh_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        REFRESH_COOKIE,
        path=_cookie_path(request),
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=TokenPair)
@raises(
    EmailAlreadyRegistered,
    WeakPassword,
    InvalidEmail,
    RegistrationClosed,
    InviteRequired,
    InvalidInvite,
)
async def register(
    data: RegisterRequest,
    db: DbSession,
    config: AuthConfigDep,
    request: Request,
    response: Response,
) -> TokenPair:
    """Create an account and sign in. 409 if the email is taken, 422 for a weak password,
    403 when REGISTRATION does not allow it (closed, or invite-only without a valid invite)."""
    pair = await service.register(db, config=config, data=data)
    if data.refresh_cookie:
        return _set_refresh_cookie(request, response, pair, config)
    return pair


@router.post("/login", response_model=TokenPair)
@raises(InvalidCredentials, AccountDisabled, AccountLocked, ServiceUnavailableError)
async def login(
    data: LoginRequest,
    db: DbSession,
    config: AuthConfigDep,
    request: Request,
    response: Response,
) -> TokenPair:
    """Sign in with email and password; starts a new login (refresh-token family)."""
    pair = await service.login(db, config=config, data=data)
    if data.refresh_cookie:
        return _set_refresh_cookie(request, response, pair, config)
    return pair


@router.post("/refresh", response_model=TokenPair)
@raises(InvalidToken, RefreshTokenReused)
async def refresh(
    db: DbSession,
    config: AuthConfigDep,
    request: Request,
    response: Response,
    data: RefreshRequest | None = None,
) -> TokenPair:
    """Trade a refresh token for a new pair. Each refresh token works once; reusing one
    signs that login out everywhere. Without `refresh_token` in the body, the refresh
    cookie is used, and the new refresh token replaces it (the body's is then null)."""
    from_body = data.refresh_token if data is not None else None
    token = from_body or request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise InvalidToken("Send a refresh token, or sign in again: there is no refresh cookie.")
    try:
        pair = await service.refresh(db, config=config, token=token)
    except RefreshTokenReused:
        await db.commit()  # the revocation must outlive the 401
        raise
    if from_body is None:
        return _set_refresh_cookie(request, response, pair, config)
    return pair


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(db: DbSession, request: Request, data: RefreshRequest | None = None) -> Response:
    """Sign out: the refresh token (from the body, else the refresh cookie) and every token
    of its login stop working; the cookie is cleared."""
    token = (data.refresh_token if data is not None else None) or request.cookies.get(
        REFRESH_COOKIE
    )
    if token:
        await service.logout(db, token=token)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _clear_refresh_cookie(request, response)
    return response


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


@router.delete("/api-keys/{key_id:uuid}", status_code=status.HTTP_204_NO_CONTENT)
@raises(ApiKeyNotFound)
async def revoke_api_key(
    key_id: uuid.UUID, db: DbSession, user: CurrentUser, config: AuthConfigDep
) -> Response:
    """Revoke one of your keys; every server process refuses it from then on."""
    await apikeys.revoke(db, config=config, user=user, key_id=key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
