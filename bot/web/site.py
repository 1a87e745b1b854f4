"""The campaign on the web: the page per language, its live updates (Server-Sent Events),
the badge and the counts as JSON, mounted on the bot's own web server.

Routes: `/` (language from Accept-Language, else the campaign's default) and `/<lang>/`;
`/events` and `/<lang>/events`; `/badge.svg?lang=`; `/api/counts`; a community's page
(/webpage) at `/c/<token>/`, `/c/<token>/<lang>/` and its `events`. Any other address, or a
language without a catalog, is a 404 page in the reader's language. Every client reads the
one hub's snapshot (bot/web/live.py); nothing here reads the database per request, but for
a community's count: once per snapshot and community, however many read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC

from aiohttp import web

from bot.core import i18n
from bot.core.i18n import Translator, _, normalize
from bot.services.container import Services
from bot.web.badge import render_badge
from bot.web.live import LiveCounts, Snapshot
from bot.web.metrics import Metrics
from bot.web.page import PageContext, csp, live_texts, render_not_found, render_page
from bot.web.server import WebServer
from storage.base import Tally

log = logging.getLogger(__name__)

RETRY_MS = 2000  # how soon a browser reconnects a dropped stream
EMBED_CACHE = "public, max-age=5"
TOKEN = "{token:[A-Za-z0-9_-]{16,64}}"  # a community page's part of the address
COMMUNITY_READS = 10_000  # community counts kept per snapshot (more: read again)
_QUALITY = re.compile(r"^\s*q\s*=\s*([0-9.]+)\s*$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def accepted_languages(header: str) -> list[str]:
    """The language tags of an Accept-Language header, most wanted first (q=0 left out)."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")):
        tag, _sep, params = item.strip().partition(";")
        quality = 1.0
        match = _QUALITY.match(params) if params else None
        if match:
            try:
                quality = float(match.group(1))
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, position, tag.strip()))
    return [tag for _q, _p, tag in sorted(ranked)]


