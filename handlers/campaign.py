"""/campaign: the freeze window in your time, where it stands, and the message to post."""

from __future__ import annotations

from bot.campaign import Phase
from bot.core import Invocation, Reply
from bot.i18n import N_, _
from bot.registry import Command
from bot.services import Services
from handlers.common import paragraphs, post_message, reader_zone, window


async def campaign(invocation: Invocation, services: Services) -> list[Reply]:
    """Show the freeze window in your time and the message to post."""
    phase = services.campaign.phase(services.clock())
    status = {
        Phase.UNSCHEDULED: "",
        Phase.UPCOMING: _("The freeze has not started yet."),
        Phase.FREEZING: _("The freeze is under way: keep your accounts frozen until it ends."),
        Phase.OVER: _("The freeze is over. Thank you to everyone who took part!"),
    }[phase]
    return [
        Reply(
            text=paragraphs(
                _(
                    "Stop Hate For Profit: freeze your Instagram and Facebook accounts for "
                    "24 hours."
                ),
                window(services, reader_zone(invocation, services), invocation.platform),
                status,
                post_message(services),
            )
        )
    ]


COMMANDS = (
    Command(
        "campaign", N_("Show the freeze window and the message to post"), campaign, public=True
    ),
)
