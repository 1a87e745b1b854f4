"""/announce for organizers: a preview with a confirm button, then a broadcast to every
subscribed community and opted-in volunteer, each in their language."""

from __future__ import annotations

import re

from bot import i18n
from bot.core import Button, Invocation, Reply, Visibility, private
from bot.i18n import N_, Raw, _
from bot.progress import progress_text
from bot.registry import Arg, Command
from bot.services import Services
from bot.text import clean
from handlers.common import LANGUAGE_NAMES, paragraphs

TEXT = Arg("text", label=N_("The announcement; start a part with ar:, fr: or en:"), rest=True)
ID = Arg("id", required=True)
_MARKER = re.compile(r"(?:^|\s)(ar|fr|en):\s*", re.IGNORECASE)


def variants(text: str, default: str) -> dict[str, str]:
    """Split 'en: … fr: … ar: …' into texts per language; unmarked text is `default`'s."""
    parts = _MARKER.split(text)
    found: dict[str, str] = {}
    if parts[0].strip():
        found[default] = parts[0].strip()
    for language, body in zip(parts[1::2], parts[2::2], strict=True):
        if body.strip():
            found[language.lower()] = body.strip()
    return found


async def announce(invocation: Invocation, services: Services) -> list[Reply]:
    """Announce to every community and volunteer, in their languages (organizers)."""
    typed = clean(invocation.args.get("text", ""))
    texts = variants(typed, invocation.locale)
    if not texts:
        return private(
            _(
                "Write the announcement after the command, for example: {example}",
                example=Raw("/announce en: Tomorrow we freeze! fr: Demain, on gèle !"),
            )
        )
    source = invocation.locale if invocation.locale in texts else next(iter(texts))
    announcement_id = await services.storage.save_announcement(services.campaign.id, texts, source)
    preview = [_("Preview of your announcement:")]
    preview += [
        _("{language}: {text}", language=LANGUAGE_NAMES[code], text=texts[code])
        for code in LANGUAGE_NAMES
        if code in texts
    ]
    missing = [LANGUAGE_NAMES[code] for code in LANGUAGE_NAMES if code not in texts]
    notes = (
        _(
            "No text in {missing}: those readers will get the {language} text.",
            missing=i18n.current().join(missing),
            language=LANGUAGE_NAMES[source],
        )
        if missing
        else ""
    )
    return private(
        paragraphs("\n".join(preview), notes, _("Press the button to send it to everyone.")),
        Button(_("Send to everyone"), f"announce_send {announcement_id}"),
    )


async def announce_send(invocation: Invocation, services: Services) -> list[Reply]:
    """Send a previewed announcement (the preview's button)."""
    raw = invocation.args.get("id", "")
    found = await services.storage.announcement(int(raw)) if raw.isdigit() else None
    if found is None:
        return private(_("That announcement no longer exists. Send /announce again."))
    made = await services.storage.create_broadcast(
        services.campaign.id,
        f"announcement:{services.campaign.slug}:{raw}",
        "announcement",
        raw,
        services.settings.default_language,
        platforms=services.platforms,
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
        N_("Announce to every community and volunteer (organizers)"),
        announce,
        args=(TEXT,),
        organizer_only=True,
    ),
    Command(
        "announce_send",
        N_("Send a previewed announcement (organizers)"),
        announce_send,
        args=(ID,),
        organizer_only=True,
        hidden=True,
    ),
)
