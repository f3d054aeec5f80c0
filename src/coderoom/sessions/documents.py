"""What the sessions domain needs from a session's live document, as an interface.

The document itself (a Yjs CRDT, its log, its rooms) lives in the `live` domain, which sits
above this one (`live → sessions`): sessions and executions read and write it through this
protocol, and the composition root (api/app.py) hands them live's implementation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from coderoom.sessions.models import CodingSession


@dataclass(frozen=True)
class DocumentState:
    files: dict[str, str]
    entry_file: str
    language: str

    @property
    def entry_text(self) -> str:
        return self.files.get(self.entry_file, "")

    def program_files(self) -> list[tuple[str, str]]:
        """Every file, the entry file first (what a run of the session executes)."""
        rest = [(n, t) for n, t in self.files.items() if n != self.entry_file]
        return [(self.entry_file, self.entry_text), *rest]


class SessionDocuments(Protocol):
    async def read(self, db: AsyncSession, session: CodingSession) -> DocumentState:
        """The document as it is in the database now (every accepted update)."""
        ...

    async def write(
        self,
        db: AsyncSession,
        session: CodingSession,
        *,
        files: dict[str, str | None],
        bases: dict[str, str],
        entry_file: str | None,
        language: str | None,
    ) -> DocumentState:
        """Apply a plain-text change as a CRDT change (flushed; delivered to live clients
        once the transaction commits). A file set to None is deleted. A file with a base
        (the text the writer read) gets only the writer's changes since that base."""
        ...

    async def present(self, session_id: uuid.UUID) -> list[uuid.UUID]:
        """Users with a live connection to the session now."""
        ...
