"""The real sandbox: bubblewrap, seccomp and cgroups on this machine."""

from __future__ import annotations

import pytest

from coderoom.sandbox import Engine, SandboxUnavailable
from coderoom.sandbox.languages import LanguageRegistry
from tests.support.services import unavailable

REQUIRED_LANGUAGES = {"python", "javascript", "c", "cpp", "java", "rust", "bash"}
REGISTRY = LanguageRegistry.detect()


@pytest.fixture(scope="session")
def engine() -> Engine:
    sandbox = Engine(registry=REGISTRY, concurrency=2)
    try:
        sandbox.check()
    except SandboxUnavailable as exc:
        unavailable("The sandbox", str(exc))
    return sandbox
