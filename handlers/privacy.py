"""/mydata and /forget: what is stored about you, and erasing it."""

from __future__ import annotations

import logging

from bot.core import i18n
from bot.core.i18n import N_, Raw, _, ngettext
from bot.core.types import Button, Invocation, Reply, private
from bot.services.container import Services
from bot.services.registry import Arg, Choice, Command
from bot.services.render import paragraphs
from handlers.common import accounts, long_date, platform_name
from storage.base import NotWiped, StorageError

log = logging.getLogger(__name__)

CONFIRM = Arg(
    "confirm",
    label=N_("Confirm: erase everything now"),
    choices=(Choice("confirm", ("confirmer", "oui", "yes", "تأكيد", "نعم", "أكد")),),
)


async def mydata(invocation: Invocation, services: Services) -> list[Reply]:
    """Show everything the bot stores about you."""
    data = await services.storage.export(services.campaign.id, invocation.volunteer_key)
    volunteer, found = data.volunteer, data.pledge
    if volunteer is None and found is None:
        return private(
            _(
                "Nothing is stored about you. The bot keeps nothing until you pledge or "
                "choose a setting."
            )
        )
    lines = [
        _("What the bot stores about you:"),
        _(
            "• Who you are: only a keyed hash of your account number. No name, no "
            "username, no messages."
        ),
    ]
    if volunteer is not None:
        if volunteer.language:
            lines.append(
                _("• Language: {language}", language=i18n.language_name(volunteer.language))
            )
        else:
            lines.append(_("• Language: not chosen (I follow your app)"))
        if volunteer.timezone:
            lines.append(_("• Time zone: {zone}", zone=volunteer.timezone))
        else:
            lines.append(_("• Time zone: not chosen"))
        if volunteer.reminders:
            lines.append(
                _("• Reminders: on; the address of our private chat is kept to write to you")
            )
        else:
            lines.append(_("• Reminders: off; no address is kept"))
    if data.platforms:
        lines.append(
            _(
                "• Linked accounts: {platforms}. Only the keyed hashes of the accounts are "
                "stored, joined to each other.",
                platforms=i18n.current().join([platform_name(p) for p in data.platforms]),
            )
        )
    if found is not None:
        lines.append(
            _(
                "• Pledge: {accounts}, volunteer number {number}, since {date}",
                accounts=accounts(found.choice),
                number=found.number,
                date=long_date(found.created_at, invocation, services),
            )
        )
        if found.communities:
            lines.append(
                ngettext(
                    "• Counted in {count} community",
                    "• Counted in {count} communities",
                    found.communities,
                )
            )
    return private(
        paragraphs(
            "\n".join(lines),
            _("Erase all of it with {command}.", command=Raw("/forget")),
        )
    )


async def forget(invocation: Invocation, services: Services) -> list[Reply]:
    """Erase everything the bot stores about you (asks for confirmation first)."""
    if invocation.args.get("confirm") != "confirm":
        return private(
            _(
                "This erases everything the bot stores about you, on every account you linked: "
                "your pledge, your language, your time zone and your reminders. It cannot be "
                "undone. Press the button or send {command}.",
                command=Raw("/forget confirm"),
            ),
            Button(_("Erase my data"), "forget confirm"),
        )
    # The flood bucket stays: erasing your data must not buy a fresh allowance of commands.
    try:
        existed = await services.storage.forget(invocation.volunteer_key)
        services.deliveries_changed()  # their waiting deliveries went with them
    except StorageError as error:
        log.error("/forget could not be done: %s", error)
        return private(
            _(
                "I could not erase your data: the bot's storage is failing. Nothing was "
                "erased; please try again later."
            )
        )
    except NotWiped:
        log.warning("/forget: erased, old copies not cut from the files yet")
        return private(
            _(
                "Your data is deleted and your pledge no longer counts, but old copies could "
                "not yet be wiped from the bot's storage files. The bot finishes wiping them "
                "by itself, at the latest when it restarts."
            )
        )
    if not existed:
        return private(_("There was nothing stored about you."))
    return private(_("Done: everything about you is erased, and your pledge no longer counts."))


COMMANDS = (
    Command("mydata", N_("Show what the bot stores about you"), mydata),
    Command("forget", N_("Erase everything the bot stores about you"), forget, args=(CONFIRM,)),
)
