"""The one status model of executions: every verdict fits it, and the database agrees."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from coderoom.auth.models import User
from coderoom.executions.models import Execution
from coderoom.executions.status import ACTIVE, TERMINAL, ExecutionStatus
from coderoom.infra.db import create_engine, create_sessionmaker
from coderoom.sandbox import Status as Verdict
from tests.conftest import make_settings


@pytest.mark.parametrize("verdict", list(Verdict))
def test_every_sandbox_verdict_is_a_terminal_execution_status(verdict: Verdict) -> None:
    status = ExecutionStatus.of(verdict)
    assert status.value == verdict.value
    assert status in TERMINAL


def test_active_and_terminal_split_the_statuses() -> None:
    assert {ExecutionStatus.QUEUED, ExecutionStatus.RUNNING} == ACTIVE
    assert set(ExecutionStatus) == ACTIVE | TERMINAL
    assert not ACTIVE & TERMINAL


async def test_the_database_stores_and_returns_every_status(database_url: str) -> None:
    engine = create_engine(make_settings(database_url=database_url))
    sessionmaker = create_sessionmaker(engine)
    owner = uuid.uuid4()
    try:
        async with sessionmaker() as db:
            db.add(
                User(id=owner, email=f"{owner}@example.com", password_hash="x", display_name="s")
            )
            await db.flush()
            for status in ExecutionStatus:
                db.add(
                    Execution(
                        language="python",
                        status=status,
                        files=[],
                        limits={},
                        created_by=owner,
                        created_at=datetime.now(UTC),
                    )
                )
            await db.commit()
        async with sessionmaker() as db:
            stored = list(
                (
                    await db.execute(select(Execution.status).where(Execution.created_by == owner))
                ).scalars()
            )
            assert sorted(stored) == sorted(ExecutionStatus)
            assert all(type(status) is ExecutionStatus for status in stored)
    finally:
        async with sessionmaker() as db:
            await db.delete(await db.get(User, owner))
            await db.commit()
        await engine.dispose()
