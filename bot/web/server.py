"""The bot's own web server (aiohttp): Telegram's webhook, a health check and the campaign's
page (bot/web/site.py), one server for everything the bot serves over HTTP."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)

RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, RouteHandler], Awaitable[web.StreamResponse]]


class WebServer:
    """One aiohttp application; front-ends add their routes before it starts."""

    def __init__(self, host: str, port: int, *, health: bool = True) -> None:
        self.host = host
        self.requested_port = port
        self.app = web.Application(client_max_size=1024 * 1024)
        if health:  # not on the bind that serves /metrics alone
            self.app.router.add_get("/healthz", self._health)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    def add_post(self, path: str, handler: RouteHandler) -> None:
        """Serve POST requests on path."""
        self.app.router.add_post(path, handler)

    def add_get(self, path: str, handler: RouteHandler, *, allow_head: bool = True) -> None:
        """Serve GET (and HEAD) requests on path."""
        self.app.router.add_get(path, handler, allow_head=allow_head)

    def add_middleware(self, middleware: Middleware) -> None:
        """Run `middleware` around every request (before the server starts)."""
        self.app.middlewares.append(middleware)

    def on_shutdown(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Call `callback` when the server stops, before it waits for open requests (long
        ones, such as live streams, must end there)."""

        async def call(_app: web.Application) -> None:
            await callback()

        self.app.on_shutdown.append(call)

    async def start(self, *, any_port_if_taken: bool = False) -> None:
        """Bind and serve; with `any_port_if_taken`, a port the system picks when the one
        asked for is in use (the console, on a developer's machine)."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self.requested_port)
        try:
            await self._site.start()
        except OSError:
            if not any_port_if_taken or self.requested_port == 0:
                await self._runner.cleanup()
                self._runner = None
                raise
            log.info("port %d is taken: the web server takes another", self.requested_port)
            self._site = web.TCPSite(self._runner, self.host, 0)
            await self._site.start()
        log.info("web server listening on %s:%d", self.host, self.port)

    @property
    def url(self) -> str:
        """The address the server answers at, e.g. http://127.0.0.1:8080/."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

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
