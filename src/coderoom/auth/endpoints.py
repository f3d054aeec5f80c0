"""Routes under /auth: sign-up, sign-in, token refresh, sign-out, the current user."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from coderoom.auth import service
from coderoom.auth.deps import AuthConfigDep, CurrentUser
from coderoom.auth.errors import RefreshTokenReused
from coderoom.auth.schemas import (
    LoginRequest,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
    UserRead,
)
from coderoom.infra.dbdeps import DbSession

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=TokenPair)
async def register(data: RegisterRequest, db: DbSession, config: AuthConfigDep) -> TokenPair:
    """Create an account and sign in. 409 if the email is taken, 422 for a weak password."""
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
