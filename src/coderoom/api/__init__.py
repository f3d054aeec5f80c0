"""The HTTP entry point: app factory, middleware, error rendering, routers."""

from coderoom.api.app import create_app

__all__ = ["create_app"]
