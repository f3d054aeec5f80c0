"""API keys for machine clients: `Authorization: Bearer crk_…` on the execution routes.

- The key is `crk_` + 43 characters of `secrets.token_urlsafe(32)` (256 random bits). Only its
  SHA-256 is stored: a database leak gives no usable key, and there is nothing to
  brute-force, so a slow hash would buy nothing (the same reasoning as refresh tokens).
- A key is found by the hash of what was presented, through a unique index: how long the
  lookup takes depends on the hash, never on how many characters of a real key were right.
- A key acts as its owner on the execution routes only (its scope), never on sessions,
  accounts, keys or admin routes; it stops working when revoked, when it expires, or when its
  owner is disabled, within the principal cache's bound (auth/principal.py).
- Requests made with a key count against the key's own rate limit (RATE_LIMIT_API_KEY).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from coderoom.auth import repository
from coderoom.auth.errors import ApiKeyNotFound, InvalidToken
from coderoom.auth.models import ApiKey, User
from coderoom.auth.principal import KeyGrant, Principal
from coderoom.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from coderoom.auth.service import AuthConfig, principal
from coderoom.core.security import hash_token, new_token

log = structlog.get_logger(__name__)

KEY_PREFIX = "crk_"
SHOWN_CHARACTERS = 12  # "crk_" and 8 more: enough to tell keys apart, useless to an attacker


def is_api_key(credential: str) -> bool:
    return credential.startswith(KEY_PREFIX)


def _read(key: ApiKey) -> ApiKeyRead:
    return ApiKeyRead(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        scope="executions",
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked=key.revoked_at is not None,
    )


async def create(db: AsyncSession, *, user: User, data: ApiKeyCreate) -> ApiKeyCreated:
    """A new key for `user`; the only time the key itself is shown."""
    secret = KEY_PREFIX + new_token(32)
    now = datetime.now(UTC)
    key = ApiKey(
        user_id=user.id,
        name=data.name,
        prefix=secret[:SHOWN_CHARACTERS],
        key_hash=hash_token(secret),
        scope="executions",
        created_at=now,
        expires_at=now + timedelta(days=data.expires_in_days) if data.expires_in_days else None,
    )
    db.add(key)
    await db.flush()
    log.info("auth.api_key_created", user_id=str(user.id), api_key_id=str(key.id))
    return ApiKeyCreated(**_read(key).model_dump(), key=secret)


async def list_for(db: AsyncSession, *, user: User) -> list[ApiKeyRead]:
    return [_read(key) for key in await repository.api_keys_of(db, user.id)]


async def revoke(db: AsyncSession, *, config: AuthConfig, user: User, key_id: uuid.UUID) -> None:
    """Revoke one of your keys. Every process stops accepting it once this commits."""
    if not await repository.revoke_api_key(db, key_id, user_id=user.id, now=datetime.now(UTC)):
        raise ApiKeyNotFound("No such API key.")
    config.revocations.revoke_after_commit(db)
    log.info("auth.api_key_revoked", user_id=str(user.id), api_key_id=str(key_id))


async def resolve(db: AsyncSession, *, config: AuthConfig, key: str) -> tuple[KeyGrant, Principal]:
    """The live key and its enabled owner, or InvalidToken (the same for every failure)."""
    key_hash = hash_token(key)
    grant = config.cache.key(key_hash)
    now = datetime.now(UTC)
    if grant is None:
        epoch = config.cache.epoch
        found = await repository.live_api_key(db, key_hash, now=now)
        if found is None:
            raise InvalidToken("The API key is invalid, expired or revoked.")
        grant = KeyGrant(
            key_id=found.id, user_id=found.user_id, scope=found.scope, expires_at=found.expires_at
        )
        config.cache.put_key(key_hash, grant, epoch=epoch)
    if grant.expires_at is not None and grant.expires_at <= now:
        raise InvalidToken("The API key is invalid, expired or revoked.")
    try:
        owner = await principal(db, config=config, user_id=grant.user_id)
    except InvalidToken:
        raise InvalidToken("The API key is invalid, expired or revoked.") from None
    return grant, owner


def cached_grant(config: AuthConfig, key: str) -> KeyGrant | None:
    """The key's grant if this process verified it recently (no database, no waiting)."""
    grant = config.cache.key(hash_token(key))
    if grant is None or config.cache.user(grant.user_id) is None:
        return None
    if grant.expires_at is not None and grant.expires_at <= datetime.now(UTC):
        return None
    return grant
