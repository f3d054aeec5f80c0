"""Request and response bodies of the auth routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from coderoom.core.numbers import JsonInt
from coderoom.core.text import Identifier, PlainText, SecretText


class UserRead(BaseModel):
    """A user as the API shows it: never the password hash, never a token."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    display_name: str
    created_at: datetime


REFRESH_COOKIE_DESCRIPTION = (
    "Browsers: set the refresh token as an httpOnly SameSite=Strict cookie scoped to "
    "/api/v1/auth instead of returning it in the body (`refresh_token` is then null)."
)


class RegisterRequest(BaseModel):
    email: Identifier = Field(max_length=320, examples=["ada@example.com"])
    password: SecretText = Field(min_length=8, max_length=128)
    display_name: PlainText | None = Field(default=None, max_length=100, examples=["Ada"])
    invite: SecretText | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="A sign-up invite token; required when REGISTRATION=invite-only.",
    )
    refresh_cookie: bool = Field(default=False, description=REFRESH_COOKIE_DESCRIPTION)

    @field_validator("display_name")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value:
            raise ValueError("display_name is empty once markup is removed")
        return value


class LoginRequest(BaseModel):
    email: Identifier = Field(max_length=320)
    password: SecretText = Field(min_length=1, max_length=1024)
    refresh_cookie: bool = Field(default=False, description=REFRESH_COOKIE_DESCRIPTION)


class RefreshRequest(BaseModel):
    refresh_token: SecretText | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="Omit it to use the refresh cookie set by `refresh_cookie: true`.",
    )


class TokenPair(BaseModel):
    user: UserRead
    access_token: str
    refresh_token: str | None = Field(
        description="Null when it was set as the refresh cookie instead (`refresh_cookie`)."
    )
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a scheme name, not a secret
    expires_in: int = Field(description="Seconds until the access token expires.")


class WebSocketTicket(BaseModel):
    """A single-use credential for opening one WebSocket (see docs/API.md, WebSockets)."""

    ticket: str = Field(
        description="Pass as the subprotocol `coderoom.ticket.<ticket>` or as `?ticket=`."
    )
    expires_in: int = Field(description="Seconds the ticket stays valid if unused.")


class RegistrationInfo(BaseModel):
    mode: Literal["open", "invite-only", "closed"]


class UserAdminRead(BaseModel):
    """A user as admins see it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    display_name: str
    is_admin: bool
    disabled_at: datetime | None
    created_at: datetime


class UserAdminPage(BaseModel):
    items: list[UserAdminRead]
    next_cursor: str | None


class ApiKeyCreate(BaseModel):
    name: PlainText = Field(min_length=1, max_length=100, examples=["CI runner"])
    expires_in_days: JsonInt | None = Field(default=None, ge=1, le=3650)


class ApiKeyRead(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    scope: Literal["executions"]
    created_at: datetime
    expires_at: datetime | None
    revoked: bool


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The key itself. Shown once; only its hash is stored.")


class SignupInviteCreate(BaseModel):
    email: Identifier | None = Field(
        default=None, max_length=320, description="Only this address may use the invite."
    )
    expires_in_hours: JsonInt | None = Field(default=168, ge=1, le=24 * 365)


class SignupInviteRead(BaseModel):
    id: uuid.UUID
    email: str | None
    created_at: datetime
    expires_at: datetime | None
    used: bool
    revoked: bool


class SignupInviteCreated(SignupInviteRead):
    token: str = Field(description="The invite token. Shown once; only its hash is stored.")
