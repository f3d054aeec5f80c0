"""Keyset pagination: opaque cursors over (timestamp, id), newest first.

A cursor is `<microseconds since the epoch>-<id as 32 hex digits>`. Every string that
matches `CURSOR_PATTERN` decodes (16 digits of microseconds stay below the year 2287), so
the API can declare the pattern and a cursor valid under it is never refused.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from coderoom.core.errors import ValidationError

CURSOR_PATTERN = r"^[0-9]{1,16}-[0-9a-f]{32}$"
CURSOR_MAX_LENGTH = 49
_CURSOR = re.compile(CURSOR_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Cursor:
    at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        at = self.at if self.at.tzinfo is not None else self.at.replace(tzinfo=UTC)
        return f"{(at - _EPOCH) // _MICROSECOND}-{self.id.hex}"

    @classmethod
    def decode(cls, value: str) -> Cursor:
        if not _CURSOR.fullmatch(value):
            raise ValidationError(
                "The cursor is not valid.",
                errors=[{"field": "query.cursor", "message": "invalid cursor", "type": "cursor"}],
            )
        micros, ident = value.split("-")
        return cls(at=_EPOCH + int(micros) * _MICROSECOND, id=uuid.UUID(hex=ident))
