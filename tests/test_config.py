"""Configuration: URL normalisation, list parsing, and production refusals."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from coderoom.config import DatabaseSSL, Settings, describe_error, normalize_database_url
from tests.conftest import make_settings

STRONG_SECRET = "x" * 48
PG_URL = "postgresql+asyncpg://u:p@db/coderoom"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+asyncpg://u:p@db:5432/app"),
        ("postgresql://u:p@db/app", "postgresql+asyncpg://u:p@db/app"),
        ("postgresql+asyncpg://u:p@db/app", "postgresql+asyncpg://u:p@db/app"),
        ("sqlite:///data/app.sqlite3", "sqlite+aiosqlite:///data/app.sqlite3"),
        ("sqlite+aiosqlite:///app.sqlite3", "sqlite+aiosqlite:///app.sqlite3"),
    ],
)
def test_pasted_database_urls_are_normalised(raw: str, expected: str) -> None:
    url, ssl = normalize_database_url(raw)
    assert url.render_as_string(hide_password=False) == expected
    assert ssl is None


def test_libpq_sslmode_becomes_database_ssl() -> None:
    settings = make_settings(database_url="postgres://u:p@db/app?sslmode=require")
    assert "sslmode" not in settings.sqlalchemy_url.query
    assert settings.resolved_database_ssl is DatabaseSSL.REQUIRE


def test_explicit_database_ssl_wins_over_sslmode() -> None:
    settings = make_settings(
        database_url="postgres://u:p@db/app?sslmode=require", database_ssl="disable"
    )
    assert settings.resolved_database_ssl is DatabaseSSL.DISABLE


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(ValidationError, match="unsupported database"):
        make_settings(database_url="mysql://u:p@db/app")


def test_comma_separated_lists_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.1, 192.168.0.0/16,::1")
    settings = Settings(_env_file=None)
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.trusted_proxies == [
        ipaddress.ip_network("10.0.0.1/32"),
        ipaddress.ip_network("192.168.0.0/16"),
        ipaddress.ip_network("::1/128"),
    ]


def test_port_defaults_to_4000() -> None:
    assert Settings(_env_file=None).port == 4000


def test_pool_may_not_exceed_twenty_connections() -> None:
    with pytest.raises(ValidationError, match="must not exceed 20"):
        make_settings(database_pool_size=15, database_max_overflow=10)


def _production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "production",
        "jwt_secret": STRONG_SECRET,
        "database_url": PG_URL,
        "cors_origins": "https://app.example",
        "log_format": None,
    }
    values.update(overrides)
    return make_settings(**values)


def test_sound_production_settings_are_accepted() -> None:
    settings = _production()
    assert settings.is_production
    assert settings.resolved_log_format == "json"


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"jwt_secret": "coderoom-development-secret-do-not-use-in-production"}, "JWT_SECRET"),
        ({"jwt_secret": ""}, "JWT_SECRET"),
        ({"jwt_secret": "short-secret"}, "JWT_SECRET"),
        ({"database_url": "sqlite:///prod.sqlite3"}, "DATABASE_URL"),
        ({"cors_origins": "*"}, "CORS_ORIGINS"),
        ({"cors_origins": "http://localhost:3000,http://localhost:4000"}, "CORS_ORIGINS"),
        ({"metrics_token": "short"}, "METRICS_TOKEN"),
        ({"rate_limit_enabled": False}, "RATE_LIMIT_ENABLED"),
    ],
)
def test_production_refuses_unsafe_values(overrides: dict[str, object], variable: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _production(**overrides)
    assert variable in describe_error(caught.value)


def test_serve_refuses_to_start_with_one_line_naming_the_variable() -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JWT_", "DATABASE_", "CORS_"))
    }
    env.update(
        {"ENVIRONMENT": "production", "DATABASE_URL": PG_URL, "CORS_ORIGINS": "https://a.example"}
    )
    result = subprocess.run(
        [sys.executable, "-m", "coderoom", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "JWT_SECRET" in lines[0]


@pytest.mark.parametrize(
    ("args", "env"), [(["--workers", "2"], {}), ([], {"WORKERS": "3"})], ids=["flag", "env"]
)
def test_several_processes_without_redis_are_refused(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    """Each process's start-up recovery would re-run its siblings' running executions."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "WORKERS"))}
    environment.update({"ENVIRONMENT": "test", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    result = subprocess.run(
        [sys.executable, "-m", "coderoom", "serve", *args],
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "WORKERS > 1 needs REDIS_URL" in lines[0]
    assert not (tmp_path / "x.db").exists()  # refused before touching anything


def test_env_example_documents_every_setting() -> None:
    text = (Path(__file__).resolve().parent.parent / "env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert {name.upper() for name in Settings.model_fields} <= documented


def test_development_binds_loopback_and_production_all_interfaces() -> None:
    assert make_settings(environment="development").host == "127.0.0.1"
    assert _production().host == "0.0.0.0"
    assert make_settings(host="0.0.0.0").host == "0.0.0.0"


@pytest.mark.parametrize(
    ("database_url", "prefix"),
    [
        ("postgresql://u:p@db/coderoom_prod", "coderoom_prod"),
        ("sqlite:///var/lib/coderoom/team-a.sqlite3", "team-a"),
        ("sqlite+aiosqlite:///:memory:", "coderoom"),
    ],
)
def test_redis_prefix_defaults_to_the_database_name(database_url: str, prefix: str) -> None:
    settings = make_settings(database_url=database_url, redis_prefix=None)
    assert settings.resolved_redis_prefix == prefix


def test_a_redis_prefix_with_a_colon_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"redis_prefix"):
        make_settings(redis_prefix="a:b")


def test_languages_allow_list_comes_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGUAGES", "python, c ,")
    assert Settings(_env_file=None).languages == ["python", "c"]
    monkeypatch.setenv("LANGUAGES", "")
    assert Settings(_env_file=None).languages is None


def test_a_languages_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not a readable file"):
        make_settings(languages_file=tmp_path / "missing.toml")
    data = tmp_path / "languages.toml"
    data.write_text("")
    assert make_settings(languages_file=data).language_files == (data,)
