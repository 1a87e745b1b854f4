"""/reminders for volunteers and /subscribe for communities."""

from __future__ import annotations

from bot.core import i18n
from bot.core.i18n import N_, _
from bot.core.types import Button, Invocation, Reply, Scope, private
from bot.services.container import Services
from bot.services.registry import Arg, Choice, Command
from storage.base import NotWiped

STATE = Arg(
    "state",
    label=N_("On or off"),
    choices=(
        Choice("on", ("yes", "oui", "activer", "نعم", "تشغيل", "تفعيل")),
        Choice("off", ("no", "non", "désactiver", "stop", "لا", "إيقاف", "توقف")),
    ),
)


async def reminders(invocation: Invocation, services: Services) -> list[Reply]:
    """Turn freeze reminders in a private message on or off."""
    state = invocation.args.get("state")
    volunteer = invocation.volunteer
    if state is None:
        enabled = volunteer is not None and volunteer.reminders
        text = _("Your reminders are on.") if enabled else _("Your reminders are off.")
        buttons = (
            (Button(_("Turn reminders off"), "reminders off"),)
            if enabled
            else (Button(_("Turn reminders on"), "reminders on"),)
        )
        return private(text, *buttons)
    if state == "on":
        address = invocation.dm_address or (None if invocation.in_group else invocation.chat_id)
        if address is None:
            return private(
                _(
                    "I cannot write to you privately from here. Open a private chat "
                    "with me and send /reminders on there."
                )
            )
        await services.storage.set_reminders(
            invocation.volunteer_key, True, address, invocation.platform
        )
        if volunteer is None or not volunteer.language:
            # Keep the promise below: reminders go out in the language used now.
            await services.storage.set_language(invocation.volunteer_key, invocation.locale)
        return private(
            _(
                "Reminders are on. I will write to you privately in {language} before "
                "the freeze, when it starts and when it ends. Send /reminders off, or "
                "just “stop”, to turn them off.",
                language=i18n.language_name(invocation.locale),
            )
        )
    try:
        await services.storage.set_reminders(invocation.volunteer_key, False, None)
        services.deliveries_changed()  # their waiting deliveries are dropped
    except NotWiped:
        return private(
            _(
                "Reminders are off, and the address I used to write to you is deleted, but "
                "old copies of it could not yet be wiped from the bot's storage files. The bot "
                "finishes wiping them by itself, at the latest when it restarts. Your pledge "
                "still counts."
            )
        )
    return private(
        _(
            "Reminders are off, and I deleted the address I used to write to you. "
            "Your pledge still counts."
        )
    )


async def subscribe(invocation: Invocation, services: Services) -> list[Reply]:
    """Choose whether this community receives announcements and reminders (its admins)."""
    state = invocation.args.get("state")
    community = invocation.community
    if state is None:
        subscribed = community is None or community.subscribed
        text = (
            _("This community receives announcements and reminders.")
            if subscribed
            else _("This community does not receive announcements and reminders.")
        )
        return private(text)
    on = state == "on"
    await services.storage.set_community_subscribed(invocation.platform, invocation.chat_id, on)
    if on:
        return [Reply(text=_("This community will receive announcements and reminders."))]
    return [Reply(text=_("This community will no longer receive announcements and reminders."))]


COMMANDS = (
    Command("reminders", N_("Turn freeze reminders on or off"), reminders, args=(STATE,)),
    Command(
        "subscribe",
        N_("Choose whether this community receives announcements (community admins)"),
        subscribe,
        args=(STATE,),
        scope=Scope.COMMUNITY,
    ),
)
