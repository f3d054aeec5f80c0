"""The seam between accepting an execution and running it: `ExecutionBackend`.

    request ──▶ service.create ── INSERT ── after_commit(submit) ──▶ backend.submit
                                                                     │
             EmbeddedBackend (embedded.py): a pool of tasks in this process
             QueueBackend (queue_backend.py): SAQ jobs on Redis, run by `coderoom worker`
                                                                     │
    response ◀── wait_for_end ◀── backend.subscribe(id) ◀── Ended ◀──┘ (row holds result)

What crosses the seam is ours only: ids, `Submission`, `Placement`, events, `BackendHealth`,
and the domain errors `QueueFull`, `QueueUnavailable`, `SandboxUnavailable`. No Redis, SAQ
or SQLAlchemy type leaves a backend, so callers never catch infrastructure errors.

Waiting is a subscription: `subscribe` yields the execution's events and ends with `Ended`.
Today `Ended` is the only event; streaming output adds an event type to `ExecutionEvent`
and a backend that emits it, and `wait_for_end` (which skips what it does not need) and its
callers stay as they are.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True)
class Placement:
    """Where a backend will put the next execution, decided before its row is written.

    `claimed`: the backend will start it in this process at once, so the row is inserted
    already `running` (one write before the run instead of an insert and a claim)."""

    claimed: bool


@dataclass(frozen=True)
class Submission:
    execution_id: uuid.UUID
    correlation_id: str | None
    placement: Placement


@dataclass(frozen=True)
class Ended:
    """The run is over (or was never this backend's to run): the row holds the outcome."""

    execution_id: uuid.UUID


#: What a subscription yields. Streaming adds e.g. `| OutputChunk` here.
ExecutionEvent = Ended


@dataclass(frozen=True)
class BackendHealth:
    status: Literal["up", "down"]
    mode: Literal["embedded", "queue"]
    depth: int | None = None  # executions waiting for a free slot
    workers: int | None = None  # live queue workers, or the embedded pool's size
    error: str | None = None


class ExecutionBackend(Protocol):
    async def start(self) -> None:
        """Connect, and take over what a previous run of this backend left behind."""

    async def stop(self, *, deadline: float) -> None:
        """Stop taking work; let running work end until `deadline` (event-loop time)."""

    async def admit(self) -> Placement:
        """Whether one more execution may be accepted now, and where it will run.

        Raises QueueFull past the backlog cap, QueueUnavailable when the queue cannot be
        reached, SandboxUnavailable when code cannot run here."""

    async def submit(self, submission: Submission) -> None:
        """Hand over an execution whose row is committed. Raises QueueUnavailable."""

    def subscribe(
        self, execution_id: uuid.UUID, *, seconds: float
    ) -> AsyncIterator[ExecutionEvent]:
        """The execution's events until it ends (`Ended`, last) or `seconds` pass."""

    async def cancel(self, execution_id: uuid.UUID) -> None:
        """Stop it if it is running (its row is already marked cancelled)."""

    async def health(self) -> BackendHealth:
        """Whether accepted executions will run, with the backlog; never raises."""


async def wait_for_end(backend: ExecutionBackend, execution_id: uuid.UUID, seconds: float) -> bool:
    """True once the execution has ended, False when `seconds` passed first."""
    async for event in backend.subscribe(execution_id, seconds=seconds):
        if isinstance(event, Ended):
            return True
    return False
