"""FastAPI dependencies of the auth domain: the signed-in user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from coderoom.auth import service
from coderoom.auth.errors import InvalidToken
from coderoom.auth.models import User
from coderoom.auth.service import AuthConfig
from coderoom.infra import sentry as monitoring
from coderoom.infra.dbdeps import DbSession

_bearer = HTTPBearer(auto_error=False, description="An access token from /auth/login.")


def get_auth_config(request: Request) -> AuthConfig:
    config = request.app.state.coderoom.auth
    assert isinstance(config, AuthConfig)
    return config


AuthConfigDep = Annotated[AuthConfig, Depends(get_auth_config)]


async def get_current_user(
    request: Request,
    db: DbSession,
    config: AuthConfigDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise InvalidToken("Sign in first: send Authorization: Bearer <access token>.")
    user = await service.authenticate(db, config=config, access_token=credentials.credentials)
    request.state.user_id = str(user.id)  # for the access log
    monitoring.set_user(str(user.id))
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
