"""Platform-neutral command handlers, one module per family of commands."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.i18n import available_languages
from bot.services.registry import Registry
from handlers import (
    announce,
    campaign,
    language,
    link,
    pledge,
    privacy,
    reminders,
    start,
    tally,
    webpage,
)


def build_registry(languages: Sequence[str] | None = None) -> Registry:
    """Every command of the bot, in the order help lists them; `languages` are the catalogs
    the bot speaks (by default every one in locales/), the choices of /language."""
    return Registry(
        [
            *start.COMMANDS,
            *pledge.COMMANDS,
            *tally.COMMANDS,
            *webpage.COMMANDS,
            *campaign.COMMANDS,
            *language.commands(available_languages() if languages is None else languages),
            *reminders.COMMANDS,
            *announce.COMMANDS,
            *link.COMMANDS,
            *privacy.COMMANDS,
        ]
    )
