"""Platform-neutral command handlers, one module per family of commands."""

from __future__ import annotations

from bot.services.registry import Registry
from handlers import announce, campaign, language, pledge, privacy, reminders, start, tally


def build_registry() -> Registry:
    """Every command of the bot, in the order help lists them."""
    return Registry(
        [
            *start.COMMANDS,
            *pledge.COMMANDS,
            *tally.COMMANDS,
            *campaign.COMMANDS,
            *language.COMMANDS,
            *reminders.COMMANDS,
            *announce.COMMANDS,
            *privacy.COMMANDS,
        ]
    )
