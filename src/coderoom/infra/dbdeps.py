"""The request-scoped database session, shared by every domain's endpoints.

The request owns the transaction: the session commits after the endpoint returns and rolls
back when it raises; services only flush. It commits *before* the response is sent, so a
client never sees success for a write that did not stick.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coderoom.core.errors import raises
from coderoom.infra.db import DatabaseUnavailable, session_scope


@raises(DatabaseUnavailable)
async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.coderoom.sessionmaker
    async with session_scope(sessionmaker) as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_db, scope="function")]
