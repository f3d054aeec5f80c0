"""Running the accounts of a server: list, create, disable, promote, sign-up invites.

Used by the admin API and by `coderoom users`; services flush, the caller commits.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from coderoom.auth import repository
from coderoom.auth.emails import normalize_email
from coderoom.auth.errors import (
    CannotDisableSelf,
    SignupInviteNotFound,
    UserExists,
    UserNotFound,
    WeakPassword,
)
from coderoom.auth.models import SignupInvite, User
from coderoom.auth.passwords import password_problems
from coderoom.auth.schemas import (
    SignupInviteCreate,
    SignupInviteCreated,
    SignupInviteRead,
    UserAdminPage,
    UserAdminRead,
)
from coderoom.auth.service import AuthConfig
from coderoom.core.pagination import Cursor
from coderoom.core.security import hash_token, new_token

log = structlog.get_logger(__name__)


async def list_users(db: AsyncSession, *, limit: int, cursor: str | None) -> UserAdminPage:
    """Every account, newest first."""
    position = Cursor.decode(cursor) if cursor else None
    rows = await repository.page_users(
        db, limit=limit + 1, after=(position.at, position.id) if position else None
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = Cursor(rows[-1].created_at, rows[-1].id).encode() if more else None
    return UserAdminPage(
        items=[UserAdminRead.model_validate(u) for u in rows], next_cursor=next_cursor
    )


async def find(db: AsyncSession, *, email: str) -> User:
    user = await repository.get_user_by_email(db, normalize_email(email))
    if user is None:
        raise UserNotFound("No account has this email.")
    return user


async def set_disabled(
    db: AsyncSession,
    *,
    config: AuthConfig,
    user_id: uuid.UUID,
    disabled: bool,
    actor: uuid.UUID | None = None,
) -> UserAdminRead:
    """Disable (or enable again) an account.

    Disabling signs the account out everywhere: its refresh tokens are revoked, and once
    this commits its access tokens and API keys are refused (the principal cache is cleared
    here and, through Redis, in every process). An admin cannot disable their own account,
    so a server cannot lose its last admin by a slip of the mouse.
    """
    if disabled and actor == user_id:
        raise CannotDisableSelf("You cannot disable your own account.")
    now = datetime.now(UTC)
    if not await repository.set_disabled(db, user_id, disabled_at=now if disabled else None):
        raise UserNotFound("No such user.")
    if disabled:
        await repository.revoke_user_tokens(db, user_id, now=now)
        config.revocations.revoke_after_commit(db)
    user = await repository.get_user(db, user_id)
    assert user is not None
    await db.refresh(user)
    log.info(
        "auth.user_disabled" if disabled else "auth.user_enabled",
        user_id=str(user_id),
        actor=str(actor) if actor else "cli",
    )
    return UserAdminRead.model_validate(user)


async def create_user(
    db: AsyncSession,
    *,
    config: AuthConfig,
    email: str,
    password: str,
    display_name: str | None = None,
    admin: bool = False,
) -> User:
    """An account made by an operator (any REGISTRATION mode)."""
    address = normalize_email(email)
    problems = password_problems(password, email=address)
    if problems:
        raise WeakPassword("The password is too weak: " + "; ".join(problems) + ".")
    if await repository.get_user_by_email(db, address) is not None:
        raise UserExists("An account with this email already exists.")
    user = User(
        email=address,
        password_hash=await config.hasher.hash(password),
        display_name=display_name or address.split("@", 1)[0],
        is_admin=admin,
    )
    db.add(user)
    try:
        await db.flush()
    except IntegrityError:
        raise UserExists("An account with this email already exists.") from None
    log.info("auth.user_created", user_id=str(user.id), admin=admin)
    return user


async def set_admin(db: AsyncSession, *, config: AuthConfig, email: str, admin: bool) -> User:
    user = await find(db, email=email)
    user.is_admin = admin
    await db.flush()
    config.revocations.revoke_after_commit(db)  # a cached principal says what it was
    log.info("auth.admin_changed", user_id=str(user.id), admin=admin)
    return user


def _invite_read(invite: SignupInvite) -> SignupInviteRead:
    return SignupInviteRead(
        id=invite.id,
        email=invite.email,
        created_at=invite.created_at,
        expires_at=invite.expires_at,
        used=invite.used_at is not None,
        revoked=invite.revoked_at is not None,
    )


async def create_invite(
    db: AsyncSession, *, data: SignupInviteCreate, actor: uuid.UUID | None
) -> SignupInviteCreated:
    """A single-use sign-up invite; the token is shown once and stored only as a hash."""
    token = new_token(32)
    now = datetime.now(UTC)
    invite = SignupInvite(
        token_hash=hash_token(token),
        email=normalize_email(data.email) if data.email else None,
        created_by=actor,
        created_at=now,
        expires_at=now + timedelta(hours=data.expires_in_hours) if data.expires_in_hours else None,
    )
    db.add(invite)
    await db.flush()
    return SignupInviteCreated(**_invite_read(invite).model_dump(), token=token)


async def list_invites(db: AsyncSession) -> list[SignupInviteRead]:
    return [_invite_read(i) for i in await repository.signup_invites(db)]


async def revoke_invite(db: AsyncSession, *, invite_id: uuid.UUID) -> None:
    if not await repository.revoke_signup_invite(db, invite_id, now=datetime.now(UTC)):
        raise SignupInviteNotFound("No such invite.")
