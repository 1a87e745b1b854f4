"""/announce for organizers: a preview with a confirm button, then a broadcast to every
subscribed community and opted-in volunteer, each in their language.

Nothing an announcement says pings anyone, except one role the organizer chooses in the
coalition's own Discord server (`/announce <@&role> …`, a role option on Discord): that
server's copy mentions it, and only that role; every other copy pings nobody."""

from __future__ import annotations

import re
from functools import cache

from bot.core import i18n
from bot.core.i18n import N_, Raw, _, ngettext
from bot.core.text import MESSAGE_LIMITS, clean, echo, message_count, parse_whole, with_opt_out
from bot.core.types import (
    PING_KEY,
    Button,
    Invocation,
    Platform,
    Reply,
    Scope,
    Visibility,
    private,
)
from bot.services.container import Services
from bot.services.registry import ROLE_MENTION, Arg, ArgKind, Command
from bot.services.render import paragraphs, progress_text
from handlers.common import platform_name

TEXT = Arg(
    "text",
    label=N_("The announcement; start each language's part with its code, such as fr:"),
    rest=True,
)
ID = Arg("id", label=N_("announcement number"), required=True)
PING = Arg(
    "ping",
    label=N_("A role to ping in the coalition's Discord server"),
    kind=ArgKind.ROLE,
)

# Characters per language. Telegram takes 4,096 in one message; 4,000 leaves room for the
# line a volunteer's copy gets ("To stop these reminders…"), so every Telegram reader gets
# an announcement in one message, and a Discord reader (2,000 a message) in a few. The
# preview says how many.
MAX_LENGTH = 4000
MAX_ID = 2**63 - 1  # the largest id storage can hold


@cache
def _marker(languages: tuple[str, ...]) -> re.Pattern[str]:
    codes = "|".join(re.escape(code) for code in languages)
    return re.compile(rf"(?:^|\s)({codes}):\s*", re.IGNORECASE)


def variants(text: str, default: str, languages: tuple[str, ...]) -> dict[str, str]:
    """Split 'en: … fr: … ar: …' into texts per language; unmarked text is `default`'s."""
    parts = _marker(languages).split(text)
    found: dict[str, str] = {}
    if parts[0].strip():
        found[default] = parts[0].strip()
    for language, body in zip(parts[1::2], parts[2::2], strict=True):
        if body.strip():
            found[language.lower()] = body.strip()
    return found


def home_community(invocation: Invocation, services: Services) -> bool:
    """Whether this was sent in the coalition's own Discord server (its home community)."""
    home = services.settings.discord_home_guild_id
    return (
        invocation.platform is Platform.DISCORD
        and invocation.in_group
        and home is not None
        and invocation.chat_id == str(home)
    )


def ping_refusal(invocation: Invocation, services: Services, role: str) -> str | None:
    """Why this role may not be pinged (None: it may): only a role of the coalition's own
    Discord server, chosen there, and never everyone."""
    if not home_community(invocation, services):
        return _(
            "An announcement can ping a role of the coalition's own Discord server only: "
            "send /announce with the role there. Nothing was saved."
        )
    if role == invocation.chat_id:  # Discord's @everyone role has the server's id
        return _("An announcement never pings everyone: choose a role. Nothing was saved.")
    return None


