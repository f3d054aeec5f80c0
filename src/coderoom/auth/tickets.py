"""WebSocket tickets: how a browser proves who it is when it opens a WebSocket.

Browsers cannot set `Authorization` on a WebSocket, and an access token in the URL would end
up in proxy logs and browser history for its whole lifetime. So a signed-in client first asks
`POST /auth/ws-tickets` (with its access token, as for any route) and gets a ticket that:

- works once: redeeming deletes it (`GETDEL` in Redis: atomic, so two connections racing with
  one ticket cannot both win);
- lives `TICKET_SECONDS`: long enough to open a socket, short enough that a copy found later
  in a log is worthless;
- is stored by its SHA-256 only, so a Redis dump yields nothing usable;
- names the user only: whether they may open *this* socket is decided when it is opened,
  with the same checks as the REST route for the same resource.

With Redis (any multi-instance deployment) every instance accepts every ticket; embedded,
the store is this process's memory. API keys do not get tickets: machine clients can send
`Authorization: Bearer <key>` on the upgrade itself.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from coderoom.auth.errors import TicketsUnavailable

TICKET_SECONDS = 30
TICKET_PREFIX = "wst_"
MAX_MEMORY_TICKETS = 100_000


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def new_ticket() -> str:
    return TICKET_PREFIX + secrets.token_urlsafe(32)


def looks_like_ticket(value: str) -> bool:
    return value.startswith(TICKET_PREFIX) and 20 <= len(value) <= 100


class TicketStore(Protocol):
    async def issue(self, user_id: uuid.UUID) -> str:
        """A fresh ticket for `user_id`. Raises TicketsUnavailable."""

    async def redeem(self, ticket: str) -> uuid.UUID | None:
        """The user the ticket was issued to, once; None if unknown, used or expired.
        Raises TicketsUnavailable."""


class MemoryTickets:
    """The embedded store: one process, so one dictionary."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tickets: dict[str, tuple[float, uuid.UUID]] = {}

    async def issue(self, user_id: uuid.UUID) -> str:
        now = self._clock()
        if len(self._tickets) >= MAX_MEMORY_TICKETS:
            self._tickets = {k: v for k, v in self._tickets.items() if v[0] > now}
            if len(self._tickets) >= MAX_MEMORY_TICKETS:
                raise TicketsUnavailable("Too many WebSocket tickets outstanding; retry shortly.")
        ticket = new_ticket()
        self._tickets[_digest(ticket)] = (now + TICKET_SECONDS, user_id)
        return ticket

    async def redeem(self, ticket: str) -> uuid.UUID | None:
        entry = self._tickets.pop(_digest(ticket), None)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]


class RedisTickets:
    """Tickets every instance sharing Redis accepts."""

    def __init__(self, redis: Redis, key_prefix: str) -> None:
        self._redis = redis
        self._prefix = key_prefix

    def _key(self, ticket: str) -> str:
        return f"{self._prefix}:{_digest(ticket)}"

    async def issue(self, user_id: uuid.UUID) -> str:
        ticket = new_ticket()
        try:
            await self._redis.set(self._key(ticket), str(user_id), ex=TICKET_SECONDS)
        except (RedisError, OSError) as exc:
            raise TicketsUnavailable("WebSocket tickets are unavailable; retry shortly.") from exc
        return ticket

    async def redeem(self, ticket: str) -> uuid.UUID | None:
        try:
            value = await self._redis.getdel(self._key(ticket))
        except (RedisError, OSError) as exc:
            raise TicketsUnavailable("WebSocket tickets are unavailable; retry shortly.") from exc
        if value is None:
            return None
        try:
            return uuid.UUID(value.decode() if isinstance(value, bytes) else str(value))
        except ValueError:
            return None
