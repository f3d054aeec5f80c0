"""FastAPI dependencies of the executions domain: what its routes need from the process."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coderoom.executions.backend import ExecutionBackend
from coderoom.executions.errors import TooManyStreams
from coderoom.executions.live import LiveRuns
from coderoom.executions.service import ExecutionPolicy
from coderoom.infra.lifecycle import Shutdown
from coderoom.sessions.documents import SessionDocuments


@dataclass(frozen=True)
class StreamPolicy:
    """Limits of live connections (SSE and WebSocket); see Settings.stream_*."""

    idle_seconds: float = 300.0
    max_seconds: float = 3600.0
    keepalive_seconds: float = 15.0
    max_per_user: int = 16


@dataclass
class ConnectionSlots:
    """Live connections held per user in this process, capped."""

    cap: int
    held: Counter[uuid.UUID] = field(default_factory=Counter)

    def take(self, user_id: uuid.UUID) -> Slot:
        if self.held[user_id] >= self.cap:
            raise TooManyStreams(
                f"You already have {self.cap} live connections open; close one first.",
                headers={"Retry-After": "5"},
            )
        self.held[user_id] += 1
        return Slot(self, user_id)


@dataclass
class Slot:
    slots: ConnectionSlots
    user_id: uuid.UUID
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.slots.held[self.user_id] -= 1
            if self.slots.held[self.user_id] <= 0:
                del self.slots.held[self.user_id]


@dataclass(frozen=True)
class ExecutionsContext:
    policy: ExecutionPolicy
    backend: ExecutionBackend
    sessionmaker: async_sessionmaker[AsyncSession]
    wait_seconds: float  # the cap on `?wait=true`
    shutdown: Shutdown
    documents: SessionDocuments  # what a session run executes (live/documents.py)
    live: LiveRuns | None = None
    streams: StreamPolicy = field(default_factory=StreamPolicy)
    slots: ConnectionSlots = field(default_factory=lambda: ConnectionSlots(16))


def get_executions(request: Request) -> ExecutionsContext:
    context = request.app.state.coderoom.executions
    assert isinstance(context, ExecutionsContext)
    return context


Executions = Annotated[ExecutionsContext, Depends(get_executions)]
