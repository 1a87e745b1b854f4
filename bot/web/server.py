"""The bot's own web server (aiohttp): Telegram's webhook and a health check, one server for
everything the bot serves over HTTP."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)

RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebServer:
    """One aiohttp application; front-ends add their routes before it starts."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.requested_port = port
        self.app = web.Application(client_max_size=1024 * 1024)
        self.app.router.add_get("/healthz", self._health)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    def add_post(self, path: str, handler: RouteHandler) -> None:
        """Serve POST requests on path."""
        self.app.router.add_post(path, handler)

    async def start(self) -> None:
        """Bind and serve."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self.requested_port)
        await self._site.start()
        log.info("web server listening on %s:%d", self.host, self.port)

    @property
    def port(self) -> int:
        """The port actually bound (useful when 0 was asked for)."""
        if self._runner is None or not self._runner.addresses:
            return self.requested_port
        return int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})
