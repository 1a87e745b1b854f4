"""/tally, the community's pledge /board, and its periodic tally post (/tallypost)."""

from __future__ import annotations

import logging
import re

from bot.core import i18n
from bot.core.i18n import N_, Raw, _, ngettext
from bot.core.text import echo
from bot.core.types import Invocation, Reply, Scope, private
from bot.services.container import Services
from bot.services.registry import Arg, Command
from bot.services.render import paragraphs, render_board, tally_text
from handlers.reminders import STATE

log = logging.getLogger(__name__)


async def tally(invocation: Invocation, services: Services) -> list[Reply]:
    """Show how many volunteers have pledged, here and in all."""
    chat = invocation.chat_id if invocation.in_group else None
    counts = await services.storage.tally(services.campaign.id, invocation.platform, chat)
    return [Reply(text=tally_text(counts, services))]


async def board(invocation: Invocation, services: Services) -> list[Reply]:
    """Post the live pledge board with its "I pledge" button (community admins)."""
    return [await render_board(services, invocation.platform, invocation.chat_id)]


HOUR = Arg("hour", label=N_("at what hour, in the campaign's time zone (optional)"))
_HOUR = re.compile(r"(\d{1,2})(?:[:h.](\d{2})?)?")  # a whole hour: 18, 18h, 18:00


def read_hour(text: str) -> int | None:
    """A whole hour typed as 18, 18h, 18:00 or 18h00 (any script's digits); None if not."""
    match = _HOUR.fullmatch(text.strip().lower())  # \d and int() read every script's digits
    if match is None or int(match[1]) > 23 or int(match[2] or 0):
        return None
    return int(match[1])


def _at(services: Services, hour: int) -> dict[str, Raw | str]:
    """The {time} and {zone} of a sentence about a chosen hour."""
    zone = services.campaign.zone
    return {"time": Raw(f"{hour:02d}:00"), "zone": i18n.current().zone_name(zone)}


async def tallypost(invocation: Invocation, services: Services) -> list[Reply]:
    """Turn this community's periodic tally post on or off, at an hour you choose (its
    admins)."""
    state = invocation.args.get("state")
    typed = invocation.args.get("hour")
    community = invocation.community
    hours = services.settings.tally_post_hours
    if state is None:
        if community is not None and community.tally_posts:
            if community.tally_hour is not None:
                return private(
                    ngettext(
                        "This community gets the pledge count every {count} hour, from "
                        "{time} ({zone}). To stop, send {command}.",
                        "This community gets the pledge count every {count} hours, from "
                        "{time} ({zone}). To stop, send {command}.",
                        hours,
                        command=Raw("/tallypost off"),
                        **_at(services, community.tally_hour),
                    )
                )
            return private(
                ngettext(
                    "This community gets the pledge count every {count} hour. To stop, send "
                    "{command}.",
                    "This community gets the pledge count every {count} hours. To stop, send "
                    "{command}.",
                    hours,
                    command=Raw("/tallypost off"),
                )
            )
        return private(
            _(
                "This community gets no periodic pledge count. To turn it on, send {command}.",
                command=Raw("/tallypost on"),
            )
        )
    on = state == "on"
    hour = None
    if on and typed is not None:
        hour = read_hour(typed)
        if hour is None:
            return private(
                _(
                    "I could not read \u201c{value}\u201d as an hour. Write a whole hour from 0 "
                    "to 23 in the campaign's time zone ({zone}), for example {example}.",
                    value=echo(typed),
                    zone=i18n.current().zone_name(services.campaign.zone),
                    example=Raw("/tallypost on 18:00"),
                )
            )
    await services.storage.set_tally_posts(invocation.platform, invocation.chat_id, on, hour)
    log.info("tally posts turned %s in a %s community", state, invocation.platform)
    if not on:
        return [Reply(text=_("This community will no longer get the periodic pledge count."))]
    unsubscribed = (
        _(
            "This community is unsubscribed, so nothing will be posted until one of its admins "
            "sends {command}.",
            command=Raw("/subscribe on"),
        )
        if community is not None and not community.subscribed
        else ""
    )
    started = (
        ngettext(
            "From now on this community gets the pledge count every {count} hour, from {time} "
            "({zone}).",
            "From now on this community gets the pledge count every {count} hours, from "
            "{time} ({zone}).",
            hours,
            **_at(services, hour),
        )
        if hour is not None
        else ngettext(
            "From now on this community gets the pledge count every {count} hour.",
            "From now on this community gets the pledge count every {count} hours.",
            hours,
        )
    )
    return [Reply(text=paragraphs(started, unsubscribed))]


COMMANDS = (
    Command("tally", N_("Show how many volunteers have pledged"), tally, public=True),
    Command(
        "board",
        N_("Post the live pledge board with its button (community admins)"),
        board,
        scope=Scope.COMMUNITY,
        public=True,
    ),
    Command(
        "tallypost",
        N_("Post the pledge count here regularly: on or off (community admins)"),
        tallypost,
        args=(STATE, HOUR),
        scope=Scope.COMMUNITY,
    ),
)
