"""/start and /help."""

from __future__ import annotations

from bot.core import Invocation, Reply
from bot.i18n import N_, Raw, _
from bot.registry import Arg, Choice, Command
from bot.services import Services
from handlers.common import paragraphs, pledge_button
from handlers.pledge import pledge

DEEP_LINK = Arg("payload", choices=(Choice("pledge"),))


async def start(invocation: Invocation, services: Services) -> list[Reply]:
    """Welcome, and the pledge button (`/start pledge` pledges straight away)."""
    if invocation.args.get("payload") == "pledge":
        return await pledge(invocation, services)
    text = paragraphs(
        _(
            "Welcome! This bot serves the volunteers of Stop Hate For Profit. We freeze our "
            "Instagram and Facebook accounts for 24 hours, then each of us posts one message "
            "criticising the company."
        ),
        _(
            "Press the button to pledge, or send {command} to see everything I can do.",
            command=Raw("/help"),
        ),
    )
    return [Reply(text=text, buttons=(pledge_button(),))]


async def help_(invocation: Invocation, services: Services) -> list[Reply]:
    """List the commands."""
    commands = services.registry.listed(invocation.is_organizer)
    volunteers = [c for c in commands if not c.organizer_only]
    organizers = [c for c in commands if c.organizer_only]
    lines = [_("Commands:")]
    lines += [_("{usage} — {summary}", usage=c.usage(), summary=_(c.summary)) for c in volunteers]
    if organizers:
        lines += ["", _("For organizers:")]
        lines += [
            _("{usage} — {summary}", usage=c.usage(), summary=_(c.summary)) for c in organizers
        ]
    return [
        Reply(
            text=paragraphs(
                "\n".join(lines),
                _(
                    "To read me in Arabic, French or English, send {ar}, {fr} or {en}.",
                    ar=Raw("/language ar"),
                    fr=Raw("/language fr"),
                    en=Raw("/language en"),
                ),
            )
        )
    ]


COMMANDS = (
    Command("start", N_("Start here"), start, args=(DEEP_LINK,), hidden=True),
    Command("help", N_("List the commands"), help_, public=True),
)
