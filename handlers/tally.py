"""/tally, the community's pledge /board, and its periodic tally post (/tallypost)."""

from __future__ import annotations

import logging

from bot import i18n
from bot.core import Invocation, Reply, ReplyKind, Scope, private
from bot.i18n import N_, Raw, _, ngettext
from bot.registry import Command
from bot.services import Services
from handlers.common import paragraphs, pledge_button, window
from handlers.reminders import STATE
from storage.base import Tally

log = logging.getLogger(__name__)

BAR_CELLS = 10


def progress_bar(count: int, goal: int) -> str:
    """A ten-cell text bar of count toward goal."""
    filled = min(BAR_CELLS, count * BAR_CELLS // goal) if goal > 0 else 0
    return "▓" * filled + "░" * (BAR_CELLS - filled)


def tally_text(tally: Tally, services: Services) -> str:
    """The counts and the progress toward the goal, in the current language."""
    goal = services.campaign.goal
    parts = []
    if tally.community is not None:
        parts.append(
            ngettext(
                "{count} volunteer has pledged in this community.",
                "{count} volunteers have pledged in this community.",
                tally.community,
            )
        )
    parts.append(
        ngettext(
            "{count} volunteer has pledged in all.",
            "{count} volunteers have pledged in all.",
            tally.total,
        )
    )
    if tally.done:
        parts.append(
            ngettext(
                "{count} of them froze their accounts.",
                "{count} of them froze their accounts.",
                tally.done,
            )
        )
    parts.append(
        _(
            "Goal: {goal}. {bar} {percent}",
            goal=goal,
            bar=progress_bar(tally.total, goal),
            percent=i18n.current().percent(min(tally.total / goal, 9.99)),
        )
    )
    return "\n".join(parts)


async def tally(invocation: Invocation, services: Services) -> list[Reply]:
    """Show how many volunteers have pledged, here and in all."""
    chat = invocation.chat_id if invocation.in_group else None
    counts = await services.storage.tally(services.campaign.id, invocation.platform, chat)
    return [Reply(text=tally_text(counts, services))]


async def board(invocation: Invocation, services: Services) -> list[Reply]:
    """Post the live pledge board with its "I pledge" button (community admins)."""
    return [await render_board(services, invocation.platform, invocation.chat_id)]


async def render_board(services: Services, platform: str, chat_id: str) -> Reply:
    """A community's board as it should read now, in the community's language."""
    counts = await services.storage.tally(services.campaign.id, platform, chat_id)
    _volunteer, community = await services.storage.load_context(b"", platform, chat_id)
    language = (community.language if community else None) or services.settings.default_language
    with i18n.use(services.catalogs.get(language)):
        text = paragraphs(
            _("Stop Hate For Profit: freeze your Instagram and Facebook accounts for 24 hours."),
            tally_text(counts, services),
            window(services, services.campaign.zone, platform),
        )
        button = pledge_button()
    return Reply(text=text, buttons=(button,), kind=ReplyKind.BOARD)


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
