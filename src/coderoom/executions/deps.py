"""FastAPI dependencies of the executions domain: what its routes need from the process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coderoom.executions.backend import ExecutionBackend
from coderoom.executions.service import ExecutionPolicy
from coderoom.infra.lifecycle import Shutdown
from coderoom.sessions.documents import SessionDocuments


@dataclass(frozen=True)
class ExecutionsContext:
    policy: ExecutionPolicy
    backend: ExecutionBackend
    sessionmaker: async_sessionmaker[AsyncSession]
    wait_seconds: float  # the cap on `?wait=true`
    shutdown: Shutdown
    documents: SessionDocuments  # what a session run executes (live/documents.py)


def get_executions(request: Request) -> ExecutionsContext:
    context = request.app.state.coderoom.executions
    assert isinstance(context, ExecutionsContext)
    return context


Executions = Annotated[ExecutionsContext, Depends(get_executions)]
