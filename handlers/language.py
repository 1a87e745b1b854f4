"""/language and /timezone."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from bot.core import i18n
from bot.core.i18n import N_, P_, Raw, _
from bot.core.text import echo
from bot.core.types import Button, Invocation, Reply, Scope, private
from bot.services.container import Services
from bot.services.registry import Arg, Choice, Command
from handlers.common import reader_zone

AUTO = Choice(
    "auto", ("automatic", "automatique", "تلقائي"), label=P_("argument value", "automatic")
)


def language_arg(languages: Sequence[str]) -> Arg:
    """The /language argument: one choice per catalog, typed as its code or as its name in
    any language the bot speaks ("arabe", "Arabic", "العربية"), or auto."""
    return Arg(
        "language",
        label=N_("The language, or auto to follow your app"),
        choices=(
            # Each language is named in itself, for every reader (as language pickers do).
            *(
                Choice(code, i18n.language_words(code, languages), label=i18n.language_name(code))
                for code in languages
            ),
            AUTO,
        ),
    )


SCOPE = Arg(
    "scope",
    label=N_("For you, or for the whole community (community admins)"),
    choices=(
        Choice("me", ("moi", "أنا", "لي"), label=P_("argument value", "just me")),
        Choice(
            "group",
            scope=Scope.COMMUNITY,
            aliases=("groupe", "community", "communauté", "server", "serveur", "المجموعة"),
            label=P_("argument value", "the whole community"),
        ),
    ),
)
ZONE = Arg("zone", label=N_("time zone"), rest=True)
_ZONE_SHAPE = re.compile(r"^[A-Za-z0-9_+\-/]{1,64}$")


async def language(invocation: Invocation, services: Services) -> list[Reply]:
    """Choose the language I answer you in."""
    chosen = invocation.args.get("language")
    scope = invocation.args.get("scope", "me")
    if chosen is None:
        return private(
            _(
                "I answer you in {language}. Choose another language:",
                language=i18n.language_name(invocation.locale),
            ),
            *(
                Button(i18n.language_name(code), f"language {code}")
                for code in services.catalogs.languages
            ),
        )
    if scope == "group":
        return await _community_language(invocation, services, chosen)
    if chosen == "auto":
        await services.storage.set_language(invocation.volunteer_key, None)
        return private(_("I will follow your app's language again."))
    await services.storage.set_language(invocation.volunteer_key, chosen)
    with i18n.use(services.catalogs.get(chosen)):
        return private(_("From now on I will answer you in English."))


async def _community_language(
    invocation: Invocation, services: Services, chosen: str
) -> list[Reply]:
    if chosen == "auto":
        return private(
            _(
                "A community needs a fixed language: choose {languages}.",
                languages=i18n.current().join([Raw(code) for code in services.catalogs.languages]),
            )
        )
    await services.storage.set_community_language(invocation.platform, invocation.chat_id, chosen)
    with i18n.use(services.catalogs.get(chosen)):
        return [Reply(text=_("This community's language is now English."))]


# What a volunteer may choose: the zones of a place, "Area/Location" (Europe/Paris,
# America/Argentina/Buenos_Aires, and older names such as US/Eastern that still name one),
# plus UTC. Not what the system adds ("localtime", "Factory", "posixrules"), nor the Etc/
# zones, whose signs are inverted (Etc/GMT+5 is five hours *behind* UTC).
_NOT_PLACES = frozenset({"Etc", "SystemV", "posix", "right"})


def is_place_zone(name: str) -> bool:
    """Whether an IANA zone name is one a volunteer may choose: a place's, or UTC."""
    area, slash, _location = name.partition("/")
    return name == "UTC" or (bool(slash) and area[:1].isupper() and area not in _NOT_PLACES)


@cache
def _zones_by_folded_name() -> dict[str, str]:
    return {name.casefold(): name for name in available_timezones() if is_place_zone(name)}


def find_zone(text: str) -> str | None:
    """The IANA time zone a volunteer typed (case forgiven), or None."""
    text = text.strip().replace(" ", "_")
    if not _ZONE_SHAPE.match(text):
        return None
    return _zones_by_folded_name().get(text.casefold())


async def timezone(invocation: Invocation, services: Services) -> list[Reply]:
    """Show or set your time zone, e.g. /timezone Europe/Paris."""
    typed = invocation.args.get("zone")
    examples = Raw("Europe/Paris, Africa/Cairo, America/Montreal")
    if typed is None:
        return private(
            _(
                "Your time zone is {zone}. To change it, send /timezone followed by a name "
                "such as {examples}.",
                zone=reader_zone(invocation, services).key,
                examples=examples,
            )
        )
    name = find_zone(typed)
    if name is None:
        return private(
            _(
                "I don't know the time zone “{zone}”. Use a name such as {examples}.",
                zone=echo(typed),
                examples=examples,
            )
        )
    await services.storage.set_timezone(invocation.volunteer_key, name)
    now = i18n.current().when(services.clock(), ZoneInfo(name))
    return private(_("Your time zone is now {zone}. Your time there: {now}.", zone=name, now=now))


def commands(languages: Sequence[str]) -> tuple[Command, ...]:
    """/language (offering the catalogs in `languages`) and /timezone."""
    return (
        Command(
            "language",
            N_("Choose the language I answer you in"),
            language,
            args=(language_arg(languages), SCOPE),
        ),
        Command("timezone", N_("Show or set your time zone"), timezone, args=(ZONE,)),
    )
