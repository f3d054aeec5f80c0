"""Request and response bodies of the auth routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from coderoom.core.text import Identifier, PlainText, SecretText


class UserRead(BaseModel):
    """A user as the API shows it: never the password hash, never a token."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    display_name: str
    created_at: datetime


class RegisterRequest(BaseModel):
    email: Identifier = Field(max_length=320, examples=["ada@example.com"])
    password: SecretText = Field(min_length=8, max_length=128)
    display_name: PlainText | None = Field(default=None, max_length=100, examples=["Ada"])

    @field_validator("display_name")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value:
            raise ValueError("display_name is empty once markup is removed")
        return value


class LoginRequest(BaseModel):
    email: Identifier = Field(max_length=320)
    password: SecretText = Field(min_length=1, max_length=1024)


class RefreshRequest(BaseModel):
    refresh_token: SecretText = Field(min_length=1, max_length=512)


class TokenPair(BaseModel):
    user: UserRead
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a scheme name, not a secret
    expires_in: int = Field(description="Seconds until the access token expires.")
