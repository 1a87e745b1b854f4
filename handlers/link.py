"""/link and /unlink: one person with accounts on several platforms counts once.

`/link` answers privately with a one-time code of 6 digits, good for 10 minutes; `/link
CODE` sent from an account on another platform joins the two into one volunteer: one
pledge (the earlier one), one number, one language and time zone. Only a keyed hash of the
code is stored, and the link itself joins two keyed hashes, never raw ids. Wrong codes are
throttled per account. `/unlink` splits them again.
"""

from __future__ import annotations

import logging
import math
import secrets
import unicodedata
from datetime import timedelta

from bot.core import i18n
from bot.core.i18n import N_, Raw, _, ngettext
from bot.core.types import Invocation, Reply, private
from bot.services.container import Services
from bot.services.registry import Arg, Command
from bot.services.render import paragraphs
from handlers.common import platform_name
from storage.base import LinkResult, LinkStatus

log = logging.getLogger(__name__)

DIGITS = 6
VALID = timedelta(minutes=10)  # how long a code works
ATTEMPTS = 5  # wrong codes an account may send per WINDOW
WINDOW = timedelta(minutes=10)
CODE = Arg("code", label=N_("the code from your other account"))


def code_key(services: Services, code: str) -> bytes:
    """The keyed hash a code is stored as (the code itself is never stored)."""
    return services.identities.key("link-code", code)


def read_code(text: str) -> str | None:
    """The 6 digits typed, in any script's digits, spaces and dashes allowed; else None."""
    digits = []
    for char in text:
        if char in " -\u00a0\u202f":
            continue
        value = unicodedata.digit(char, None)
        if value is None:
            return None
        digits.append(str(value))
    found = "".join(digits)
    return found if len(found) == DIGITS else None


async def link(invocation: Invocation, services: Services) -> list[Reply]:
    """Link your accounts on Telegram and Discord, so you count once."""
    typed = invocation.args.get("code")
    if typed is None:
        return await _new_code(invocation, services)
    code = read_code(typed)
    if code is None:
        return private(
            _(
                "A linking code has 6 digits, such as {example}. Send {command} on your other "
                "account to get one.",
                example=Raw("/link 493027"),
                command=Raw("/link"),
            )
        )
    result = await services.storage.redeem_link_code(
        services.campaign.id,
        invocation.account_key,
        invocation.platform,
        code_key(services, code),
        services.clock(),
        ATTEMPTS,
        WINDOW,
    )
    if result.status is LinkStatus.LINKED:
        log.info("two accounts linked (%s)", "+".join(result.platforms))
        services.counts_changed()  # two pledges may have become one
    else:
        log.info("a link code was refused: %s", result.status)
    return private(_answer(result))


async def _new_code(invocation: Invocation, services: Services) -> list[Reply]:
    expires = services.clock() + VALID
    for _attempt in range(5):  # another account's live code may have the same digits
        code = f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"
        stored = await services.storage.add_link_code(
            invocation.account_key, invocation.platform, code_key(services, code), expires
        )
        if stored:
            break
    else:
        raise RuntimeError("no free linking code after 5 draws")
    minutes = int(VALID.total_seconds() // 60)
    return private(
        paragraphs(
            _("Your linking code: {code}", code=Raw(code)),
            ngettext(
                "Within {count} minute, send {command} to me from your account on the other "
                "platform (Telegram or Discord). From then on you count once, whichever "
                "account you use: one pledge, one volunteer number.",
                "Within {count} minutes, send {command} to me from your account on the other "
                "platform (Telegram or Discord). From then on you count once, whichever "
                "account you use: one pledge, one volunteer number.",
                minutes,
                command=Raw(f"/link {code}"),
            ),
            _(
                "Keep this code to yourself: whoever sends it joins their account to yours. "
                "It works once."
            ),
        )
    )


def _answer(result: LinkResult) -> str:
    again = Raw("/link")
    status = result.status
    if status is LinkStatus.LINKED or status is LinkStatus.ALREADY:
        names = i18n.current().join([platform_name(p) for p in result.platforms])
        head = (
            _("Done: your accounts on {platforms} are linked. You count once.", platforms=names)
            if status is LinkStatus.LINKED
            else _("These accounts are already linked ({platforms}).", platforms=names)
        )
        pledge = (
            _(
                "Your pledge: volunteer number {number}, whichever account you use.",
                number=result.number,
            )
            if result.number is not None
            else _(
                "Neither account has pledged yet: send {command} on either.", command=Raw("/pledge")
            )
        )
        return paragraphs(
            head,
            pledge,
            _("To split them again, send {command}.", command=Raw("/unlink")),
        )
    if status is LinkStatus.WRONG:
        return _(
            "That code is not right. Check it, or send {command} on your other account for a "
            "new one.",
            command=again,
        )
    if status is LinkStatus.EXPIRED:
        return ngettext(
            "That code has expired: a code works for {count} minute. Send {command} on your "
            "other account for a new one.",
            "That code has expired: a code works for {count} minutes. Send {command} on your "
            "other account for a new one.",
            int(VALID.total_seconds() // 60),
            command=again,
        )
    if status is LinkStatus.USED:
        return _(
            "That code was already used: a code works once. Send {command} on your other "
            "account for a new one.",
            command=again,
        )
    if status is LinkStatus.SAME_PLATFORM:
        return _(
            "That code was made on this platform. Send it from your account on the other platform."
        )
    minutes = max(1, math.ceil(result.wait / 60))
    return ngettext(
        "Too many wrong codes. Try again in {count} minute.",
        "Too many wrong codes. Try again in {count} minutes.",
        minutes,
    )


async def unlink(invocation: Invocation, services: Services) -> list[Reply]:
    """Split your linked accounts again."""
    kept = await services.storage.unlink(invocation.account_key)
    if kept is None:
        return private(_("This account is not linked to another one."))
    log.info("linked accounts split")
    services.counts_changed()
    if invocation.account_key == invocation.volunteer_key:
        return private(
            _(
                "Your accounts are no longer linked. Your pledge and settings stay with this "
                "account; the others start afresh."
            )
        )
    return private(
        _(
            "Your accounts are no longer linked. Your pledge and settings stay with your "
            "account on {platform}; this one starts afresh.",
            platform=platform_name(kept),
        )
    )


COMMANDS = (
    Command(
        "link",
        N_("Link your Telegram and Discord accounts so you count once"),
        link,
        args=(CODE,),
    ),
    Command("unlink", N_("Split your linked accounts again"), unlink),
)
