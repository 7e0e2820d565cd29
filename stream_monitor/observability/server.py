"""The worker's HTTP endpoints: ``/metrics``, ``/healthz`` and ``/readyz`` (aiohttp).

They bind ``http.host`` (127.0.0.1 by default). Off loopback, ``http.auth_token`` is mandatory
(checked when settings load) and every request must carry it, as ``Authorization: Bearer <token>``
or as the password of HTTP basic auth, which is what browsers and Prometheus can both send.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST

from stream_monitor.config.settings import HttpSettings
from stream_monitor.errors import StreamMonitorError
from stream_monitor.observability.metrics import WorkerMetrics
from stream_monitor.observability.status import WorkerStatus

__all__ = ["auth_middleware", "start_site", "start_worker_endpoints"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _presented(header: str) -> str | None:
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


def auth_middleware(token: str | None) -> Middleware:
    """Require ``token`` on every request (no-op when None)."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is not None:
            given = _presented(request.headers.get("Authorization", ""))
            if given is None or not hmac.compare_digest(given.encode(), token.encode()):
                return web.json_response(
                    {
                        "error": "authentication required: send the http.auth_token as a bearer "
                        "token or as the basic-auth password"
                    },
                    status=401,
                    headers={"WWW-Authenticate": 'Basic realm="stream-monitor"'},
                )
        return await handler(request)

    return check


async def start_worker_endpoints(
    worker: WorkerStatus, metrics_of: WorkerMetrics, http: HttpSettings
) -> tuple[web.AppRunner, int]:
    """Serve a worker's endpoints (its status and its metrics); returns the runner (to clean
    up) and the bound port."""
    token = http.auth_token.get_secret_value() if http.auth_token else None
    app = web.Application(middlewares=[auth_middleware(token)])

    async def metrics(_: web.Request) -> web.Response:
        body = metrics_of.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(_: web.Request) -> web.Response:
        ready, reasons = worker.readiness()
        return web.json_response(
            {"status": "ready" if ready else "not ready", "reasons": reasons},
            status=200 if ready else 503,
        )

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return await start_site(
        app,
        http.host,
        http.port,
        hint="set http.port to a free port (0 picks one) or http.enabled: false",
    )


async def start_site(
    app: web.Application, host: str, port: int, *, hint: str
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on ``host:port``; returns the runner and the bound port (for port 0)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise StreamMonitorError(f"cannot serve on {host}:{port} ({exc.strerror}); {hint}") from exc
    sockets = getattr(site._server, "sockets", None) or []
    return runner, int(sockets[0].getsockname()[1]) if sockets else port