async def announce(invocation: Invocation, services: Services) -> list[Reply]:
    """Announce to every community and volunteer, in their languages (coalition organizers)."""
    chosen = ROLE_MENTION.fullmatch(invocation.args.get("ping", ""))  # a role to ping, <@&id>
    role = chosen.group(1) if chosen else None
    if role is not None:
        refusal = ping_refusal(invocation, services, role)
        if refusal is not None:
            return private(refusal)
    typed = clean(invocation.args.get("text", ""))
    languages = services.catalogs.languages
    texts = variants(typed, invocation.locale, languages)
    if not texts:
        return private(
            _(
                "Write the announcement after the command, for example: {example}",
                example=Raw("/announce en: Tomorrow we freeze! fr: Demain, on gèle !"),
            )
        )
    longest = max(texts, key=lambda code: len(texts[code]))
    if len(texts[longest]) > MAX_LENGTH:
        return private(
            ngettext(
                "This announcement is too long: each language's text may have at most {count} "
                "character, and the {language} text has {length}. Nothing was saved.",
                "This announcement is too long: each language's text may have at most {count} "
                "characters, and the {language} text has {length}. Nothing was saved.",
                MAX_LENGTH,
                language=i18n.language_name(longest),
                length=len(texts[longest]),
            )
        )
    source = invocation.locale if invocation.locale in texts else next(iter(texts))
    kept = dict(texts)
    if role is not None:
        kept[PING_KEY] = f"{invocation.platform.value}:{invocation.chat_id}:{role}"
    announcement_id = await services.storage.save_announcement(services.campaign.id, kept, source)
    preview = [_("Preview of your announcement:")]
    preview += [
        _("{language}: {text}", language=i18n.language_name(code), text=texts[code])
        for code in languages
        if code in texts
    ]
    missing = [i18n.language_name(code) for code in languages if code not in texts]
    notes = (
        _(
            "No text in {missing}: those readers will get the {language} text.",
            missing=i18n.current().join(missing),
            language=i18n.language_name(source),
        )
        if missing
        else ""
    )
    pinged = (
        _(
            "In this server, it will ping {role}; everywhere else it pings nobody.",
            role=Raw(f"<@&{role}>"),
        )
        if role is not None
        else ""
    )
    return private(
        paragraphs(
            "\n".join(preview),
            notes,
            pinged,
            message_counts(texts, source, services),
            _("Press the button to send it to everyone."),
        ),
        Button(_("Send to everyone"), f"announce_send {announcement_id}"),
    )


def message_counts(texts: dict[str, str], source: str, services: Services) -> str:
    """How many messages each reader gets, per platform where that differs (Telegram and
    Discord cut long texts at different lengths)."""
    counts: dict[str, int] = {}
    for platform in MESSAGE_LIMITS:
        if services.platforms is not None and platform not in services.platforms:
            continue
        most = 1
        for language in services.catalogs.languages:
            # The longest copy: a volunteer's, with the line saying how to stop reminders.
            with i18n.use(services.catalogs.get(language)):
                copy = with_opt_out(texts.get(language) or texts[source])
            most = max(most, message_count(copy, platform))
        counts[platform] = most
    if len(set(counts.values())) <= 1:
        return ngettext(
            "Each reader gets it in {count} message.",
            "Each reader gets it in {count} messages.",
            max(counts.values(), default=1),
        )
    return "\n".join(
        ngettext(
            "On {platform}, each reader gets it in {count} message.",
            "On {platform}, each reader gets it in {count} messages.",
            count,
            platform=platform_name(platform),
        )
        for platform, count in counts.items()
    )


async def announce_send(invocation: Invocation, services: Services) -> list[Reply]:
    """Send a previewed announcement (the preview's button)."""
    raw = invocation.args.get("id", "")
    number = parse_whole(raw, MAX_ID)
    if number is None:
        command = services.registry.get("announce_send")
        assert command is not None
        return private(
            _(
                "I did not understand “{value}”. Usage: {usage}",
                value=echo(raw),
                usage=Raw(command.usage()),
            )
        )
    found = await services.storage.announcement(number)
    if found is None:
        return private(_("That announcement no longer exists. Send /announce again."))
    # The key is made from the number, not from what was typed: "7" and "007" are one
    # announcement, sent once.
    made = await services.storage.create_broadcast(
        services.campaign.id,
        f"announcement:{services.campaign.slug}:{number}",
        "announcement",
        str(number),
        services.settings.default_language,
        platforms=services.platforms,
        started=services.broadcast_created,  # sending starts while the rest is added
    )
    if made is None:
        return private(_("This announcement was already sent."))
    if made.recipients == 0:
        return private(
            _(
                "Nobody to send it to yet: no community is subscribed and no volunteer "
                "opted in to reminders."
            )
        )
    services.broadcast_created()  # the sender starts at once, not at its next look
    # The front-end keeps this message up to date as the broadcast goes (bot.progress).
    return [
        Reply(
            text=progress_text({"pending": made.recipients}),
            visibility=Visibility.PRIVATE,
            progress=made.id,
        )
    ]


COMMANDS = (
    Command(
        "announce",
        N_("Announce to every community and volunteer (coalition organizers)"),
        announce,
        args=(PING, TEXT),
        scope=Scope.COALITION,
    ),
    Command(
        "announce_send",
        N_("Send a previewed announcement (coalition organizers)"),
        announce_send,
        args=(ID,),
        scope=Scope.COALITION,
        hidden=True,
    ),
)
