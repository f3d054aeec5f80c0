"""`coderoom runtimes`: the install plan is a pure function; list and install run for real
(install only as --dry-run: the suite never installs packages)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from coderoom.cli.runtimes import APT_LOCK_WAIT, plan
from coderoom.sandbox.languages import RUNTIMES_PREFIX, LanguageSpec, shipped_specs


def spec_named(language_id: str) -> LanguageSpec:
    return next(s for s in shipped_specs() if s.id == language_id)


def coderoom(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANGUAGES")}
    return subprocess.run(
        [sys.executable, "-m", "coderoom", "runtimes", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_apt_packages_are_installed_in_one_command_after_one_update() -> None:
    steps = plan([spec_named("haskell"), spec_named("go"), spec_named("c")])
    assert [step.argv for step in steps] == [
        ("apt-get", *APT_LOCK_WAIT, "update", "-qq"),
        (
            "apt-get", *APT_LOCK_WAIT, "install", "-y", "-qq", "--no-install-recommends",
            "gcc", "ghc", "golang-go", "libc6-dev",
        ),
    ]  # fmt: skip
    assert dict(steps[1].env) == {"DEBIAN_FRONTEND": "noninteractive"}


def test_npm_runtimes_install_from_the_committed_lock_file() -> None:
    steps = plan([spec_named("typescript")])
    npm = steps[-1]
    assert npm.argv[:2] == ("npm", "ci")
    assert npm.cwd == f"{RUNTIMES_PREFIX}/typescript"
    sources = [source for source, _ in npm.copy]
    assert [os.path.basename(s) for s in sources] == ["package.json", "package-lock.json"]
    assert all(os.path.isfile(source) for source in sources)
    lock = json.loads(Path(sources[1]).read_text())
    assert lock["packages"]["node_modules/typescript"]["version"] == "7.0.2"


def test_pypi_runtimes_install_pinned_into_the_prefix() -> None:
    (step,) = plan([spec_named("zig")], python="/usr/bin/python3")
    assert step.argv[-3:] == ("--target", f"{RUNTIMES_PREFIX}/zig", "ziglang==0.15.2")
    assert step.argv[0] == "/usr/bin/python3"


def test_sudo_lines_are_what_a_non_root_operator_pastes() -> None:
    _, install = plan([spec_named("lua")])
    assert install.shell(sudo=True) == (
        "sudo DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "
        "--no-install-recommends lua5.4"
    )


def test_list_reports_every_language_with_its_installed_version() -> None:
    done = coderoom("list", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["id"]: row for row in json.loads(done.stdout)}
    assert set(rows) == {s.id for s in shipped_specs()}
    assert rows["python"]["installed"] is True
    assert rows["python"]["version"].startswith("3.")
    assert rows["python"]["default"] is True


def test_install_of_what_is_here_does_nothing() -> None:
    done = coderoom("install", "python", "sh")
    assert done.returncode == 0, done.stderr
    assert "already installed: python, bash" in done.stdout


def test_install_refuses_an_unknown_language() -> None:
    done = coderoom("install", "brainfuck")
    assert done.returncode == 2
    assert "unknown language brainfuck" in done.stderr
