"""/start and /help."""

from __future__ import annotations

from bot.core import i18n
from bot.core.i18n import N_, Raw, _
from bot.core.types import Invocation, Reply, Scope
from bot.services.campaign import duration
from bot.services.container import Services
from bot.services.registry import Arg, Choice, Command
from bot.services.render import paragraphs, pledge_button
from handlers.pledge import pledge

DEEP_LINK = Arg("payload", choices=(Choice("pledge"),))


async def start(invocation: Invocation, services: Services) -> list[Reply]:
    """Welcome, and the pledge button (`/start pledge` pledges straight away)."""
    if invocation.args.get("payload") == "pledge":
        return await pledge(invocation, services)
    text = paragraphs(
        _(
            "Welcome! This bot serves the volunteers of Stop Hate For Profit. We freeze our "
            "Instagram and Facebook accounts for {length}, then each of us posts one message "
            "criticising the company.",
            length=Raw(duration(services.campaign.length)),
        ),
        _(
            "Press the button to pledge, or send {command} to see everything I can do.",
            command=Raw("/help"),
        ),
    )
    return [Reply(text=text, buttons=(pledge_button(),))]


async def help_(invocation: Invocation, services: Services) -> list[Reply]:
    """List the commands."""
    held = [scope for scope in (Scope.COMMUNITY, Scope.COALITION) if invocation.may(scope)]
    commands = services.registry.listed(*held)

    def lines_for(scope: Scope) -> list[str]:
        return [
            _("{usage} — {summary}", usage=c.usage(), summary=_(c.summary))
            for c in commands
            if c.scope is scope
        ]

    lines = [_("Commands:"), *lines_for(Scope.VOLUNTEER)]
    if Scope.COMMUNITY in held:
        lines += ["", _("For this community's admins:"), *lines_for(Scope.COMMUNITY)]
    if Scope.COALITION in held:
        lines += ["", _("For the coalition's organizers:"), *lines_for(Scope.COALITION)]
    return [
        Reply(
            text=paragraphs(
                "\n".join(lines),
                _(
                    "I speak {languages}. To choose, send {command}.",
                    languages=i18n.current().join(
                        [i18n.language_name(code) for code in services.catalogs.languages]
                    ),
                    command=Raw("/language"),
                ),
            )
        )
    ]


COMMANDS = (
    Command("start", N_("Start here"), start, args=(DEEP_LINK,), hidden=True),
    Command("help", N_("List the commands"), help_, public=True, lists_commands=True),
)
