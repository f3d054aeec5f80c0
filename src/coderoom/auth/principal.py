"""Who is calling, without a database round trip per request: the principal cache.

A valid access token proves who signed in, not that the account is still enabled; an API
key must be looked up to be checked at all. Asking the database on every request costs a
round trip per request (see docs/PERFORMANCE.md, `bench/auth_cache.py`), so verified users
and keys are kept here for `AUTH_CACHE_SECONDS` (default 5 s).

Revocation stays prompt:
- disabling a user or revoking a key clears this cache *after the change commits* (an
  `after_commit` hook registered by the service, `revoke_after_commit`), so the process that
  made the change refuses the next request;
- with Redis, the same hook publishes on `<prefix>:auth:invalidate` and every other process
  clears its cache when the message arrives (milliseconds);
- a message can be lost (Redis down, a subscriber reconnecting, a CLI change against an
  embedded server without Redis): the TTL is the bound, and a subscriber that reconnects
  clears its cache because it may have missed something.

Clearing everything (not one entry) is deliberate: revocations are rare, the cost is one
lookup per active principal afterwards, and there is no key-to-entry bookkeeping to get
wrong. A load that started before a clear never stores its (possibly stale) answer after
it: every entry is written under the epoch read before the database was asked.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from coderoom.auth.models import User
from coderoom.infra.broadcast import Broadcast

log = structlog.get_logger(__name__)

MAX_ENTRIES = 50_000  # bound on memory; past it the cache starts over


@dataclass(frozen=True)
class Principal:
    """A verified, enabled user as the request path needs it (never the password hash)."""

    user_id: uuid.UUID
    email: str
    display_name: str
    is_admin: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> Principal:
        return cls(
            user_id=user.id,
            email=user.email,
            display_name=user.display_name,
            is_admin=user.is_admin,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )

    def to_user(self) -> User:
        """A detached `User` as if loaded earlier in this request: domains keep taking
        `User`, and nothing can lazy-load through it (the hash is deliberately absent)."""
        user = User(
            id=self.user_id,
            email=self.email,
            display_name=self.display_name,
            is_admin=self.is_admin,
            disabled_at=None,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )
        make_transient_to_detached(user)
        return user


@dataclass(frozen=True)
class KeyGrant:
    """A live API key: whose it is and what it may do."""

    key_id: uuid.UUID
    user_id: uuid.UUID
    scope: str
    expires_at: datetime | None


class PrincipalCache:
    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self.clock = clock
        self.epoch = 0
        self._users: dict[uuid.UUID, tuple[float, Principal]] = {}
        self._keys: dict[str, tuple[float, KeyGrant]] = {}

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def _fresh(self, entry: tuple[float, Any] | None) -> Any:
        if entry is None or entry[0] <= self.clock():
            return None
        return entry[1]

    def user(self, user_id: uuid.UUID) -> Principal | None:
        found: Principal | None = self._fresh(self._users.get(user_id))
        return found

    def key(self, key_hash: str) -> KeyGrant | None:
        found: KeyGrant | None = self._fresh(self._keys.get(key_hash))
        return found

    def put_user(self, principal: Principal, *, epoch: int) -> None:
        if self.enabled and epoch == self.epoch:
            self._room()
            self._users[principal.user_id] = (self.clock() + self.ttl, principal)

    def put_key(self, key_hash: str, grant: KeyGrant, *, epoch: int) -> None:
        if self.enabled and epoch == self.epoch:
            self._room()
            self._keys[key_hash] = (self.clock() + self.ttl, grant)

    def _room(self) -> None:
        if len(self._users) + len(self._keys) >= MAX_ENTRIES:
            self._users.clear()
            self._keys.clear()

    def clear(self) -> None:
        self.epoch += 1
        self._users.clear()
        self._keys.clear()


STOP_SECONDS = 2.0


class Revocations:
    """Clears the principal cache here and, through Redis, in every other process."""

    MESSAGE = "clear"

    def __init__(self, cache: PrincipalCache, broadcast: Broadcast | None) -> None:
        self.cache = cache
        self.broadcast = broadcast
        self._listening: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._sending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self.broadcast is not None:
            self._stop = asyncio.Event()
            self._listening = asyncio.create_task(
                self.broadcast.listen(self._received, on_gap=self.cache.clear, stop=self._stop)
            )

    async def stop(self) -> None:
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        if self._listening is not None:
            # The event is seen within a second even if redis-py swallows the cancel; the
            # cancel cuts a subscribe blocked on a Redis that does not answer.
            self._stop.set()
            self._listening.cancel()
            done, _ = await asyncio.wait({self._listening}, timeout=STOP_SECONDS)
            if not done:
                log.warning("auth.revocation_listener_stuck")

    def _received(self, message: str) -> None:
        if message == self.MESSAGE:
            self.cache.clear()

    async def announce(self) -> None:
        """Clear here, and tell the other processes (a CLI calls this after its commit)."""
        self.cache.clear()
        if self.broadcast is not None:
            await self.broadcast.publish(self.MESSAGE)

    def revoke_after_commit(self, db: AsyncSession) -> None:
        """Announce once `db` commits. Before the commit would be too early: a concurrent
        request could read the old row and cache it again under the new epoch."""

        def committed(_session: object) -> None:
            self.cache.clear()
            if self.broadcast is not None:
                task = asyncio.get_running_loop().create_task(self.broadcast.publish(self.MESSAGE))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)

        event.listen(db.sync_session, "after_commit", committed, once=True)
