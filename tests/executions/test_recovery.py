"""Nothing accepted is lost: executions left behind by a stopped service end up terminal."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import delete, select

from coderoom.api import create_app
from coderoom.auth.models import User
from coderoom.config import Settings
from coderoom.executions.backend import wait_for_end
from coderoom.executions.models import Execution
from coderoom.infra.db import create_engine, create_sessionmaker


def _execution(owner: uuid.UUID, status: str, attempts: int, source: str) -> Execution:
    return Execution(
        language="python",
        status=status,
        files=[{"name": "main.py", "content": source}],
        stdin="",
        args=[],
        limits={
            "cpu_time_ms": 5000,
            "wall_time_ms": 10000,
            "memory_mb": 256,
            "processes": 64,
            "open_files": 256,
            "file_size_kb": 16384,
            "output_kb": 64,
            "workspace_mb": 64,
        },
        created_by=owner,
        attempts=attempts,
        created_at=datetime.now(UTC),
    )


async def test_start_up_reruns_queued_and_interrupted_executions(settings: Settings) -> None:
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    owner = uuid.uuid4()
    async with sessionmaker() as db:
        db.add(User(id=owner, email=f"{owner}@example.com", password_hash="x", display_name="o"))
        await db.flush()
        queued = _execution(owner, "queued", 0, "print('was queued')")
        interrupted = _execution(owner, "running", 1, "print('was running')")
        hopeless = _execution(owner, "running", 2, "print('crashed twice')")
        db.add_all([queued, interrupted, hopeless])
        await db.commit()
        ids = [queued.id, interrupted.id, hopeless.id]
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            backend = app.state.coderoom.executions.backend
            for execution_id in ids:
                assert await wait_for_end(backend, execution_id, 30)
        async with sessionmaker() as db:
            rows = {
                e.id: e
                for e in (
                    await db.execute(select(Execution).where(Execution.id.in_(ids)))
                ).scalars()
            }
        assert (rows[queued.id].status, rows[queued.id].stdout) == ("succeeded", "was queued\n")
        assert (rows[interrupted.id].status, rows[interrupted.id].stdout) == (
            "succeeded",
            "was running\n",
        )
        assert rows[hopeless.id].status == "internal_error"
        assert "not retried" in (rows[hopeless.id].error or "")
    finally:
        async with sessionmaker() as db:
            await db.execute(delete(Execution).where(Execution.created_by == owner))
            await db.execute(delete(User).where(User.id == owner))
            await db.commit()
        await engine.dispose()
