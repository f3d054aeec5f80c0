"""Keyset pagination: opaque cursors over (timestamp, id), newest first."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from coderoom.core.errors import ValidationError


@dataclass(frozen=True)
class Cursor:
    at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = json.dumps([self.at.isoformat(), str(self.id)]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            padded = value + "=" * (-len(value) % 4)
            at, ident = json.loads(base64.urlsafe_b64decode(padded.encode()))
            moment = datetime.fromisoformat(at)
            if moment.tzinfo is None:  # we only ever issue aware times: this one is forged
                raise ValueError("naive cursor time")
            # In UTC here, so an out-of-range offset fails now, not in the database driver.
            return cls(at=moment.astimezone(UTC), id=uuid.UUID(ident))
        except (ValueError, TypeError, OverflowError, binascii.Error, json.JSONDecodeError):
            raise ValidationError(
                "The cursor is not valid.",
                errors=[{"field": "query.cursor", "message": "invalid cursor", "type": "cursor"}],
            ) from None
