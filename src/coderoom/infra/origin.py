"""The public origin of this service, for links it hands out (invite URLs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from coderoom.config import Settings
from coderoom.core.net import request_origin


def public_url(request: Request) -> str:
    """PUBLIC_URL when set; else the origin the client used (through trusted proxies), and
    as a last resort the address the server listens on."""
    settings = request.app.state.settings
    assert isinstance(settings, Settings)
    if settings.public_url is not None:
        return settings.public_url
    client = request.scope.get("client")
    origin = request_origin(
        scheme=request.url.scheme,
        host=request.headers.get("host"),
        peer=client[0] if client else None,
        forwarded_proto=request.headers.get("x-forwarded-proto"),
        forwarded_host=request.headers.get("x-forwarded-host"),
        trusted_proxies=settings.trusted_proxies,
    )
    if origin is not None:
        return origin
    host, port = request.scope.get("server") or ("localhost", None)
    return f"{request.url.scheme}://{host}" + (f":{port}" if port else "")


PublicUrl = Annotated[str, Depends(public_url)]
