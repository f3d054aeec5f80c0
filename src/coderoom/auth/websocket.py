"""Who is opening a WebSocket (interim: the lead's version on main replaces this file).

The interface is the one the BRIEF fixes: `authenticate_websocket` → `WebSocketCaller`, or
`WebSocketRejected`, which `reject` turns into an HTTP denial of the upgrade. This interim
accepts only `Authorization: Bearer <access token | API key>` (non-browser clients); tickets
and the subprotocol convention arrive with main's version.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi import WebSocket
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from coderoom.auth import apikeys, service
from coderoom.auth.models import User
from coderoom.auth.service import AuthConfig
from coderoom.core.errors import CoderoomError


@dataclass(frozen=True)
class WebSocketCaller:
    user: User
    api_key_id: uuid.UUID | None
    subprotocol: str | None


class WebSocketRejected(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


async def authenticate_websocket(
    websocket: WebSocket, db: AsyncSession, config: AuthConfig, *, allow_api_keys: bool = False
) -> WebSocketCaller:
    header = websocket.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise WebSocketRejected(401, "invalid_token", "Sign in first.")
    token = token.strip()
    try:
        if apikeys.is_api_key(token):
            grant, owner = await apikeys.resolve(db, config=config, key=token)
            if not allow_api_keys:
                raise WebSocketRejected(403, "api_key_not_allowed", "API keys may not do this.")
            return WebSocketCaller(owner.to_user(), grant.key_id, None)
        user = await service.authenticate(db, config=config, access_token=token)
    except CoderoomError as exc:
        raise WebSocketRejected(exc.status_code, exc.code, exc.detail) from None
    return WebSocketCaller(user, None, None)


async def reject(websocket: WebSocket, exc: WebSocketRejected) -> None:
    """Deny the upgrade with an HTTP problem (servers without the denial extension: 403)."""
    body = {"type": "about:blank", "title": exc.code, "status": exc.status, "detail": exc.detail}
    response = JSONResponse(body, status_code=exc.status, media_type="application/problem+json")
    try:
        await websocket.send_denial_response(response)
    except RuntimeError:
        await websocket.close(code=1008)
