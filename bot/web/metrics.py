"""What the bot does, for an organizer's Prometheus: `/metrics` in the text format.

One `Metrics` per process, made by the composition root (nothing at import time, no global
registry): it is the process's `Services.telemetry`, so the dispatcher, the outbox and the
front-ends count into it, and the campaign site hands it its live counts. Scraping reads no
database: the pledges and check-ins come from the live hub's snapshot (bot/web/live.py).

Not public: served on the web server only behind `COALITION_METRICS_TOKEN` (a bearer
token), or on a bind of its own (`COALITION_METRICS_HOST` / `COALITION_METRICS_PORT`,
meant for 127.0.0.1 or a private network). Labels never carry what a user typed: commands
are registered names, "text" or "unknown".
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from bot.core.settings import Settings
from bot.services.container import Telemetry
from bot.web.live import Snapshot
from bot.web.server import WebServer

log = logging.getLogger(__name__)

# Handler latency buckets, seconds: a pledge takes about 100 µs, a slow database seconds.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class _Live(Collector):
    """The gauges read at each scrape: the hub's snapshot and the open live streams."""

    def __init__(self) -> None:
        self.snapshot: Callable[[], Snapshot] | None = None
        self.streams: Callable[[], int] | None = None

    def collect(self) -> Iterable[Metric]:
        """The campaign's counts and the live streams, as of now (nothing when unknown)."""
        if self.snapshot is not None:
            try:
                snapshot = self.snapshot()
            except RuntimeError:  # the hub has not read the counts yet
                snapshot = None
            if snapshot is not None:
                yield GaugeMetricFamily(
                    "coalition_pledges",
                    "Volunteers who pledged (the campaign's total).",
                    value=snapshot.pledged,
                )
                yield GaugeMetricFamily(
                    "coalition_checkins",
                    "Volunteers who said at the check-in (/done) that they froze their accounts.",
                    value=snapshot.froze,
                )
                yield GaugeMetricFamily(
                    "coalition_goal", "The campaign's goal, in pledges.", value=snapshot.goal
                )
        if self.streams is not None:
            yield GaugeMetricFamily(
                "coalition_live_streams",
                "Live connections (Server-Sent Events) open to the campaign page.",
                value=self.streams(),
            )


class Metrics(Telemetry):
    """The process's counters and gauges, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        registry = self.registry
        self._commands = Counter(
            "coalition_commands",
            "Invocations handled, by command (registered name, text or unknown), platform "
            "and outcome (answered, refused, failed, flood_limited, storage_failing).",
            ("command", "platform", "outcome"),
            registry=registry,
        )
        self._latency = Histogram(
            "coalition_command_seconds",
            "Time to answer one invocation, by command (seconds).",
            ("command",),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._deliveries = Counter(
            "coalition_deliveries",
            "Outbox delivery attempts sent by this process, by platform and outcome (sent, "
            "unreachable, retry, failed, unknown: may have arrived, never resent; "
            "rate_limited: given back to wait).",
            ("platform", "outcome"),
            registry=registry,
        )
        self._rate_limited = Counter(
            "coalition_rate_limited",
            "Requests the platform answered with 429 (retry after), by platform.",
            ("platform",),
            registry=registry,
        )
        self._board_edits = Counter(
            "coalition_board_edits",
            "Live board messages edited, by platform.",
            ("platform",),
            registry=registry,
        )
        self._live = _Live()
        registry.register(self._live)
        # Label children, looked up once: the dispatcher counts on its hot path.
        self._command_children: dict[tuple[str, str, str], Callable[[], None]] = {}
        self._latency_children: dict[str, Callable[[float], None]] = {}

    # -- Telemetry -----------------------------------------------------------------------

    def command(self, name: str, platform: str, outcome: str, seconds: float) -> None:
        """One invocation answered: count it and time it."""
        key = (name, platform, outcome)
        count = self._command_children.get(key)
        if count is None:
            count = self._command_children[key] = self._commands.labels(*key).inc
        count()
        observe = self._latency_children.get(name)
        if observe is None:
            observe = self._latency_children[name] = self._latency.labels(name).observe
        observe(seconds)

    def delivery(self, platform: str, outcome: str) -> None:
        """One outbox delivery attempt ended."""
        self._deliveries.labels(platform, outcome).inc()

    def rate_limited(self, platform: str) -> None:
        """The platform answered 429."""
        self._rate_limited.labels(platform).inc()

    def board_edit(self, platform: str) -> None:
        """One live board was edited."""
        self._board_edits.labels(platform).inc()

    # -- gauges and serving --------------------------------------------------------------

    def follow(self, snapshot: Callable[[], Snapshot], streams: Callable[[], int]) -> None:
        """Export the live hub's counts and the number of open live streams at each scrape."""
        self._live.snapshot = snapshot
        self._live.streams = streams

    def scrape(self, request: web.Request) -> web.Response:
        """Every metric, in the format the scraper asks for (Prometheus text by default)."""
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(
            body=encode(self.registry),
            headers={"Content-Type": content_type, "Cache-Control": "no-store"},
        )

    def guarded(self, token: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        """A handler that scrapes only for `Authorization: Bearer <token>` (else 401)."""
        expected = token.encode()

        async def handler(request: web.Request) -> web.Response:
            scheme, _sep, given = request.headers.get("Authorization", "").partition(" ")
            supplied = given.strip().encode("utf-8", "replace")
            if scheme.lower() != "bearer" or not hmac.compare_digest(supplied, expected):
                log.info("metrics: a scrape without the right token was refused")
                return web.Response(
                    status=401,
                    text="unauthorized\n",
                    headers={
                        "WWW-Authenticate": 'Bearer realm="metrics"',
                        "Cache-Control": "no-store",
                    },
                )
            return self.scrape(request)

        return handler

    def mount(self, server: WebServer, settings: Settings) -> None:
        """Serve /metrics on the bot's web server when a token is set (else it is a 404)."""
        if settings.metrics_token is not None:
            server.add_get("/metrics", self.guarded(settings.metrics_token.get_secret_value()))

    def own_server(self, settings: Settings) -> WebServer | None:
        """A web server of its own serving only /metrics, without a token, when
        COALITION_METRICS_HOST or _PORT is set (start and stop it like the others)."""
        bind = settings.metrics_bind
        if bind is None:
            return None
        server = WebServer(*bind, health=False)

        async def handler(request: web.Request) -> web.Response:
            return self.scrape(request)

        server.add_get("/metrics", handler)
        return server
