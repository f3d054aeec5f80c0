"""Password hashing (Argon2id) off the event loop, and the password policy."""

from __future__ import annotations

import asyncio
import os
from functools import cache
from importlib import resources

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 8
MAX_LENGTH = 128


class PasswordHasher:
    """Argon2id with configurable cost. Hashing and verifying run in worker threads.

    A hash costs tens of milliseconds of CPU and ~19 MiB of memory; on the event loop a
    burst of logins would stall every other request. The semaphore bounds how many run at
    once so a burst cannot exhaust memory either.
    """

    def __init__(
        self, *, memory_kib: int, time_cost: int, parallelism: int, concurrency: int | None = None
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        self._slots = asyncio.Semaphore(concurrency or max(2, (os.cpu_count() or 1) * 2))
        self._dummy_hash = self._hasher.hash("coderoom-dummy-password")

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify_sync(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self.hash_sync, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(self.verify_sync, password_hash, password)

    async def verify_dummy(self, password: str) -> None:
        """Spend the time a real verification would, for an account that does not exist."""
        await self.verify(self._dummy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("coderoom.auth").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def password_problems(password: str, *, email: str) -> list[str]:
    """Why this password is refused; empty when it is acceptable."""
    problems = []
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        problems.append(f"must be {MIN_LENGTH} to {MAX_LENGTH} characters long")
    if password.casefold() == email.casefold() or password.casefold() == email.split("@")[0]:
        problems.append("must not be your email address")
    if password.lower() in common_passwords():
        problems.append("is one of the most common passwords; choose another")
    return problems
