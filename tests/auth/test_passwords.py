"""Password hashing: Argon2id parameters, rehash on change, and off the event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from coderoom.api import create_app
from coderoom.auth.models import User
from coderoom.auth.passwords import PasswordHasher, common_passwords
from tests.conftest import make_settings
from tests.support.factories import PASSWORD, register, unique_email


def test_default_profile_is_owasp_argon2id() -> None:
    settings = make_settings(argon2_memory_kib=19 * 1024, argon2_time_cost=2)
    hasher = PasswordHasher(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
    )
    encoded = hasher.hash_sync("some password")
    assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert hasher.verify_sync(encoded, "some password")
    assert not hasher.verify_sync(encoded, "other password")


def test_common_password_list_ships_with_the_package() -> None:
    passwords = common_passwords()
    assert len(passwords) > 10_000
    assert "password" in passwords
    assert all(len(p) >= 8 for p in passwords)


async def _app(url: str, **overrides: object) -> FastAPI:
    return create_app(make_settings(database_url=url, **overrides))


async def test_hash_is_upgraded_on_login_when_parameters_change(sqlite_url: str) -> None:
    email = unique_email()
    old = await _app(sqlite_url, argon2_memory_kib=1024, argon2_time_cost=1)
    async with (
        old.router.lifespan_context(old),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=old), base_url="http://t") as c,
    ):
        await register(c, email=email)
    new = await _app(sqlite_url, argon2_memory_kib=2048, argon2_time_cost=2)
    async with new.router.lifespan_context(new):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=new), base_url="http://t"
        ) as c:
            login = await c.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            assert login.status_code == 200
        async with new.state.coderoom.sessionmaker() as db:
            user = (await db.execute(select(User).where(User.email == email))).scalar_one()
            assert "$m=2048,t=2," in user.password_hash
            await db.delete(user)
            await db.commit()


class GatedHasher(PasswordHasher):
    """The real Argon2 hasher, held inside its worker thread until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__(memory_kib=1024, time_cost=1, parallelism=1, concurrency=8)
        self.gate = threading.Event()
        self.inside = threading.Semaphore(0)

    def verify_sync(self, password_hash: str, password: str) -> bool:
        self.inside.release()
        self.gate.wait(timeout=30)
        return super().verify_sync(password_hash, password)


@pytest.fixture
async def gated(sqlite_url: str) -> AsyncIterator[tuple[FastAPI, GatedHasher]]:
    application = create_app(make_settings(database_url=sqlite_url))
    async with application.router.lifespan_context(application):
        hasher = GatedHasher()
        state = application.state.coderoom
        state.auth = dataclasses.replace(state.auth, hasher=hasher)
        yield application, hasher
        hasher.gate.set()


async def test_logins_in_flight_do_not_stall_other_requests(
    gated: tuple[FastAPI, GatedHasher],
) -> None:
    """Four logins sit inside password verification; a cheap route still answers."""
    application, hasher = gated
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        logins = [
            asyncio.create_task(
                client.post(
                    "/api/v1/auth/login", json={"email": unique_email(), "password": "x" * 9}
                )
            )
            for _ in range(4)
        ]
        for _ in range(4):  # all four are now blocked inside a hashing thread
            await asyncio.to_thread(hasher.inside.acquire, True, 30)
        assert not hasher.gate.is_set()
        live = await asyncio.wait_for(client.get("/api/v1/health/live"), timeout=30)
        assert live.status_code == 200
        assert all(not task.done() for task in logins)  # measured while logins were in flight
        hasher.gate.set()
        results = await asyncio.gather(*logins)
    assert [r.status_code for r in results] == [401] * 4