class CampaignSite:
    """The page, its live stream, the badge and the JSON counts for one process."""

    def __init__(
        self, services: Services, server: WebServer, metrics: Metrics | None = None
    ) -> None:
        self.services = services
        self.hub = LiveCounts(services)
        settings = services.settings
        # The bot's Telegram username: configured, or learned by the Telegram front-end.
        self.telegram_username = settings.web_telegram_username or ""
        self._streams: Counter[str] = Counter()
        self._cache: dict[tuple[str, int, str], tuple[bytes, str]] = {}
        # The live events of the current snapshot, by language and community page.
        self._events_of = -1
        self._events: dict[tuple[str, str | None], bytes] = {}
        # A community page's count per snapshot version: one read shared by its readers.
        self._community: dict[str, tuple[int, asyncio.Future[Tally | None]]] = {}
        if metrics is not None:  # /metrics: behind its token here, when one is set
            metrics.follow(lambda: self.hub.snapshot, lambda: self.streams)
            metrics.mount(server, settings)
        server.add_get("/", self.page)
        server.add_get("/api/counts", self.counts)
        server.add_get("/badge.svg", self.badge)
        server.add_get("/events", self.events, allow_head=False)
        server.add_get("/{lang}/events", self.events, allow_head=False)
        server.add_get("/{lang}/", self.page)
        server.add_get("/{lang}", self.add_slash)
        server.add_get(f"/c/{TOKEN}/", self.community_page)
        server.add_get(f"/c/{TOKEN}/{{lang}}/", self.community_page)
        server.add_get(f"/c/{TOKEN}/{{lang}}/events", self.events, allow_head=False)
        server.add_get(f"/c/{TOKEN}", self.add_slash)
        server.add_get(f"/c/{TOKEN}/{{lang}}", self.add_slash)
        server.add_middleware(self._not_found)
        server.on_shutdown(self.close)

    async def start(self) -> None:
        """Read the counts and follow them."""
        await self.hub.start()

    async def close(self) -> None:
        """End every live stream (the server can then stop without waiting for them)."""
        await self.hub.close()

    @property
    def heartbeat(self) -> float:
        """Seconds between two comments on an idle stream; a stream whose reader left is
        noticed (and its place freed) at the next one."""
        return self.hub.heartbeat

    @heartbeat.setter
    def heartbeat(self, seconds: float) -> None:
        self.hub.heartbeat = seconds

    @property
    def streams(self) -> int:
        """Live streams open now."""
        return sum(self._streams.values())

    # -- languages -----------------------------------------------------------------------

    def _language(self, request: web.Request) -> str:
        """The reader's language: the first of Accept-Language we speak, else the default."""
        catalogs = self.services.catalogs
        for tag in accepted_languages(request.headers.get("Accept-Language", "")):
            found = normalize(tag, catalogs.languages)
            if found:
                return found
        return catalogs.default

    def _asked(self, request: web.Request) -> str | None:
        """The language the address names (`/fr/`, `?lang=fr`), None when it names one we do
        not speak, or the reader's when it names none."""
        asked = request.match_info.get("lang") or request.query.get("lang")
        if asked is None:
            return self._language(request)
        return asked if asked in self.services.catalogs.languages else None

    # -- handlers ------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.Response:
        """The campaign page, with the counts as of now."""
        language = self._asked(request)
        if language is None:
            return self.not_found(request)
        return self._render(request, language, None)

    async def community_page(self, request: web.Request) -> web.Response:
        """A community's page (made by its admins with /webpage): its count next to the
        coalition's; 404 once they take it down."""
        language = self._asked(request)
        if language is None:
            return self.not_found(request)
        try:
            tally = await self._community_tally(request.match_info["token"])
        except Exception:
            log.warning("community page: could not read its count", exc_info=True)
            with i18n.use(self.services.catalogs.get(language)):
                text = _("The count cannot be read right now. Try again in a minute.")
            return web.Response(status=503, text=text, headers={"Retry-After": "60"})
        if tally is None or tally.community is None:
            return self.not_found(request)
        return self._render(request, language, tally.community)

    def _render(self, request: web.Request, language: str, community: int | None) -> web.Response:
        services = self.services
        campaign = services.campaign
        translator = services.catalogs.get(language)
        with i18n.use(translator):
            message = campaign.message(language)
        username = self.telegram_username
        context = PageContext(
            language=language,
            languages=services.catalogs.languages,
            root="" if request.match_info.get("lang") is None else "../",
            message=message,
            telegram=f"https://t.me/{username}?start=pledge" if username else None,
            discord=services.settings.web_discord_invite,
            canonical=services.settings.web_public_url,
            now=services.clock(),
            zone=campaign.zone,
            length=campaign.length,
            community=community,
        )
        body = render_page(self.hub.snapshot, translator, context)
        response = web.Response(text=body, content_type="text/html", charset="utf-8")
        response.headers.update(self._page_headers(language))
        if request.match_info.get("lang") is None:
            response.headers["Vary"] = "Accept-Language"
        return response

    async def _community_tally(self, token: str) -> Tally | None:
        """A community page's counts as of the hub's snapshot (None: no such page): read
        once per snapshot, whoever asks."""
        version = self.hub.snapshot.version
        found = self._community.get(token)
        if found is None or found[0] != version:
            if len(self._community) >= COMMUNITY_READS:
                self._community.clear()
            future: asyncio.Future[Tally | None] = asyncio.ensure_future(
                self.services.storage.web_page_tally(self.services.campaign.id, token)
            )
            found = (version, future)
            self._community[token] = found
        try:
            return await asyncio.shield(found[1])
        except Exception:
            if self._community.get(token) is found:
                del self._community[token]  # the next reader tries again
            raise

    def _page_headers(self, language: str) -> dict[str, str]:
        return {
            "Cache-Control": "no-cache",
            "Content-Language": language,
            "Content-Security-Policy": csp(),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }

    async def add_slash(self, request: web.Request) -> web.StreamResponse:
        """`/fr` is `/fr/` (and `/c/<token>/fr` is `/c/<token>/fr/`); any other word is not
        a page."""
        language = request.match_info.get("lang")
        if language is not None and language not in self.services.catalogs.languages:
            return self.not_found(request)
        raise web.HTTPPermanentRedirect(request.path.rsplit("/", 1)[-1] + "/")

    def not_found(self, request: web.Request) -> web.Response:
        """The 404 page in the reader's language (the one the address names, if we speak it)."""
        languages = self.services.catalogs.languages
        named = [part for part in request.path.split("/") if part in languages]
        language = named[-1] if named else self._language(request)
        depth = request.path.count("/") - 1
        body = render_not_found(self.services.catalogs.get(language), "../" * max(depth, 0))
        response = web.Response(status=404, text=body, content_type="text/html", charset="utf-8")
        response.headers.update(self._page_headers(language))
        return response

    @web.middleware
    async def _not_found(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPNotFound:
            if request.method not in ("GET", "HEAD"):
                raise
            return self.not_found(request)

    async def counts(self, request: web.Request) -> web.Response:
        """The counts as JSON, for embedding: cached a few seconds, readable from any site."""
        snapshot = self.hub.snapshot
        body, etag = self._cached("json", snapshot, lambda: self._json(snapshot))
        return self._embeddable(request, body, etag, "application/json")

    def _json(self, snapshot: Snapshot) -> bytes:
        return json.dumps(
            {
                "campaign": self.services.campaign.slug,
                "pledged": snapshot.pledged,
                "froze": snapshot.froze,
                "goal": snapshot.goal,
                "updated_at": snapshot.updated_at.astimezone(UTC).isoformat(),
            }
        ).encode()

    async def badge(self, request: web.Request) -> web.Response:
        """The SVG badge in the asked language (`?lang=`), cached like the JSON."""
        language = self._asked(request)
        if language is None:
            return self.not_found(request)
        snapshot = self.hub.snapshot
        translator = self.services.catalogs.get(language)
        body, etag = self._cached(
            f"badge:{language}",
            snapshot,
            lambda: render_badge(snapshot, translator).encode(),
        )
        response = self._embeddable(request, body, etag, "image/svg+xml")
        response.headers["Content-Language"] = language
        return response

    def _cached(
        self, what: str, snapshot: Snapshot, build: Callable[[], bytes]
    ) -> tuple[bytes, str]:
        """A body built once per snapshot, and its ETag."""
        key = (what, snapshot.version, snapshot.updated_at.isoformat())
        found = self._cache.get(key)
        if found is None:
            body = build()
            found = (body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
            self._cache = {k: v for k, v in self._cache.items() if k[1] == snapshot.version}
            self._cache[key] = found
        return found

    def _embeddable(
        self, request: web.Request, body: bytes, etag: str, content_type: str
    ) -> web.Response:
        headers = {
            "ETag": etag,
            "Cache-Control": EMBED_CACHE,
            "Access-Control-Allow-Origin": "*",
            "X-Content-Type-Options": "nosniff",
        }
        wanted = request.headers.get("If-None-Match", "")
        tags = {tag.strip().removeprefix("W/") for tag in wanted.split(",")}
        if "*" in tags or etag in tags:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type=content_type, headers=headers)

    # -- live stream ---------------------------------------------------------------------

    def _address(self, request: web.Request) -> str:
        """Who is connecting: the peer, or the client a trusted proxy names."""
        if self.services.settings.web_trust_forwarded:
            forwarded = request.headers.get("X-Forwarded-For", "")
            last = forwarded.rsplit(",", 1)[-1].strip()
            if last:
                return last
        return request.remote or "?"

    async def events(self, request: web.Request) -> web.StreamResponse:
        """The page's live counts as Server-Sent Events: the current ones at once, then each
        new snapshot (at most one a second), formatted for the page's language."""
        language = self._asked(request)
        if language is None:
            return self.not_found(request)
        token = request.match_info.get("token")
        if token is not None:
            tally = await self._community_tally(token)
            if tally is None:  # a page taken down: 404 ends the browser's reconnecting
                return self.not_found(request)
        address = self._address(request)
        if self._streams[address] >= self.services.settings.web_streams_per_address:
            with i18n.use(self.services.catalogs.get(language)):
                text = _(
                    "Too many live connections from your address. Close a few tabs and try again."
                )
            log.info("live stream refused: too many from one address")
            return web.Response(status=429, text=text, headers={"Retry-After": "30"})
        self._streams[address] += 1
        try:
            return await self._stream(request, self.services.catalogs.get(language), token)
        finally:
            self._streams[address] -= 1
            if self._streams[address] <= 0:
                del self._streams[address]

    async def _stream(
        self, request: web.Request, translator: Translator, token: str | None
    ) -> web.StreamResponse:
        hub = self.hub
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # nginx: pass each event on at once
            }
        )
        await response.prepare(request)
        shown = -1
        slice_ = hub.slice()
        with contextlib.suppress(ConnectionError):
            await response.write(f"retry: {RETRY_MS}\n\n".encode())
            while not hub.closing:
                changed = hub.changed(slice_)
                snapshot = hub.snapshot
                if snapshot.version != shown:
                    if token is None:
                        event = self._event(snapshot, translator)
                    else:
                        try:
                            tally = await self._community_tally(token)
                        except Exception:
                            log.warning("community page: could not read its count", exc_info=True)
                            break  # the browser tries again in RETRY_MS
                        if tally is None or tally.community is None:
                            break  # taken down: the browser's next try gets a 404
                        event = self._event(snapshot, translator, token, tally.community)
                    await response.write(event)
                    shown = snapshot.version
                    continue
                await changed.wait()  # a new snapshot, or the hub's beat
                if hub.snapshot.version == shown and not hub.closing:
                    await response.write(b": still here\n\n")
        return response

    def _event(
        self,
        snapshot: Snapshot,
        translator: Translator,
        token: str | None = None,
        community: int | None = None,
    ) -> bytes:
        """One `message` event with the page's texts; built once per snapshot and language
        (and community, on a community's page): ten thousand readers of one page share it."""
        if self._events_of != snapshot.version:
            self._events_of, self._events = snapshot.version, {}
        key = (translator.locale, token)
        found = self._events.get(key)
        if found is None:
            texts = live_texts(snapshot, translator, community)
            data = json.dumps(texts, ensure_ascii=False)
            found = self._events[key] = f"data: {data}\n\n".encode()
        return found
