"""A small Discord REST server on 127.0.0.1 for rate-limit and crash tests.

simcord replaces discord.py's HTTP layer, so its buckets, headers and 429 handling never run
there. This server is reached through discord.py's real HTTP client instead: it answers the
few routes a bot uses to post and edit messages, with Discord's rate-limit headers, and
Discord-shaped 429s (JSON body with ``retry_after`` and ``global``, a ``Via`` header, as
discord.py expects from Discord itself rather than from Cloudflare).

Private messages work as on Discord: ``GET /users/{id}`` answers a user,
``POST /users/@me/channels`` opens (or gives back) the one DM channel with a recipient, and
``POST /channels/{id}/messages`` honours ``nonce`` with ``enforce_nonce``: a second message
with the same nonce in the same channel within ``nonce_window`` seconds ("the past few
minutes", in Discord's words) gets the original message back and creates nothing. The test
reads what was really created from :attr:`created` and how many resends the nonce absorbed
from :attr:`nonce_hits`.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable
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
NONCE_MAX_LENGTH = 25  # Discord refuses a longer string nonce (Invalid Form Body)
DM_CHANNEL = 1  # channel type of a direct message


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
        self,
        *,
        global_per_second: int = 50,
        per_channel: int = 5,
        channel_window: float = 5.0,
        nonce_window: float = 300.0,
    ) -> None:
        self.global_per_second = global_per_second
        self.per_channel = per_channel
        self.channel_window = channel_window
        self.nonce_window = nonce_window
        self.accepted: list[tuple[str, int, dict[str, Any]]] = []
        # channel id -> every message really created there, in order (resends absorbed by
        # their nonce are not in it)
        self.created: dict[int, list[dict[str, Any]]] = defaultdict(list)
        self.nonce_hits = 0  # messages not created because their nonce was seen already
        self.dm_channels: dict[int, int] = {}  # recipient user id -> their DM channel id
        # called with (channel id, message) as each message is created, before the answer
        self.on_created: Callable[[int, dict[str, Any]], None] | None = None
        self._nonces: dict[tuple[int, str], tuple[float, dict[str, Any]]] = {}
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
        app.router.add_post("/api/v10/users/@me/channels", self._open_dm)
        app.router.add_get("/api/v10/users/{user}", self._user)
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

    # -- observing ---------------------------------------------------------------------

    @property
    def created_count(self) -> int:
        """How many messages were really created, in every channel."""
        return sum(len(messages) for messages in self.created.values())

    def dm_messages(self, user_id: int) -> list[dict[str, Any]]:
        """The messages created in the DM channel with this user (none if never opened)."""
        channel = self.dm_channels.get(user_id)
        return list(self.created.get(channel, ())) if channel is not None else []

    # -- limits ------------------------------------------------------------------------

    def _global_full(self, now: float) -> web.Response | None:
        """The global limit's 429 if one more request now would break it (nothing counted)."""
        window = self._global
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) < self.global_per_second:
            return None
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

    def _limited(self, channel: int) -> web.Response | None:
        now = time.monotonic()
        refused = self._global_full(now)
        if refused is not None:
            return refused
        window = self._global
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

    def _user_object(self, user_id: int) -> dict[str, Any]:
        return {
            "id": str(user_id),
            "username": f"volunteer{user_id}",
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
        }

    async def _user(self, request: web.Request) -> web.Response:
        try:
            user_id = int(request.match_info["user"])
        except ValueError:
            return _json({"message": "404: Not Found", "code": 0}, 404)
        return _json(self._user_object(user_id))

    async def _open_dm(self, request: web.Request) -> web.Response:
        """Create DM: the channel with that recipient, the same one every time."""
        payload = await request.json()
        try:
            user_id = int(payload["recipient_id"])
        except (KeyError, TypeError, ValueError):
            return _json(
                {"message": "Invalid Form Body", "code": 50035, "errors": {"recipient_id": {}}},
                400,
            )
        channel = self.dm_channels.get(user_id)
        if channel is None:
            channel = self.dm_channels[user_id] = next(self._ids)
        return _json(
            {
                "id": str(channel),
                "type": DM_CHANNEL,
                "last_message_id": None,
                "flags": 0,
                "recipients": [self._user_object(user_id)],
            }
        )

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
            **({"nonce": payload["nonce"]} if payload.get("nonce") is not None else {}),
        }

    async def _post(self, request: web.Request) -> web.Response:
        channel = int(request.match_info["channel"])
        limited = self._limited(channel)
        if limited is not None:
            return limited
        payload = await request.json()
        nonce = payload.get("nonce")
        if isinstance(nonce, str) and len(nonce) > NONCE_MAX_LENGTH:
            return _json(
                {
                    "message": "Invalid Form Body",
                    "code": 50035,
                    "errors": {"nonce": {"_errors": [{"code": "BASE_TYPE_BAD_LENGTH"}]}},
                },
                400,
            )
        self.accepted.append(("POST", channel, payload))
        now = time.monotonic()
        key = (channel, str(nonce))
        if nonce is not None and payload.get("enforce_nonce"):
            seen = self._nonces.get(key)
            if seen is not None and now - seen[0] < self.nonce_window:
                self.nonce_hits += 1
                return self._ok(channel, seen[1])  # the original message; nothing new
        message = self._message(channel, next(self._ids), payload)
        self.created[channel].append(message)
        if nonce is not None:
            self._nonces[key] = (now, message)
        if self.on_created is not None:
            self.on_created(channel, message)
        return self._ok(channel, message)

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
