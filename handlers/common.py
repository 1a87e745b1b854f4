"""Pieces several handlers show: the accounts pledged, the reader's zone, dates, the message,
platforms' names."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date

from bot.core import i18n
from bot.core.i18n import N_, Raw, _
from bot.core.types import Invocation
from bot.services.container import Services

ACCOUNTS = {
    "instagram": N_("Instagram"),
    "facebook": N_("Facebook"),
    "both": N_("Instagram and Facebook"),
}


def accounts(choice: str) -> str:
    """The accounts a pledge covers, as a short label."""
    return _(ACCOUNTS[choice])


def reader_zone(invocation: Invocation, services: Services) -> ZoneInfo:
    """The volunteer's time zone, else the campaign's."""
    volunteer = invocation.volunteer
    if volunteer is not None and volunteer.timezone:
        try:
            return ZoneInfo(volunteer.timezone)
        except (ZoneInfoNotFoundError, ValueError):  # stored once, gone from this machine
            pass
    return services.campaign.zone


def post_message(services: Services) -> str:
    """The one message to post after the freeze, in the reader's language."""
    return _(
        "When the freeze ends, post this one message:\n\n{message}",
        message=Raw(services.campaign.message(i18n.current().locale)),
    )


def long_date(moment: datetime, invocation: Invocation, services: Services) -> str:
    """A date written out in the reader's language and time zone."""
    local = moment.astimezone(reader_zone(invocation, services))
    return format_date(local.date(), "long", locale=i18n.current().babel_locale)


def platform_name(platform: str) -> str:
    """A platform's name in a sentence of the current language."""
    if platform == "console":
        return _("the console")
    return {"telegram": "Telegram", "discord": "Discord"}.get(platform, platform)
