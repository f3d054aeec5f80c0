"""Accounts and sign-in: register, login, refresh with rotation, logout.

Services flush; the request commits. One exception: revoking a token family after reuse
must survive the 401 that follows, so `refresh` raises `RefreshTokenReused` only after
flushing, and the endpoint commits before re-raising.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from coderoom.auth import repository
from coderoom.auth.emails import fold, normalize_email
from coderoom.auth.errors import (
    AccountDisabled,
    AccountLocked,
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
from coderoom.auth.models import RefreshToken, User
from coderoom.auth.passwords import PasswordHasher, password_problems
from coderoom.auth.principal import Principal, PrincipalCache, Revocations
from coderoom.auth.schemas import LoginRequest, RegisterRequest, TokenPair, UserRead
from coderoom.auth.tickets import MemoryTickets, TicketStore
from coderoom.auth.tokens import AccessClaims, TokenCodec, hash_token, new_refresh_token
from coderoom.config import Registration, Settings
from coderoom.core.errors import ServiceUnavailableError
from coderoom.infra import metrics
from coderoom.infra.broadcast import Broadcast
from coderoom.infra.ratelimit import Quota, RateLimiter, RateLimiterUnavailable

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class AuthConfig:
    """What the auth services need besides the database, built once at start-up."""

    hasher: PasswordHasher
    tokens: TokenCodec
    limiter: RateLimiter
    login_failures: Quota
    fail_closed: bool
    cache: PrincipalCache
    revocations: Revocations
    tickets: TicketStore
    registration: Registration = Registration.OPEN

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        limiter: RateLimiter,
        broadcast: Broadcast | None = None,
        tickets: TicketStore | None = None,
    ) -> AuthConfig:
        """`tickets`: shared WebSocket tickets (Redis); this process's memory by default."""
        cache = PrincipalCache(settings.auth_cache_seconds)
        return cls(
            hasher=PasswordHasher(
                memory_kib=settings.argon2_memory_kib,
                time_cost=settings.argon2_time_cost,
                parallelism=settings.argon2_parallelism,
            ),
            tokens=TokenCodec(
                secret=settings.jwt_secret,
                algorithm=settings.jwt_algorithm,
                access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
                refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
            ),
            limiter=limiter,
            login_failures=Quota.parse("login_failures", settings.login_failure_limit),
            fail_closed=settings.rate_limit_fail_closed,
            cache=cache,
            revocations=Revocations(cache, broadcast),
            tickets=tickets or MemoryTickets(),
            registration=settings.registration,
        )


async def _end_read(db: AsyncSession) -> None:
    """End the read-only transaction before slow CPU work (password hashing).

    Nothing has been written yet, so this loses nothing; it keeps a database connection
    (and, on SQLite, the single write lock) from being held for the tens of milliseconds a
    hash takes. Documented exception to "services only flush".
    """
    await db.rollback()


def _account_key(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()


async def _issue(
    db: AsyncSession, config: AuthConfig, user: User, family_id: uuid.UUID
) -> TokenPair:
    now = datetime.now(UTC)
    refresh = new_refresh_token()
    db.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=hash_token(refresh),
            created_at=now,
            expires_at=now + config.tokens.refresh_ttl,
        )
    )
    await db.flush()
    return TokenPair(
        user=UserRead.model_validate(user),
        access_token=config.tokens.issue_access(user.id, now=now),
        refresh_token=refresh,
        expires_in=config.tokens.access_ttl_seconds,
    )


async def _admit(
    db: AsyncSession, config: AuthConfig, email: str, invite: str | None
) -> str | None:
    """Whether REGISTRATION lets this sign-up through; the invite's hash when one is spent.

    Checked before anything about the email is looked up, so nobody without the right to
    register learns which addresses have accounts.
    """
    if config.registration is Registration.CLOSED:
        raise RegistrationClosed("This server does not accept new accounts.")
    if config.registration is Registration.OPEN:
        return None
    if invite is None:
        raise InviteRequired("Creating an account on this server needs an invite.")
    token_hash = hash_token(invite)
    now = datetime.now(UTC)
    if await repository.live_signup_invite(db, token_hash, email=email, now=now) is None:
        raise InvalidInvite("This invite is unknown, used, revoked, expired or for someone else.")
    return token_hash


async def register(db: AsyncSession, *, config: AuthConfig, data: RegisterRequest) -> TokenPair:
    """Create an account and sign it in (REGISTRATION decides who may)."""
    email = normalize_email(data.email)
    invite_hash = await _admit(db, config, email, data.invite)
    problems = password_problems(data.password, email=email)
    if problems:
        raise WeakPassword(
            "The password is too weak: " + "; ".join(problems) + ".",
            errors=[
                {"field": "body.password", "message": p, "type": "weak_password"} for p in problems
            ],
        )
    if await repository.get_user_by_email(db, email) is not None:
        raise EmailAlreadyRegistered("An account with this email already exists.")
    await _end_read(db)
    password_hash = await config.hasher.hash(data.password)
    user = User(
        email=email,
        password_hash=password_hash,
        display_name=data.display_name or email.split("@", 1)[0],
    )
    db.add(user)
    try:
        await db.flush()
    except IntegrityError:  # a concurrent registration won the race for this email
        raise EmailAlreadyRegistered("An account with this email already exists.") from None
    if invite_hash is not None and not await repository.consume_signup_invite(
        db, invite_hash, email=email, user_id=user.id, now=datetime.now(UTC)
    ):  # another sign-up spent it while we hashed; the request rolls back the account
        raise InvalidInvite("This invite is unknown, used, revoked, expired or for someone else.")
    log.info("auth.registered", user_id=str(user.id))
    return await _issue(db, config, user, uuid.uuid4())


