"""The deployment artefacts: linted and validated with the tools that exist without a
Docker engine (hadolint, a Compose-spec parser, systemd-analyze)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from compose_spec import PyCompose

from tests.support.services import unavailable

REPO = Path(__file__).resolve().parent.parent
UNITS = ["coderoom-api.service", "coderoom-worker.service"]


def compose() -> dict[str, Any]:
    parsed: dict[str, Any] = PyCompose.from_yaml((REPO / "compose.yaml").read_text()).to_dict()
    return parsed


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_multi_stage_and_not_root() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert text.count("\nFROM ") + text.startswith("FROM ") >= 2
    assert "USER 10001:10001" in text
    assert "bubblewrap" in text
    assert "HEALTHCHECK" in text


def test_compose_follows_the_compose_spec() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker"}


def test_every_long_running_service_has_a_health_check() -> None:
    services = compose()["services"]
    for name in ("postgres", "redis", "api", "worker"):
        assert services[name].get("healthcheck", {}).get("test"), name


def test_state_lives_in_named_volumes() -> None:
    document = compose()
    assert set(document["volumes"]) == {"pgdata", "redisdata"}
    assert "pgdata:/var/lib/postgresql/data" in document["services"]["postgres"]["volumes"]
    assert "redisdata:/data" in document["services"]["redis"]["volumes"]


def test_no_service_is_privileged_and_the_worker_asks_only_what_bwrap_needs() -> None:
    services = compose()["services"]
    assert not any(service.get("privileged") for service in services.values())
    worker = services["worker"]
    assert worker["cap_drop"] == ["ALL"]
    assert "cap_add" not in worker
    assert set(worker["security_opt"]) == {
        "no-new-privileges:true",
        "seccomp=./deploy/docker/seccomp-worker.json",
        "apparmor=unconfined",
        "systempaths=unconfined",
    }
    assert services["api"]["cap_drop"] == ["ALL"]
    assert services["api"]["read_only"] is True


def test_the_worker_seccomp_profile_adds_only_the_sandbox_calls() -> None:
    profile = json.loads((REPO / "deploy/docker/seccomp-worker.json").read_text())
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    added = profile["syscalls"][-1]
    assert added["names"] == ["clone", "unshare", "mount", "umount2", "pivot_root", "setns"]
    assert "includes" not in added


def test_the_api_starts_after_the_migration() -> None:
    services = compose()["services"]
    assert services["migrate"]["command"] == ["migrate"]
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        unavailable("systemd-analyze", "not installed")
    coderoom = Path(sys.executable).parent / "coderoom"
    for unit in UNITS:
        # The units name the packaged path; verify them against this checkout's command.
        text = (REPO / "deploy/systemd" / unit).read_text()
        (tmp_path / unit).write_text(text.replace("/opt/coderoom/bin/coderoom", str(coderoom)))
    result = subprocess.run(
        [str(analyze), "verify", *(str(tmp_path / unit) for unit in UNITS)],
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "coderoom-" not in output  # no warning about either unit


@pytest.mark.parametrize("unit", UNITS)
def test_units_stop_restarting_on_a_misconfiguration(unit: str) -> None:
    text = (REPO / "deploy/systemd" / unit).read_text()
    assert "RestartPreventExitStatus=2" in text
    assert "EnvironmentFile=/etc/coderoom/coderoom.env" in text
