"""Streamable HTTP serving: loopback by default, a bearer token everywhere else, Origin and Host checks.

The SDK's transport security does the DNS-rebinding checks (Host and Origin against allow-lists)
and the body-size cap; a bearer token is one small ASGI middleware, compared in constant time. The
middleware also tells the SDK who is calling (`scope["user"]`, the SDK's own `AuthenticatedUser`), so
the SDK binds each legacy `Mcp-Session-Id` to the token that opened it and answers another token's
replay of it exactly as it answers an id that never existed (404 "Session not found").
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .config import ConfigError, Settings

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class InsecureBind(ConfigError):
    """Serving beyond loopback without a token would hand code execution to the network."""


class BearerToken:
    """Reject every HTTP request without `Authorization: Bearer <token>` for one of the tokens."""

    def __init__(self, app: ASGIApp, tokens: list[str]) -> None:
        self.app = app
        self.expected = [f"Bearer {token}".encode() for token in tokens]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = Headers(scope=scope).get("authorization", "")
            if not any([hmac.compare_digest(given.encode(), expected) for expected in self.expected]):  # no short cut
                response = JSONResponse(
                    {"error": "missing or wrong bearer token: send 'Authorization: Bearer <RLM_AUTH_TOKEN>'"},
                    status_code=401, headers={"WWW-Authenticate": 'Bearer realm="rlm-mcp"'},
                )
                await response(scope, receive, send)
                return
            principal = token_fingerprint(given)
            scope["user"] = AuthenticatedUser(AccessToken(token=principal, client_id=principal, scopes=[]))
        await self.app(scope, receive, send)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_fingerprint(authorization: str) -> str:
    """Names a token's holder (the owner of its sessions, in logs and session keys) without keeping the token."""
    return hashlib.sha256(authorization.encode()).hexdigest()[:16]


def build_app(server: MCPServer, settings: Settings) -> ASGIApp:
    """The ASGI app for `rlm-mcp serve --http`; InsecureBind when the bind would be open to all."""
    tokens = settings.bearer_tokens()
    if not is_loopback(settings.host) and not tokens:
        raise InsecureBind(
            f"refusing to serve on {settings.host} without a bearer token: anyone who can reach it could run "
            "code in the jail and spend your worker budget. Set RLM_AUTH_TOKEN, or bind 127.0.0.1."
        )
    hosts = [*LOOPBACK_NAMES, *settings.allowed_hosts]
    if not is_loopback(settings.host):
        hosts.append(settings.host)
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[pattern for host in hosts for pattern in (host, f"{host}:*")],
        allowed_origins=[f"{scheme}://{host}:*" for scheme in ("http", "https") for host in LOOPBACK_NAMES]
        + list(settings.allowed_origins),
    )
    app = server.streamable_http_app(
        transport_security=security,
        max_request_body_size=settings.max_request_mb * 1024 * 1024,
        host=settings.host,
    )
    return BearerToken(app, tokens) if tokens else app


SHUTDOWN_GRACE_S = 2


def serve_http(server: MCPServer, settings: Settings) -> None:
    import uvicorn

    # A pod stop or a service manager sends SIGTERM: uvicorn stops accepting, gives the calls in flight
    # SHUTDOWN_GRACE_S (an exec may run for an hour), then the lifespan closes every session and its jail.
    uvicorn.run(build_app(server, settings), host=settings.host, port=settings.port, log_level="warning",
                timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
