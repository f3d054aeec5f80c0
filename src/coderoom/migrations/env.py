"""Alembic environment: runs migrations over the async engine, one transaction per revision."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from coderoom.config import Settings
from coderoom.migrations import target_metadata

config = context.config
settings: Settings = config.attributes.get("settings") or Settings()


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        transaction_per_migration=True,
        transactional_ddl=True,  # SQLite too: see infra.db, which makes it issue BEGIN
        compare_type=True,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    from coderoom import bootstrap  # the composition root builds (and disposes of) the engine

    async with (
        bootstrap.open_database(settings) as database,
        database.engine.connect() as connection,
    ):
        await connection.run_sync(_run)
        await connection.commit()


if context.is_offline_mode():
    context.configure(
        url=settings.sqlalchemy_url.render_as_string(hide_password=False),
        target_metadata=target_metadata(),
        literal_binds=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
