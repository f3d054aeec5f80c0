"""FastAPI dependencies of the sessions domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from coderoom.sessions.documents import SessionDocuments


def get_documents(request: Request) -> SessionDocuments:
    documents: SessionDocuments = request.app.state.coderoom.documents
    return documents


Documents = Annotated[SessionDocuments, Depends(get_documents)]
