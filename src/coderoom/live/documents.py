"""Live's implementation of `sessions.documents.SessionDocuments`: how REST reads, REST
writes and session runs see the live document.

Reads load the document from the database (every accepted update is there before anyone
sees it), so a GET or a run on any instance sees exactly what has been accepted, whether or
not a room is loaded here. A write applies a diff on a copy with a fresh client id, appends
the resulting update in the request's transaction, and hands it to the hub only after the
commit (the room here, and the other instances through the bus).
"""

from __future__ import annotations

import uuid
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from coderoom.infra.db import after_commit
from coderoom.live import document, merge, store
from coderoom.live.hub import EntryName, Hub, initial_log
from coderoom.sessions.documents import DocumentState
from coderoom.sessions.models import CodingSession


def _state(contents: document.Contents) -> DocumentState:
    return DocumentState(
        files=contents.files, entry_file=contents.entry, language=contents.language
    )


class LiveDocuments:
    def __init__(self, hub: Hub, entry_name: EntryName) -> None:
        self.hub = hub
        self.entry_name = entry_name

    async def read(self, db: AsyncSession, session: CodingSession) -> DocumentState:
        updates, _ = await initial_log(db, session, self.entry_name)
        return _state(document.contents(document.load(updates)))

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
        updates, seeded = await initial_log(db, session, self.entry_name)
        doc = document.load(updates)
        before = document.contents(doc)
        files = {
            name: merge.rebase(bases[name], text, before.files.get(name, ""))
            if text is not None and name in bases
            else text
            for name, text in files.items()
        }
        change = document.edit(doc, files=files, entry=entry_file, language=language)
        after = document.contents(doc)
        total, largest = document.measure(doc)
        limits = self.hub.limits
        if largest > limits.max_file_bytes or total > limits.max_document_bytes:
            raise document.DocumentTooLarge(
                f"Files are limited to {limits.max_file_bytes} bytes each and "
                f"{limits.max_document_bytes} bytes together."
            )
        new = [*updates] if seeded else []
        if after != before:
            new.append(change)
        await store.append(db, session.id, new)
        for update in new:
            after_commit(db, partial(self.hub.deliver, session.id, update))
        return _state(after)

    async def present(self, session_id: uuid.UUID) -> list[uuid.UUID]:
        return await self.hub.presence.present(session_id)
