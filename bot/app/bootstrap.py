"""The composition root: builds every service once, in order, and closes them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.app.logs import redact
from bot.core.i18n import Catalogs
from bot.core.identity import Identities, load_or_create_pepper
from bot.core.ratelimit import FloodGuard
from bot.core.settings import Settings
from bot.services.campaign import Campaign
from bot.services.container import Services
from bot.services.dispatch import Dispatcher
from handlers import build_registry
from storage.sqlite import SQLiteStorage

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


@asynccontextmanager
async def bootstrap(
    settings: Settings, clock: Callable[[], datetime] = utc_now
) -> AsyncIterator[tuple[Services, Dispatcher]]:
    """Build storage, catalogs, identities, the registry and the dispatcher; close on exit."""
    pepper = load_or_create_pepper(
        settings.data_dir,
        settings.pepper.get_secret_value() if settings.pepper else None,
        settings.pepper_file,
    )
    redact(pepper.decode())  # read from its file: scrubbed from the logs like the others
    storage = SQLiteStorage(settings.db_path)
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
            flood=FloodGuard(settings.rate_limit_commands, settings.rate_limit_seconds),
            clock=clock,
        )
        log.info(
            "ready: campaign %s, %d commands, storage %s",
            campaign.slug,
            len(services.registry),
            settings.db_path.name,
        )
        yield services, Dispatcher(services)
    finally:
        await storage.close()
