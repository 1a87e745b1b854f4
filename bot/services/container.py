"""The one object handlers receive: everything the composition root built."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from bot.core.i18n import Catalogs
from bot.core.identity import Identities
from bot.core.ratelimit import FloodGuard
from bot.core.settings import Settings
from bot.services.campaign import Campaign
from bot.services.registry import Registry
from storage.base import Storage

log = logging.getLogger(__name__)

# What other processes are told of (Services.relay).
COUNTS = "counts"
BROADCASTS = "broadcasts"
SCHEDULE = "schedule"
BOARDS = "boards"
PROGRESS = "progress"


class Telemetry:
    """Where the bot's counts of what it does go: nowhere by default; the composition root
    may hand in one that exports them (bot/web/metrics.py)."""

    def command(self, name: str, platform: str, outcome: str, seconds: float) -> None:
        """One invocation answered: its command (registered name, or "unknown"), outcome."""

    def delivery(self, platform: str, outcome: str) -> None:
        """One outbox delivery attempt ended (sent, unreachable, retry, failed, unknown,
        rate_limited)."""

    def rate_limited(self, platform: str) -> None:
        """The platform answered 429 (retry after)."""

    def board_edit(self, platform: str) -> None:
        """One live board was edited."""


@dataclass(slots=True)
class Services:
    """Settings, storage, catalogs and helpers, wired once by bot.bootstrap."""

    settings: Settings
    storage: Storage
    catalogs: Catalogs
    identities: Identities
    registry: Registry
    # Frozen: a change (an organizer's new window) replaces it with dataclasses.replace.
    campaign: Campaign
    flood: FloodGuard
    clock: Callable[[], datetime]
    # The platforms the outbox sends on (set as transports register with it; None: all).
    # Broadcasts expand only to them, so a platform without a token never collects rows
    # that nobody would send.
    platforms: frozenset[str] | None = None
    # Every board follows the overall total, so a count change anywhere touches them all.
    count_listeners: list[Callable[[], None]] = field(default_factory=list)
    # Whoever triggers the stored ladder (the running scheduler) rebuilds from it when told.
    schedule_listeners: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # The running outbox: told at once when a handler makes a broadcast, so sending starts
    # without waiting for its next look at the database.
    broadcast_listeners: list[Callable[[], None]] = field(default_factory=list)
    # Progress messages: told each time the outbox records how deliveries went.
    delivery_listeners: list[Callable[[], None]] = field(default_factory=list)
    # One organizer's change of the window or the ladder at a time.
    schedule_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Other processes on the same database (PostgreSQL): told of the same changes by
    # topic (bot.app.relay). None with one process.
    relay: Callable[[str], None] | None = None
    # What the bot does, counted for an organizer's scraper (/metrics); a no-op by default.
    telemetry: Telemetry = field(default_factory=Telemetry)
    # Where people open the campaign's web pages (ends with "/"): the public address, or
    # the console's page on this machine; None: the bot publishes none (/webpage says so).
    web_address: str | None = None

    def counts_changed(self, *, relayed: bool = False) -> None:
        """Tell every live board (every platform's) that pledge counts changed; `relayed`:
        the news came from another process (so it is not sent on again)."""
        for listener in self.count_listeners:
            listener()
        if self.relay is not None and not relayed:
            self.relay(COUNTS)

    def deliveries_changed(self) -> None:
        """Tell progress messages that the outbox recorded how some deliveries went."""
        for listener in self.delivery_listeners:
            listener()

    def broadcast_created(self, *, relayed: bool = False) -> None:
        """Tell the outbox that a new broadcast's deliveries are waiting."""
        for listener in self.broadcast_listeners:
            listener()
        if self.relay is not None and not relayed:
            self.relay(BROADCASTS)

    async def schedule_changed(self, *, relayed: bool = False) -> None:
        """Tell the scheduler that the stored window or ladder changed (the change is already
        stored: a listener that fails is logged, and the next start-up rebuilds anyway)."""
        if self.relay is not None and not relayed:
            self.relay(SCHEDULE)
        for listener in list(self.schedule_listeners):
            try:
                await listener()
            except Exception:
                log.exception("rebuilding the schedule after a change failed")
