"""Access tokens (short-lived JWTs) and refresh tokens (opaque, stored as hashes)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from coderoom.auth.errors import InvalidToken
from coderoom.core.security import hash_token, new_token

__all__ = ["AccessClaims", "TokenCodec", "hash_token", "new_refresh_token"]

ISSUER = "coderoom"
ACCESS_TYPE = "access"


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    token_id: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenCodec:
    secret: str
    algorithm: str
    access_ttl: timedelta
    refresh_ttl: timedelta

    def issue_access(self, user_id: uuid.UUID, *, now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        claims = {
            "iss": ISSUER,
            "sub": str(user_id),
            "jti": uuid.uuid4().hex,
            "typ": ACCESS_TYPE,
            "iat": now,
            "nbf": now,
            "exp": now + self.access_ttl,
        }
        return jwt.encode(claims, self.secret, algorithm=self.algorithm)

    def decode_access(self, token: str) -> AccessClaims:
        """Verify signature, algorithm (pinned: `none` and key confusion are refused), expiry."""
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[self.algorithm],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "jti", "iss"]},
            )
            if claims.get("typ") != ACCESS_TYPE:
                raise InvalidToken("Not an access token.")
            return AccessClaims(
                user_id=uuid.UUID(str(claims["sub"])),
                token_id=str(claims["jti"]),
                expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("The access token has expired.") from None
        except (jwt.InvalidTokenError, ValueError):
            raise InvalidToken("The access token is invalid.") from None

    @property
    def access_ttl_seconds(self) -> int:
        return int(self.access_ttl.total_seconds())


def new_refresh_token() -> str:
    return new_token(48)
