"""The real sandbox: bubblewrap, seccomp and cgroups on this machine."""

from __future__ import annotations

import pytest

from coderoom.sandbox import Engine, SandboxUnavailable
from coderoom.sandbox.languages import LanguageRegistry, shipped_specs
from tests.support.services import unavailable

# Every language the registry ships: CI installs them all (`make runtimes`).
REQUIRED_LANGUAGES = {spec.id for spec in shipped_specs()}
REGISTRY = LanguageRegistry.detect()


@pytest.fixture(scope="session")
def engine() -> Engine:
    sandbox = Engine(registry=REGISTRY, concurrency=2)
    try:
        sandbox.check()
    except SandboxUnavailable as exc:
        unavailable("The sandbox", str(exc))
    return sandbox
