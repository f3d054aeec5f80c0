"""FastAPI dependencies of the auth domain: who is calling, and what they may do.

- `CurrentUser`: a signed-in user (access token). An API key here is refused with 403:
  keys are for the execution routes only.
- `ExecutionCaller`: a signed-in user, or an API key acting as its owner. The execution
  routes use it, and refuse keys anything that involves a session
  (`refuse_sessions_for_api_keys`, `hide_session_work_from_api_keys`).
- `CurrentAdmin`: a signed-in admin.

None of them asks the database for a principal verified in the last AUTH_CACHE_SECONDS
(auth/principal.py).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from coderoom.auth import apikeys, service
from coderoom.auth.errors import AdminRequired, ApiKeyNotAllowed, InvalidToken
from coderoom.auth.models import User
from coderoom.auth.service import AuthConfig
from coderoom.auth.tokens import AccessClaims
from coderoom.core.errors import CoderoomError, raises
from coderoom.infra import sentry as monitoring
from coderoom.infra.dbdeps import DbSession

_bearer = HTTPBearer(
    auto_error=False,
    description="An access token from /auth/login, or (execution routes only) an API key.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]

OUTSIDE_SCOPE = (
    "API keys may only call the execution routes (/sandbox/executions); "
    "sign in with a password for everything else."
)


def get_auth_config(connection: HTTPConnection) -> AuthConfig:
    """Also usable by WebSocket routes (an HTTPConnection, not a Request)."""
    config = connection.app.state.coderoom.auth
    assert isinstance(config, AuthConfig)
    return config


AuthConfigDep = Annotated[AuthConfig, Depends(get_auth_config)]


def _credential(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise InvalidToken("Sign in first: send Authorization: Bearer <access token>.")
    return credentials.credentials


def _identified(request: Request, user: User, api_key_id: uuid.UUID | None = None) -> User:
    request.state.user_id = str(user.id)  # for the access log
    if api_key_id is not None:
        request.state.api_key_id = str(api_key_id)
    monitoring.set_user(str(user.id))
    return user


async def _signed_in(request: Request, db: DbSession, config: AuthConfig, token: str) -> User:
    # The rate limiter may have verified this very token already (it keys limits by user).
    claims = getattr(request.state, "access_claims", None)
    user = await service.authenticate(
        db,
        config=config,
        access_token=token,
        claims=claims if isinstance(claims, AccessClaims) else None,
    )
    return _identified(request, user)


@raises(InvalidToken, ApiKeyNotAllowed)
async def get_current_user(
    request: Request, db: DbSession, config: AuthConfigDep, credentials: Credentials
) -> User:
    token = _credential(credentials)
    if apikeys.is_api_key(token):
        await apikeys.resolve(db, config=config, key=token)  # an invalid key is a 401
        raise ApiKeyNotAllowed(OUTSIDE_SCOPE)
    return await _signed_in(request, db, config, token)


@raises(InvalidToken)
async def get_execution_caller(
    request: Request, db: DbSession, config: AuthConfigDep, credentials: Credentials
) -> User:
    token = _credential(credentials)
    if apikeys.is_api_key(token):
        grant, owner = await apikeys.resolve(db, config=config, key=token)
        return _identified(request, owner.to_user(), grant.key_id)
    return await _signed_in(request, db, config, token)


@raises(AdminRequired)
async def get_current_admin(user: Annotated[User, Depends(get_current_user)]) -> User:
    if not user.is_admin:
        raise AdminRequired("Only administrators may do this.")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
ExecutionCaller = Annotated[User, Depends(get_execution_caller)]
CurrentAdmin = Annotated[User, Depends(get_current_admin)]


def via_api_key(request: Request) -> bool:
    return getattr(request.state, "api_key_id", None) is not None


def refuse_sessions_for_api_keys(request: Request, session_id: uuid.UUID | None) -> None:
    """A key's scope is executions: it may not name a session."""
    if session_id is not None and via_api_key(request):
        raise ApiKeyNotAllowed("API keys may not act on sessions; leave out session_id.")


def hide_session_work_from_api_keys(
    request: Request, session_id: uuid.UUID | None, not_found: CoderoomError
) -> None:
    """An execution that belongs to a session does not exist as far as a key is concerned."""
    if session_id is not None and via_api_key(request):
        raise not_found
