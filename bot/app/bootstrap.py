"""The composition root: builds every service once, in order, and closes them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from bot.app.logs import redact
from bot.core.i18n import Catalogs
from bot.core.identity import Identities, load_or_create_pepper
from bot.core.ratelimit import FloodGuard
from bot.core.settings import Settings
from bot.services.campaign import Campaign
from bot.services.container import Services, Telemetry
from bot.services.dispatch import Dispatcher
from handlers import build_registry
from storage.base import Storage
from storage.sqlite import SQLiteStorage

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def make_storage(settings: Settings) -> Storage:
    """PostgreSQL when a database URL is set, else the SQLite file (the default)."""
    if settings.database_url is not None:
        from storage.postgres import PostgresStorage  # asyncpg only when asked for

        return PostgresStorage(settings.database_url.get_secret_value())
    return SQLiteStorage(settings.db_path)


def storage_name(settings: Settings) -> str:
    """Which database, for the logs: never a password."""
    if settings.database_url is not None:
        where = urlsplit(settings.database_url.get_secret_value())
        return f"PostgreSQL on {where.hostname or 'localhost'}:{where.port or 5432}"
    return f"SQLite {settings.db_path.name}"


@asynccontextmanager
async def bootstrap(
    settings: Settings,
    clock: Callable[[], datetime] = utc_now,
    telemetry: Telemetry | None = None,
) -> AsyncIterator[tuple[Services, Dispatcher]]:
    """Build storage, catalogs, identities, the registry and the dispatcher; close on exit.
    `telemetry` (bot/web/metrics.py) counts what the bot does; none: nothing is counted."""
    pepper = load_or_create_pepper(
        settings.data_dir,
        settings.pepper.get_secret_value() if settings.pepper else None,
        settings.pepper_file,
    )
    redact(pepper.decode())  # read from its file: scrubbed from the logs like the others
    storage = make_storage(settings)
    await storage.open()
    try:
        campaign_id = await storage.ensure_campaign(settings.campaign_slug)
        zone = ZoneInfo(settings.campaign_timezone)
        start, end = settings.campaign_start, settings.campaign_end
        stored = await storage.window(campaign_id)
        if stored is not None:  # an organizer set it with /campaign: it wins over settings
            start, end = (moment.astimezone(zone) for moment in stored)
            log.info("freeze window: the one organizers set, not the configured one")
        catalogs = Catalogs.load(settings.locales_dir, default=settings.default_language)
        campaign = Campaign(
            id=campaign_id,
            slug=settings.campaign_slug,
            zone=zone,
            start=start,
            end=end,
            goal=settings.campaign_goal,
            messages={
                lang: settings.campaign_message(lang)
                for lang in catalogs.languages
                if settings.campaign_message(lang)
            },
        )
        services = Services(
            settings=settings,
            storage=storage,
            catalogs=catalogs,
            identities=Identities(pepper),
            registry=build_registry(catalogs.languages),
            campaign=campaign,
            flood=FloodGuard(
                settings.rate_limit_commands,
                settings.rate_limit_seconds,
                shared=storage.take_command_token,
            ),
            clock=clock,
            telemetry=telemetry if telemetry is not None else Telemetry(),
        )
        log.info(
            "ready: campaign %s, %d commands, %s",
            campaign.slug,
            len(services.registry),
            storage_name(settings),
        )
        yield services, Dispatcher(services)
    finally:
        await storage.close()
