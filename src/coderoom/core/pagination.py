"""Keyset pagination: opaque cursors over (timestamp, id), newest first."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

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
            return cls(at=datetime.fromisoformat(at), id=uuid.UUID(ident))
        except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
            raise ValidationError(
                "The cursor is not valid.",
                errors=[{"field": "query.cursor", "message": "invalid cursor", "type": "cursor"}],
            ) from None
