"""Pieces several handlers show: the accounts pledged, the freeze window, language names."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date

from bot import i18n
from bot.core import Button, Invocation, Platform
from bot.i18n import N_, Raw, _
from bot.services import Services

ACCOUNTS = {
    "instagram": N_("Instagram"),
    "facebook": N_("Facebook"),
    "both": N_("Instagram and Facebook"),
}

# Language names are written in their own language, as every language picker does.
LANGUAGE_NAMES = {"ar": "العربية", "fr": "Français", "en": "English"}


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


def window(services: Services, zone: ZoneInfo, platform: str = "") -> str:
    """One sentence giving the freeze window in a time zone (on Discord, in every reader's)."""
    campaign = services.campaign
    if campaign.start is None or campaign.end is None:
        return _("The organizers have not announced the freeze dates yet.")
    if platform == Platform.DISCORD:
        # Discord renders these in each reader's own time zone and language.
        start, end = int(campaign.start.timestamp()), int(campaign.end.timestamp())
        return _(
            "The freeze runs from {start} ({relative}) to {end}.",
            start=Raw(f"<t:{start}:F>"),
            relative=Raw(f"<t:{start}:R>"),
            end=Raw(f"<t:{end}:F>"),
        )
    translator = i18n.current()
    return _(
        "The freeze runs from {start} to {end} ({zone}).",
        start=translator.when(campaign.start, zone),
        end=translator.when(campaign.end, zone),
        zone=translator.zone_name(zone),
    )


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


def pledge_button() -> Button:
    """The "I pledge" button, labelled in the current language."""
    return Button(label=_("I pledge"), action="pledge")


def paragraphs(*parts: str) -> str:
    """Join whole sentences or paragraphs (never pieces of one sentence)."""
    return "\n\n".join(part for part in parts if part)
