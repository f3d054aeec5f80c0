"""Request and response bodies of the executions routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from coderoom.core.numbers import JsonInt
from coderoom.core.text import Identifier, RawCode
from coderoom.executions.status import ExecutionStatus
from coderoom.sandbox.policy import CEILING, COMPILE_CEILING


class FileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Identifier = Field(min_length=1, max_length=255, examples=["main.py"])
    content: RawCode
    encoding: Literal["utf8", "base64"] = Field(
        default="utf8",
        description="`base64` for binary data files: `content` is decoded before the run.",
    )


def _limit(ceiling: int, what: str) -> Any:
    return Field(
        default=None,
        ge=1,
        le=ceiling,
        description=f"{what}; at most the language's maximum (GET /sandbox/languages), "
        f"never above {ceiling}.",
    )


class LimitsIn(BaseModel):
    """Per-run limits; each at most the language's maximum (GET /sandbox/languages)."""

    model_config = ConfigDict(extra="forbid")

    cpu_time_ms: JsonInt | None = _limit(CEILING.cpu_time_ms, "CPU time, ms")
    wall_time_ms: JsonInt | None = _limit(CEILING.wall_time_ms, "Wall-clock time, ms")
    memory_mb: JsonInt | None = _limit(CEILING.memory_mb, "Memory, MiB")
    processes: JsonInt | None = _limit(CEILING.processes, "Processes and threads")
    output_kb: JsonInt | None = _limit(CEILING.output_kb, "stdout and stderr, KiB each")


class CompileLimitsIn(BaseModel):
    """Limits of the compile phase (compiled languages only); each at most the language's
    compile maximum (GET /sandbox/languages)."""

    model_config = ConfigDict(extra="forbid")

    cpu_time_ms: JsonInt | None = _limit(COMPILE_CEILING.cpu_time_ms, "CPU time, ms")
    wall_time_ms: JsonInt | None = _limit(COMPILE_CEILING.wall_time_ms, "Wall-clock time, ms")
    memory_mb: JsonInt | None = _limit(COMPILE_CEILING.memory_mb, "Memory, MiB")
    processes: JsonInt | None = _limit(COMPILE_CEILING.processes, "Processes and threads")
    output_kb: JsonInt | None = _limit(COMPILE_CEILING.output_kb, "Compiler output, KiB")


#: `source` or `files`, exactly one of them (null counts as absent), as the schema says it.
_ONE_PROGRAM: dict[str, Any] = {
    "oneOf": [
        {"required": ["source"], "properties": {"source": {"not": {"type": "null"}}}},
        {"required": ["files"], "properties": {"files": {"not": {"type": "null"}}}},
    ]
}


class ExecutionCreate(BaseModel):
    # A field we do not know may change what the caller meant (`version`, `encoding`):
    # refuse it rather than run something else.
    model_config = ConfigDict(extra="forbid", json_schema_extra=_ONE_PROGRAM)

    language: Identifier = Field(
        max_length=32,
        examples=["python"],
        description="A language id or one of its aliases.",
        json_schema_extra={"x-choices": "language-names"},
    )
    version: Identifier | None = Field(
        default=None,
        max_length=32,
        examples=["3.11"],
        description="Must match the installed version (3, 3.11 and 3.11.2 match 3.11.2).",
    )
    source: RawCode | None = Field(default=None, examples=["print('hello')"])
    files: list[FileIn] | None = Field(default=None, min_length=1, max_length=64)
    stdin: RawCode = ""
    args: list[RawCode] = Field(default_factory=list, max_length=64)
    limits: LimitsIn | None = None
    compile_limits: CompileLimitsIn | None = None
    session_id: uuid.UUID | None = None
    interactive: StrictBool = Field(
        default=False,
        description="Keep stdin open after `stdin`: send more, EOF and signals over "
        "GET /sandbox/executions/{id}/attach (WebSocket) while it runs.",
    )

    @model_validator(mode="after")
    def _one_program(self) -> ExecutionCreate:
        if (self.source is None) == (self.files is None):
            raise ValueError("send either `source` or `files`, not both and not neither")
        return self


class SessionRun(BaseModel):
    """Optional: no body at all runs with empty stdin and no arguments."""

    model_config = ConfigDict(extra="forbid")

    stdin: RawCode = ""
    args: list[RawCode] = Field(default_factory=list, max_length=64)
    interactive: StrictBool = Field(default=False, description="As for POST /sandbox/executions.")


class ExecutionRead(BaseModel):
    id: uuid.UUID
    language: str
    status: ExecutionStatus
    exit_code: int | None
    signal: int | None
    signal_name: str | None = Field(description="The signal's name, e.g. SIGKILL.")
    stdout: str
    stderr: str
    compile_output: str
    stdout_truncated: bool
    stderr_truncated: bool
    wall_time_ms: int | None
    cpu_time_ms: int | None
    memory_kb: int | None
    limits: dict[str, Any]
    compile_limits: dict[str, Any] | None
    interactive: bool
    message: str | None = Field(description="Why: for timeouts, limits, errors.")
    session_id: uuid.UUID | None
    created_by: uuid.UUID
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ExecutionPage(BaseModel):
    items: list[ExecutionRead]
    next_cursor: str | None


class LanguageRead(BaseModel):
    id: str
    name: str
    version: str
    aliases: list[str]
    extensions: list[str]
    compiled: bool
    file_name: str = Field(description="The name a lone `source` is saved under.")
    arguments: bool = Field(description="Whether the program takes command-line arguments.")
    limits: dict[str, int] = Field(description="Defaults for `limits`.")
    maxima: dict[str, int] = Field(description="The most `limits` may ask for.")
    compile_limits: dict[str, int] | None = Field(description="Defaults (compiled only).")
    compile_maxima: dict[str, int] | None
    notes: str
