"""Opaque tokens: generated random, stored only as a hash."""

from __future__ import annotations

import hashlib
import secrets


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    """SHA-256 is enough: tokens carry 256+ random bits, there is nothing to brute-force."""
    return hashlib.sha256(token.encode()).hexdigest()
