"""A small Discord REST server on 127.0.0.1 for rate-limit tests.

simcord replaces discord.py's HTTP layer, so its buckets, headers and 429 handling never run
there. This server is reached through discord.py's real HTTP client instead: it answers the
few routes a bot uses to post and edit messages, with Discord's rate-limit headers, and
Discord-shaped 429s (JSON body with ``retry_after`` and ``global``, a ``Via`` header, as
discord.py expects from Discord itself rather than from Cloudflare).
"""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict, deque
from typing import Any

import discord
from aiohttp import web
from discord.http import Route

BOT_USER = {
    "id": "4242",
    "username": "coalition-bot",
    "discriminator": "0",
    "global_name": None,
    "avatar": None,
    "bot": True,
}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # exactly "application/json": with a charset discord.py would read the body as text
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


class FakeDiscordREST:
    """Discord's REST routes for messages, with a global limit and per-channel buckets."""

    def __init__(
        self, *, global_per_second: int = 50, per_channel: int = 5, channel_window: float = 5.0
    ) -> None:
        self.global_per_second = global_per_second
        self.per_channel = per_channel
        self.channel_window = channel_window
        self.accepted: list[tuple[str, int, dict[str, Any]]] = []
        self.rejected_429 = 0
        self.global_429 = 0
        self._global: deque[float] = deque()
        self._channels: dict[int, deque[float]] = defaultdict(deque)
        self._ids = itertools.count(10_000)
        self.callbacks: dict[int, tuple[float, dict[str, Any]]] = {}  # interaction id -> answer
        self.edits: list[tuple[float, int, dict[str, Any]]] = []  # (time, message id, payload)
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def __aenter__(self) -> FakeDiscordREST:
        app = web.Application()
        app.router.add_get("/api/v10/users/@me", self._me)
        app.router.add_get("/api/v10/oauth2/applications/@me", self._application)
        app.router.add_post("/api/v10/channels/{channel}/messages", self._post)
        app.router.add_patch("/api/v10/channels/{channel}/messages/{message}", self._patch)
        app.router.add_post("/api/v10/interactions/{id}/{token}/callback", self._callback)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}/api/v10"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def point(self, client: discord.Client) -> None:
        """Send this client's REST calls here (only this client's; Route.BASE is untouched)."""
        original = client.http.request

        async def request(route: Route, **kwargs: Any) -> Any:
            if route.url.startswith(Route.BASE):
                route.url = self.base + route.url[len(Route.BASE) :]
            return await original(route, **kwargs)

        client.http.request = request  # type: ignore[method-assign]

    # -- limits ------------------------------------------------------------------------

    def _limited(self, channel: int) -> web.Response | None:
        now = time.monotonic()
        window = self._global
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= self.global_per_second:
            self.rejected_429 += 1
            self.global_429 += 1
            retry = max(0.01, 1.0 - (now - window[0]))
            return _json(
                {"message": "You are being rate limited.", "retry_after": retry, "global": True},
                429,
                {
                    "Via": "1.1 google",
                    "X-RateLimit-Global": "true",
                    "X-RateLimit-Scope": "global",
                    "Retry-After": str(max(1, round(retry))),
                },
            )
        bucket = self._channels[channel]
        while bucket and now - bucket[0] >= self.channel_window:
            bucket.popleft()
        if len(bucket) >= self.per_channel:
            self.rejected_429 += 1
            retry = max(0.01, self.channel_window - (now - bucket[0]))
            return _json(
                {"message": "You are being rate limited.", "retry_after": retry, "global": False},
                429,
                {
                    **self._bucket_headers(channel, 0, retry),
                    "Via": "1.1 google",
                    "X-RateLimit-Scope": "user",
                },
            )
        window.append(now)
        bucket.append(now)
        return None

    def _bucket_headers(self, channel: int, remaining: int, reset_after: float) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.per_channel),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Bucket": f"channel-{channel}",
        }

    def _ok(self, channel: int, body: dict[str, Any]) -> web.Response:
        bucket = self._channels[channel]
        remaining = max(0, self.per_channel - len(bucket))
        reset_after = self.channel_window - (time.monotonic() - bucket[0]) if bucket else 0.0
        return _json(body, 200, self._bucket_headers(channel, remaining, max(0.0, reset_after)))

    # -- routes ------------------------------------------------------------------------

    async def _me(self, request: web.Request) -> web.Response:
        return _json(BOT_USER)

    async def _application(self, request: web.Request) -> web.Response:
        return _json(
            {
                "id": BOT_USER["id"],
                "name": "coalition-bot",
                "icon": None,
                "description": "",
                "summary": "",
                "bot_public": False,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": 0,
                "owner": {**BOT_USER, "id": "1", "bot": False, "username": "owner"},
            }
        )

    def _message(self, channel: int, message_id: int, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(message_id),
            "channel_id": str(channel),
            "type": 0,
            "content": payload.get("content") or "",
            "author": BOT_USER,
            "embeds": payload.get("embeds") or [],
            "attachments": [],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": False,
            "timestamp": "2026-12-01T12:00:00+00:00",
            "edited_timestamp": None,
            "flags": 0,
            "components": payload.get("components") or [],
        }

    async def _post(self, request: web.Request) -> web.Response:
        channel = int(request.match_info["channel"])
        limited = self._limited(channel)
        if limited is not None:
            return limited
        payload = await request.json()
        self.accepted.append(("POST", channel, payload))
        return self._ok(channel, self._message(channel, next(self._ids), payload))

    async def _patch(self, request: web.Request) -> web.Response:
        channel = int(request.match_info["channel"])
        limited = self._limited(channel)
        if limited is not None:
            return limited
        payload = await request.json()
        self.accepted.append(("PATCH", channel, payload))
        message = int(request.match_info["message"])
        self.edits.append((time.monotonic(), message, payload))
        return self._ok(channel, self._message(channel, message, payload))

    async def _callback(self, request: web.Request) -> web.Response:
        """An interaction's first answer: free of the bot's global limit, as on Discord."""
        interaction = int(request.match_info["id"])
        payload = await request.json()
        self.callbacks[interaction] = (time.monotonic(), payload)
        data = payload.get("data") or {}
        message = self._message(0, next(self._ids), data)
        message["flags"] = data.get("flags", 0)
        body = {
            "interaction": {
                "id": str(interaction),
                "type": 3,
                "response_message_id": message["id"],
                "response_message_ephemeral": bool(message["flags"] & 64),
            },
            "resource": {"type": payload.get("type", 4), "message": message},
        }
        return _json(body)
