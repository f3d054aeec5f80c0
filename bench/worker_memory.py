"""Where a worker's memory goes: the execution path in one process, under tracemalloc.

Runs --count hello-world executions through the same runner a worker uses
(`runner.run_execution`: claim, sandbox, store) on a SQLite file or an empty PostgreSQL
database (--database-url, as a worker uses), with tracemalloc on,
and prints RSS, traced Python memory, and RSS again after glibc's malloc_trim every
--every executions, then the allocation sites that grew most between the first sample and
the last. Python objects that pile up (a leak in our code or a library's) show here by file
and line; RSS growth without traced growth that malloc_trim gives back is the allocator
holding freed pages (arenas, fragmentation), not live objects.

    .venv/bin/python bench/worker_memory.py [--count 3000] [--every 500]
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import tempfile
import tracemalloc
import uuid
from datetime import UTC, datetime
from pathlib import Path

from coderoom import bootstrap, migrations
from coderoom.auth.models import User
from coderoom.config import Settings
from coderoom.executions import runner
from coderoom.executions.models import Execution
from coderoom.infra.logging import configure_logging
from coderoom.sandbox import Limits, Program


def rss_by_mapping() -> dict[str, int]:
    """Resident KiB per kind of mapping: [heap], [stack], anonymous, or the mapped file."""
    totals: dict[str, int] = {}
    name = "[anon]"
    for line in Path("/proc/self/smaps").read_text().splitlines():
        first = line.split(maxsplit=6)
        if len(first) >= 5 and "-" in first[0] and ":" in first[3]:  # a mapping's header
            name = first[5] if len(first) > 5 else "[anon]"
        elif line.startswith("Rss:"):
            totals[name] = totals.get(name, 0) + int(line.split()[1])
    return totals


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def main(
    count: int, every: int, concurrency: int, database_url: str | None, engine_only: bool
) -> None:
    configure_logging("WARNING", "console")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            environment="test",
            database_url=database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'mem.sqlite3'}",
        )
        await asyncio.to_thread(migrations.upgrade, settings)
        async with (
            bootstrap.open_database(settings) as database,
            bootstrap.open_sandbox(concurrency) as sandbox,
        ):
            owner = uuid.uuid4()
            async with database.sessionmaker() as db:
                db.add(User(id=owner, email=f"{owner}@x.org", password_hash="x", display_name="m"))
                await db.commit()

            async def one(n: int) -> None:
                if engine_only:  # the sandbox alone: no rows, no runner
                    await sandbox.run("python", Program.single("main.py", f"print({n})"))
                    return
                async with database.sessionmaker() as db:
                    execution = Execution(
                        language="python",
                        files=[{"name": "main.py", "content": f"print({n})"}],
                        limits=Limits().as_dict(),
                        created_by=owner,
                        created_at=datetime.now(UTC),
                    )
                    db.add(execution)
                    await db.commit()
                    eid = execution.id
                await runner.run_execution(database.sessionmaker, sandbox, eid)

            libc = ctypes.CDLL("libc.so.6")
            tracemalloc.start(10)
            snapshots = []
            mappings: list[dict[str, int]] = []
            done = 0
            print(f"{'done':>6}{'rss MiB':>10}{'traced MiB':>12}{'rss after trim':>16}")
            while done < count:
                await asyncio.gather(*(one(done + i) for i in range(concurrency)))
                done += concurrency
                if done % every < concurrency:
                    gc.collect()
                    traced = tracemalloc.get_traced_memory()[0] / 2**20
                    rss = rss_mb()
                    libc.malloc_trim(0)  # hand free heap pages back: what remains is in use
                    print(f"{done:>6}{rss:>10.1f}{traced:>12.2f}{rss_mb():>16.1f}")
                    snapshots.append(tracemalloc.take_snapshot())
                    mappings.append(rss_by_mapping())
            if len(mappings) >= 2:
                first, last = mappings[0], mappings[-1]
                growth = sorted(
                    ((last.get(k, 0) - first.get(k, 0), k) for k in {*first, *last}),
                    reverse=True,
                )
                print("resident growth by mapping (KiB), first sample -> last:")
                for kib, where in growth[:6]:
                    print(f"   {kib:>7}  {where}")
            if len(snapshots) >= 2:
                print("largest growth, first sample after warm-up -> last:")
                for stat in snapshots[-1].compare_to(snapshots[0], "lineno")[:12]:
                    print("  ", stat)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument(
        "--database-url", help="an empty PostgreSQL database (default: a SQLite file)"
    )
    parser.add_argument("--engine-only", action="store_true", help="Engine.run alone")
    args = parser.parse_args()
    asyncio.run(main(args.count, args.every, args.concurrency, args.database_url, args.engine_only))