async def _check_account_lock(config: AuthConfig, key: str) -> None:
    try:
        refusal = await config.limiter.exhausted(config.login_failures, key)
    except RateLimiterUnavailable as exc:
        log.error("auth.lock_check_unavailable", error=str(exc))
        if config.fail_closed:
            raise ServiceUnavailableError("Sign-in is temporarily unavailable.") from None
        return
    if refusal is not None:
        raise AccountLocked(
            "Too many failed sign-ins for this account; try again later.",
            headers={"Retry-After": str(refusal.reset_after)},
        )


async def _record_failure(config: AuthConfig, key: str) -> None:
    try:
        await config.limiter.hit(config.login_failures, key)
    except RateLimiterUnavailable as exc:
        log.error("auth.lock_record_unavailable", error=str(exc))


async def login(db: AsyncSession, *, config: AuthConfig, data: LoginRequest) -> TokenPair:
    """Check the password and start a new login (a new refresh-token family).

    Unknown email and wrong password give the same error after the same work (a dummy hash
    is verified for unknown emails). Failed attempts count per account, whatever the IP;
    past the limit the account refuses sign-ins until the window passes. A successful
    sign-in does not clear that count: it only ages out.
    """
    try:
        email = normalize_email(data.email)
    except InvalidEmail:
        email = fold(data.email.strip())
    key = _account_key(email)
    await _check_account_lock(config, key)
    found = await repository.get_user_by_email(db, email)
    stored = (found.id, found.password_hash) if found is not None else None
    disabled = found is not None and found.disabled_at is not None
    await _end_read(db)
    if stored is None:
        await config.hasher.verify_dummy(data.password)
        await _record_failure(config, key)
        raise InvalidCredentials("Email or password is incorrect.")
    user_id, password_hash = stored
    if not await config.hasher.verify(password_hash, data.password):
        await _record_failure(config, key)
        raise InvalidCredentials("Email or password is incorrect.")
    if disabled:
        raise AccountDisabled("This account has been disabled by an administrator.")
    new_hash = None
    if config.hasher.needs_rehash(password_hash):
        new_hash = await config.hasher.hash(data.password)
    user = await repository.get_user(db, user_id)
    if user is None:  # deleted while we were hashing
        raise InvalidCredentials("Email or password is incorrect.")
    if new_hash is not None:
        user.password_hash = new_hash
        log.info("auth.password_rehashed", user_id=str(user.id))
    log.info("auth.logged_in", user_id=str(user.id))
    return await _issue(db, config, user, uuid.uuid4())


async def refresh(db: AsyncSession, *, config: AuthConfig, token: str) -> TokenPair:
    """Trade a refresh token for a new pair. Each token works once.

    Presenting a token that was already used means it was copied: the whole family (every
    token of that login) is revoked and RefreshTokenReused raised.
    """
    now = datetime.now(UTC)
    token_hash = hash_token(token)
    claimed = await repository.claim_refresh_token(db, token_hash, now=now)
    if claimed is not None:
        user_id, family_id = claimed
        user = await repository.get_user(db, user_id)
        if user is None or user.disabled_at is not None:
            raise InvalidToken("The refresh token is invalid.")
        return await _issue(db, config, user, family_id)
    existing = await repository.get_refresh_token(db, token_hash)
    if existing is not None and existing.used_at is not None and existing.revoked_at is None:
        await repository.revoke_family(db, existing.family_id, now=now)
        await db.flush()
        log.warning("auth.refresh_token_reused", user_id=str(existing.user_id))
        raise RefreshTokenReused(
            "This refresh token was already used; the session has been signed out everywhere."
        )
    raise InvalidToken("The refresh token is invalid, expired or revoked.")


async def logout(db: AsyncSession, *, token: str) -> None:
    """Revoke the token's whole family. Unknown tokens are ignored (nothing to reveal)."""
    existing = await repository.get_refresh_token(db, hash_token(token))
    if existing is not None:
        await repository.revoke_family(db, existing.family_id, now=datetime.now(UTC))
        await db.flush()


async def get_users(db: AsyncSession, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, User]:
    """Users by id, for other domains that show names."""
    return await repository.get_users(db, user_ids)


async def principal(db: AsyncSession, *, config: AuthConfig, user_id: uuid.UUID) -> Principal:
    """The enabled user with this id: from the cache, else from the database (then cached).

    Disabled and deleted users are never cached, so they cost a lookup each time; only a
    correctly signed token or a real key gets this far.
    """
    cached = config.cache.user(user_id)
    if cached is not None:
        metrics.AUTH_CACHE.labels(result="hit").inc()
        return cached
    metrics.AUTH_CACHE.labels(result="miss").inc()
    epoch = config.cache.epoch
    user = await repository.get_user(db, user_id)
    if user is None or user.disabled_at is not None:
        raise InvalidToken("The access token is invalid.")
    found = Principal.of(user)
    config.cache.put_user(found, epoch=epoch)
    return found


async def authenticate(
    db: AsyncSession, *, config: AuthConfig, access_token: str, claims: AccessClaims | None = None
) -> User:
    """The user an access token belongs to, or InvalidToken (bad, expired, disabled user).

    `claims`: the token already decoded earlier in this request (by the rate limiter).
    """
    claims = claims or config.tokens.decode_access(access_token)
    return (await principal(db, config=config, user_id=claims.user_id)).to_user()
