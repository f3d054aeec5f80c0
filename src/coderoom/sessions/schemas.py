"""Request and response bodies of the sessions routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from coderoom.core.text import Identifier, PlainText, RawCode, SecretText

MAX_SOURCE_CHARS = 256 * 1024
Role = Literal["owner", "editor", "viewer"]
InviteRole = Literal["editor", "viewer"]


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value:
        raise ValueError("must not be empty once markup is removed")
    return value


class SessionCreate(BaseModel):
    title: PlainText = Field(min_length=1, max_length=200, examples=["Pairing on quicksort"])
    language: Identifier = Field(max_length=32, examples=["python"])
    description: PlainText = Field(default="", max_length=5000)
    source: RawCode = Field(default="", max_length=MAX_SOURCE_CHARS)

    _title = field_validator("title")(_not_blank)


class SessionUpdate(BaseModel):
    title: PlainText | None = Field(default=None, min_length=1, max_length=200)
    description: PlainText | None = Field(default=None, max_length=5000)
    language: Identifier | None = Field(default=None, max_length=32)
    source: RawCode | None = Field(default=None, max_length=MAX_SOURCE_CHARS)
    base_version: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,  # the column is a 32-bit integer
        description="Reject the update (409) unless this is the current version.",
    )

    _title = field_validator("title")(_not_blank)


class Owner(BaseModel):
    id: uuid.UUID
    display_name: str


class ParticipantRead(BaseModel):
    user_id: uuid.UUID
    display_name: str
    role: Role
    joined_at: datetime


class SessionRead(BaseModel):
    id: uuid.UUID
    title: str
    description: str
    language: str
    source: str
    version: int
    owner: Owner
    participants: list[ParticipantRead]
    created_at: datetime
    updated_at: datetime


class SessionPage(BaseModel):
    items: list[SessionRead]
    next_cursor: str | None


class InviteCreate(BaseModel):
    role: InviteRole = "viewer"
    expires_in_hours: int | None = Field(default=72, ge=1, le=24 * 365)
    max_uses: int | None = Field(default=None, ge=1, le=10_000)
    label: PlainText = Field(default="", max_length=200)


class InviteRead(BaseModel):
    id: uuid.UUID
    role: InviteRole
    label: str
    expires_at: datetime | None
    max_uses: int | None
    uses: int
    revoked: bool
    created_at: datetime


class InviteCreated(InviteRead):
    token: str = Field(description="Shown once; share it as the invite link.")


class JoinRequest(BaseModel):
    token: SecretText = Field(min_length=1, max_length=256)
