"""API keys with scopes: off when no key is configured; 401 without a valid key, 403 without the scope."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader

from serving.settings import ServingSettings

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key (when auth is on)")


def require_scope(scope: str) -> Callable:
    async def check(request: Request, api_key: str | None = Depends(api_key_header)) -> None:
        settings: ServingSettings = request.app.state.settings
        if not settings.api_keys:
            return
        if api_key is None or api_key not in settings.api_keys:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or unknown API key (header X-API-Key)",
                                headers={"WWW-Authenticate": "ApiKey"})
        if scope not in settings.api_keys[api_key]:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this API key lacks the scope {scope!r}")

    return Depends(check)


def scope_dependencies(scope: str, settings: ServingSettings) -> list:
    """Router dependencies for ``scope``: none at all when auth is off, so the storefront's hot paths
    pay nothing for a check that cannot fail."""
    return [require_scope(scope)] if settings.api_keys else []
