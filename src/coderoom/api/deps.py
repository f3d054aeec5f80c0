"""Request-scoped dependencies of the API layer itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from coderoom.api.state import AppState
from coderoom.infra.dbdeps import DbSession, get_db


def get_state(request: Request) -> AppState:
    state = request.app.state.coderoom
    assert isinstance(state, AppState)
    return state


State = Annotated[AppState, Depends(get_state)]

__all__ = ["DbSession", "State", "get_db", "get_state"]
