"""Who is opening a WebSocket: the same identities as the REST routes, without headers.

`authenticate_websocket` is called by a WebSocket endpoint *before* it accepts. It takes, in
this order:

1. `Authorization: Bearer <access token | API key>` — non-browser clients can set headers;
2. the subprotocol `coderoom.ticket.<ticket>` in `Sec-WebSocket-Protocol` — what a browser
   can set; the endpoint must accept with `subprotocol=caller.subprotocol` (browsers close a
   socket whose server did not echo one of the offered protocols);
3. `?ticket=<ticket>` — for clients that can set neither (e.g. y-websocket's `params`).

Tickets are single-use and short-lived (auth/tickets.py), so one in a URL is worthless once
the socket is open; the access log never records query strings anyway.

A failure raises the same errors as the REST routes (InvalidToken, InvalidTicket, …). Raised
before `accept`, the app renders them as an HTTP denial of the upgrade (problem+json with
401/403/503), exactly like a refused request; the caller does nothing special.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.websockets import WebSocket

from coderoom.auth import apikeys, service
from coderoom.auth.errors import ApiKeyNotAllowed, InvalidTicket, InvalidToken
from coderoom.auth.models import User
from coderoom.auth.service import AuthConfig
from coderoom.auth.tickets import looks_like_ticket
from coderoom.infra import sentry as monitoring
from coderoom.infra.db import session_scope

TICKET_SUBPROTOCOL = "coderoom.ticket."


@dataclass(frozen=True)
class WebSocketCaller:
    user: User
    api_key_id: uuid.UUID | None = None
    subprotocol: str | None = None  # accept with this (the ticket's subprotocol), or None


def _ticket_subprotocol(websocket: WebSocket) -> str | None:
    for offered in websocket.scope.get("subprotocols", []):
        if isinstance(offered, str) and offered.startswith(TICKET_SUBPROTOCOL):
            return offered
    return None


async def authenticate_websocket(
    websocket: WebSocket,
    sessionmaker: async_sessionmaker[AsyncSession],
    config: AuthConfig,
    *,
    allow_api_keys: bool = False,
) -> WebSocketCaller:
    """The caller of this upgrade, or an AuthenticationError / ApiKeyNotAllowed."""
    scheme, _, credential = websocket.headers.get("authorization", "").partition(" ")
    credential = credential.strip()
    if scheme.lower() == "bearer" and credential:
        return await _from_bearer(websocket, sessionmaker, config, credential, allow_api_keys)

    subprotocol = _ticket_subprotocol(websocket)
    if subprotocol is not None:
        ticket = subprotocol.removeprefix(TICKET_SUBPROTOCOL)
    else:
        ticket = websocket.query_params.get("ticket", "")
    if not ticket:
        raise InvalidToken(
            "Authenticate the WebSocket: get a ticket from POST /auth/ws-tickets and pass it "
            "as the subprotocol 'coderoom.ticket.<ticket>' or as ?ticket=<ticket>."
        )
    user_id = await config.tickets.redeem(ticket) if looks_like_ticket(ticket) else None
    if user_id is None:
        raise InvalidTicket("The ticket is unknown, used or expired; get a new one.")
    async with session_scope(sessionmaker) as db:
        user = (await service.principal(db, config=config, user_id=user_id)).to_user()
    return WebSocketCaller(_identified(websocket, user), subprotocol=subprotocol)


async def _from_bearer(
    websocket: WebSocket,
    sessionmaker: async_sessionmaker[AsyncSession],
    config: AuthConfig,
    credential: str,
    allow_api_keys: bool,
) -> WebSocketCaller:
    async with session_scope(sessionmaker) as db:
        if apikeys.is_api_key(credential):
            grant, owner = await apikeys.resolve(db, config=config, key=credential)
            if not allow_api_keys:
                raise ApiKeyNotAllowed("API keys may not open this WebSocket; sign in instead.")
            websocket.scope.setdefault("state", {})["api_key_id"] = str(grant.key_id)
            return WebSocketCaller(_identified(websocket, owner.to_user()), grant.key_id)
        user = await service.authenticate(db, config=config, access_token=credential)
    return WebSocketCaller(_identified(websocket, user))


def _identified(websocket: WebSocket, user: User) -> User:
    websocket.scope.setdefault("state", {})["user_id"] = str(user.id)  # for the access log
    monitoring.set_user(str(user.id))
    return user
