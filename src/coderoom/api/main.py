"""Entry point for uvicorn: `coderoom.api.main:create_app_from_env` (a factory)."""

from __future__ import annotations

from fastapi import FastAPI

from coderoom.api.app import create_app
from coderoom.config import Settings
from coderoom.infra.logging import configure_logging
from coderoom.infra.sentry import init_sentry


def create_app_from_env() -> FastAPI:
    """Read the environment (and `.env`), set up logging, build the app. Used by each worker."""
    settings = Settings()
    init_sentry(settings)  # first, so start-up failures are reported too
    configure_logging(settings.log_level, settings.resolved_log_format)
    return create_app(settings)
