"""/tally, the community's pledge /board, and its periodic tally post (/tallypost)."""

from __future__ import annotations

import logging

from bot.core.i18n import N_, Raw, _, ngettext
from bot.core.types import Invocation, Reply, Scope, private
from bot.services.container import Services
from bot.services.registry import Command
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


async def tallypost(invocation: Invocation, services: Services) -> list[Reply]:
    """Turn this community's periodic tally post on or off (its admins)."""
    state = invocation.args.get("state")
    community = invocation.community
    hours = services.settings.tally_post_hours
    if state is None:
        if community is not None and community.tally_posts:
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
    await services.storage.set_tally_posts(invocation.platform, invocation.chat_id, on)
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
    return [
        Reply(
            text=paragraphs(
                ngettext(
                    "From now on this community gets the pledge count every {count} hour.",
                    "From now on this community gets the pledge count every {count} hours.",
                    hours,
                ),
                unsubscribed,
            )
        )
    ]


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
        args=(STATE,),
        scope=Scope.COMMUNITY,
    ),
)
