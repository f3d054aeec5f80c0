"""`coderoom users`: create the first admin, disable accounts, list them, invite people.

Works on the database directly, so it needs no running server and no admin account. A
change that must stop a signed-in user (disable, demote) is announced through Redis when
REDIS_URL is set, so running servers drop their cached principals at once; without Redis
they notice within AUTH_CACHE_SECONDS.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from coderoom.auth import accounts
from coderoom.auth.schemas import SignupInviteCreate
from coderoom.auth.service import AuthConfig
from coderoom.config import Settings
from coderoom.core.errors import CoderoomError
from coderoom.infra.broadcast import Broadcast
from coderoom.infra.db import create_engine, create_sessionmaker, session_scope
from coderoom.infra.keys import RedisNames
from coderoom.infra.logging import configure_logging
from coderoom.infra.queue import make_redis
from coderoom.infra.ratelimit import RateLimiter

app = typer.Typer(help="Manage accounts: first admin, disabling, invites.", no_args_is_help=True)

T = TypeVar("T")
Work = Callable[[AsyncSession, AuthConfig], Awaitable[T]]


def _settings() -> Settings:
    from coderoom.cli import load_settings

    settings = load_settings()
    configure_logging("WARNING", settings.resolved_log_format)
    return settings


def _run(settings: Settings, work: Work[T]) -> T:
    """Run `work(db, config)` in one transaction. Revocations the services registered are
    announced after the commit (through Redis when configured) and waited for."""

    async def main() -> T:
        engine = create_engine(settings)
        redis = make_redis(settings.redis_url) if settings.redis_url else None
        names = RedisNames.of(settings)
        limiter = RateLimiter.create(None, names)
        broadcast = Broadcast(redis, names.channel("auth:invalidate")) if redis else None
        config = AuthConfig.from_settings(settings, limiter, broadcast)
        try:
            async with session_scope(create_sessionmaker(engine)) as db:
                return await work(db, config)
        finally:
            await config.revocations.stop()  # the announcement goes out before we exit
            await limiter.close()
            if redis is not None:
                await redis.aclose()
            await engine.dispose()

    try:
        return asyncio.run(main())
    except CoderoomError as exc:
        typer.echo(f"coderoom: {exc.detail}", err=True)
        raise typer.Exit(1) from None


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        typer.echo("coderoom: no terminal to ask for a password: use --password-stdin", err=True)
        raise typer.Exit(2)
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@app.command("create")
def create(
    email: str,
    admin: Annotated[bool, typer.Option("--admin", help="Make the account an admin.")] = False,
    display_name: Annotated[str | None, typer.Option(help="Name shown to others.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create an account (whatever REGISTRATION says); --admin for an administrator."""
    settings = _settings()
    password = _password(password_stdin)

    async def work(db: AsyncSession, config: AuthConfig) -> str:
        user = await accounts.create_user(
            db,
            config=config,
            email=email,
            password=password,
            display_name=display_name,
            admin=admin,
        )
        return str(user.id)

    user_id = _run(settings, work)
    typer.echo(f"created {'admin ' if admin else ''}{email} ({user_id})")


def _set_disabled(email: str, *, disabled: bool) -> None:
    settings = _settings()

    async def work(db: AsyncSession, config: AuthConfig) -> None:
        user = await accounts.find(db, email=email)
        await accounts.set_disabled(db, config=config, user_id=user.id, disabled=disabled)

    _run(settings, work)
    typer.echo(f"{'disabled' if disabled else 'enabled'} {email}")


@app.command("disable")
def disable(email: str) -> None:
    """Disable an account: no sign-in; its tokens and API keys stop working."""
    _set_disabled(email, disabled=True)


@app.command("enable")
def enable(email: str) -> None:
    """Enable a disabled account again."""
    _set_disabled(email, disabled=False)


@app.command("promote")
def promote(
    email: str,
    revoke: Annotated[bool, typer.Option("--revoke", help="Take admin rights away.")] = False,
) -> None:
    """Make an existing account an admin (or, with --revoke, no longer one)."""
    settings = _settings()

    async def work(db: AsyncSession, config: AuthConfig) -> None:
        await accounts.set_admin(db, config=config, email=email, admin=not revoke)

    _run(settings, work)
    typer.echo(f"{email} is {'no longer ' if revoke else ''}an admin")


@app.command("list")
def list_users(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 100,
) -> None:
    """List accounts, newest first: email, role, state, creation date."""
    settings = _settings()

    async def work(db: AsyncSession, config: AuthConfig) -> list[tuple[str, str, str, str]]:
        del config
        page = await accounts.list_users(db, limit=limit, cursor=None)
        return [
            (
                u.email,
                "admin" if u.is_admin else "user",
                "disabled" if u.disabled_at else "active",
                u.created_at.date().isoformat(),
            )
            for u in page.items
        ]

    rows = _run(settings, work)
    width = max((len(r[0]) for r in rows), default=5)
    typer.echo(f"{'email':<{width}}  role   state     created")
    for email, role, state, created in rows:
        typer.echo(f"{email:<{width}}  {role:<5}  {state:<8}  {created}")


@app.command("invite")
def invite(
    email: Annotated[str | None, typer.Option(help="Only this address may use it.")] = None,
    expires_in_hours: Annotated[int, typer.Option(help="Valid this long.")] = 168,
) -> None:
    """A single-use sign-up invite (REGISTRATION=invite-only); prints its token."""
    settings = _settings()

    async def work(db: AsyncSession, config: AuthConfig) -> str:
        del config
        data = SignupInviteCreate(email=email, expires_in_hours=expires_in_hours)
        return (await accounts.create_invite(db, data=data, actor=None)).token

    typer.echo(_run(settings, work))
