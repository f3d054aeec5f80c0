"""Request-scoped dependencies shared by every router.

The request owns the transaction: `get_db` commits when the endpoint returns and rolls back
when it raises; services only flush.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from coderoom.api.state import AppState


def get_state(request: Request) -> AppState:
    state = request.app.state.coderoom
    assert isinstance(state, AppState)
    return state


State = Annotated[AppState, Depends(get_state)]


async def get_db(state: State) -> AsyncIterator[AsyncSession]:
    async with state.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


DbSession = Annotated[AsyncSession, Depends(get_db)]
