"""Extra routes the HTTP tests mount on a real app to reach error paths on purpose."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field

from coderoom.core.errors import ConflictError


class Echo(BaseModel):
    name: str = Field(min_length=1, max_length=20)
    count: int


def add_test_routes(app: FastAPI) -> None:
    router = APIRouter(prefix="/api/v1/_test")

    @router.post("/echo")
    async def echo(body: Echo) -> Echo:
        return body

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    @router.get("/conflict")
    async def conflict() -> None:
        raise ConflictError("already there", extra={"current_version": 3})

    app.include_router(router)
