"""Request and response bodies of the sessions routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from coderoom.core.numbers import JsonInt
from coderoom.core.text import Identifier, PlainText, RawCode, SecretText

MAX_SOURCE_CHARS = 256 * 1024
MAX_FILES = 64
Role = Literal["owner", "editor", "viewer"]
InviteRole = Literal["editor", "viewer"]


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value:
        raise ValueError("must not be empty once markup is removed")
    return value


class SessionCreate(BaseModel):
    title: PlainText = Field(min_length=1, max_length=200, examples=["Pairing on quicksort"])
    language: Identifier = Field(
        max_length=32,
        examples=["python"],
        json_schema_extra={"x-choices": "language-ids"},
        description="A language id from GET /sandbox/languages.",
    )
    description: PlainText = Field(default="", max_length=5000)
    source: RawCode = Field(default="", max_length=MAX_SOURCE_CHARS)

    _title = field_validator("title")(_not_blank)


class SessionUpdate(BaseModel):
    title: PlainText | None = Field(default=None, min_length=1, max_length=200)
    description: PlainText | None = Field(default=None, max_length=5000)
    language: Identifier | None = Field(
        default=None, max_length=32, json_schema_extra={"x-choices": "language-ids"}
    )
    source: RawCode | None = Field(
        default=None,
        max_length=MAX_SOURCE_CHARS,
        description="The entry file's new text (a diff against the live document).",
    )
    files: dict[Identifier, RawCode | None] | None = Field(
        default=None,
        max_length=MAX_FILES,
        description="Files to change: name → new text (created if missing), or null to "
        "delete. Each change replaces only the range that differs, so concurrent live "
        "edits elsewhere in the file survive.",
    )
    entry_file: Identifier | None = Field(default=None, max_length=255)
    base_source: RawCode | None = Field(
        default=None,
        max_length=MAX_SOURCE_CHARS,
        description="The entry file's text as you read it: only your change (base_source → "
        "source) is applied, so live edits made since your read are kept.",
    )
    base_files: dict[Identifier, RawCode] | None = Field(
        default=None,
        max_length=MAX_FILES,
        description="The same as base_source, for files in `files`.",
    )
    base_version: JsonInt | None = Field(
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


class PresentUser(BaseModel):
    user_id: uuid.UUID
    display_name: str


class ParticipantRoleUpdate(BaseModel):
    role: InviteRole


class SessionRead(BaseModel):
    id: uuid.UUID
    title: str
    description: str
    language: str
    source: str = Field(description="The entry file's text.")
    files: dict[str, str] | None = Field(
        default=None,
        description="Every file of the live document (name → text); null in lists.",
    )
    entry_file: str | None = Field(default=None, description="Null in lists.")
    version: int
    owner: Owner
    participants: list[ParticipantRead]
    present: list[PresentUser] | None = Field(
        default=None, description="Users connected to the live document now; null in lists."
    )
    last_activity_at: datetime
    created_at: datetime
    updated_at: datetime


class SessionPage(BaseModel):
    items: list[SessionRead]
    next_cursor: str | None


class InviteCreate(BaseModel):
    role: InviteRole = "viewer"
    expires_in_hours: JsonInt | None = Field(default=72, ge=1, le=24 * 365)
    max_uses: JsonInt | None = Field(default=None, ge=1, le=10_000)
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
    token: str = Field(description="Shown once; POST it to /sessions/join.")
    url: str = Field(
        description="The invite link to share: the web app's join page "
        "(PUBLIC_URL, or this request's origin, + /join/<token>). Shown once.",
        examples=["https://code.example.com/join/Vt3bq0…"],
    )


class JoinRequest(BaseModel):
    token: SecretText = Field(min_length=1, max_length=256)
