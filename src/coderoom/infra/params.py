"""Query parameters shared by every domain's list routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from coderoom.core.pagination import CURSOR_MAX_LENGTH, CURSOR_PATTERN

#: `?cursor=`: declared with its exact pattern, so a cursor valid under the schema decodes.
CursorQuery = Annotated[
    str | None,
    Query(
        pattern=CURSOR_PATTERN,
        max_length=CURSOR_MAX_LENGTH,
        description="`next_cursor` from the previous page.",
        json_schema_extra={"x-text-kind": "identifier"},
    ),
]
