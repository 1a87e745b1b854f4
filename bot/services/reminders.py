"""What each outbox message says in each language: freeze reminders, milestones and the
periodic tally post. (The ladder itself, LADDER and default_ladder, lives in bot.campaign.)"""

from __future__ import annotations

from bot.core import i18n
from bot.core.i18n import Raw, _, ngettext
from bot.core.text import with_opt_out
from bot.core.types import Button
from bot.services.campaign import LADDER as LADDER
from bot.services.campaign import default_ladder as default_ladder
from bot.services.campaign import duration
from bot.services.container import Services
from bot.services.render import paragraphs, tally_text, window
from storage.base import Tally


def tally_subject(tally: Tally) -> str:
    """The count a tally post shows, snapshotted when its broadcast is made: "total:done"."""
    return f"{tally.total}:{tally.done}"


def render(
    kind: str, subject: str, services: Services, platform: str, personal: bool
) -> tuple[str, tuple[Button, ...]]:
    """One outbox message in the current language, with its buttons, for a community or
    one volunteer."""
    if kind == "milestone":
        return _milestone(int(subject), services), ()
    if kind == "tally":
        return _tally(subject, services), ()
    rung, _sep, minutes = subject.partition(":")  # "before_1h:120": moved 2 hours ahead
    text = _reminder(rung, int(minutes) if minutes.isdigit() else None, services, platform)
    if personal:
        text = with_opt_out(text)
    if kind == "reminder" and rung == "checkin":
        # Answered by /done or this button, in a private chat or in the community.
        return text, (Button(_("I froze my accounts"), "done"),)
    return text, ()


def _milestone(count: int, services: Services) -> str:
    if count == services.campaign.goal:
        return ngettext(
            "We reached our goal: {count} volunteer has pledged. Thank you!",
            "We reached our goal: {count} volunteers have pledged. Thank you!",
            count,
        )
    return ngettext(
        "Milestone: {count} volunteer has pledged to freeze their accounts!",
        "Milestone: {count} volunteers have pledged to freeze their accounts!",
        count,
    )


def _tally(subject: str, services: Services) -> str:
    total, _sep, done = subject.partition(":")
    counts = Tally(community=None, total=int(total), done=int(done or 0))
    return paragraphs(_("Stop Hate For Profit: where we stand."), tally_text(counts, services))


def _reminder(rung: str, minutes: int | None, services: Services, platform: str) -> str:
    campaign = services.campaign
    if rung in ("before_24h", "before_1h") and minutes:
        # An organizer moved it: say how long is left, and when exactly the freeze runs.
        soon = (
            ngettext(
                "The freeze starts in {count} hour. Get ready to freeze your Instagram and "
                "Facebook accounts.",
                "The freeze starts in {count} hours. Get ready to freeze your Instagram and "
                "Facebook accounts.",
                minutes // 60,
            )
            if minutes % 60 == 0
            else ngettext(
                "The freeze starts in {count} minute. Get ready to freeze your Instagram and "
                "Facebook accounts.",
                "The freeze starts in {count} minutes. Get ready to freeze your Instagram and "
                "Facebook accounts.",
                minutes,
            )
        )
        return paragraphs(soon, window(services, campaign.zone, platform))
    if rung in ("before_24h", "before_1h") and minutes == 0:
        rung = "start"  # moved to the very start
    if rung == "before_24h":
        text = paragraphs(
            _(
                "Reminder: soon we freeze our Instagram and Facebook accounts, together, for "
                "{length}.",
                length=Raw(duration(campaign.length)),
            ),
            window(services, campaign.zone, platform),
        )
    elif rung == "before_1h":
        text = _(
            "The freeze starts in one hour. Get ready to freeze your Instagram and "
            "Facebook accounts."
        )
    elif rung == "start":
        text = _(
            "Freeze your accounts now: Instagram and Facebook, for {length}. Thank you for "
            "taking part!",
            length=Raw(duration(campaign.length)),
        )
    elif rung == "end":
        text = _(
            "The freeze is over. Now post your one message:\n\n{message}",
            message=Raw(campaign.message(i18n.current().locale)),
        )
    elif rung == "checkin":
        text = _(
            "Did you freeze your accounts? If you did, send {command} so we can count you.",
            command=Raw("/done"),
        )
    else:
        text = _("A reminder from the Stop Hate For Profit campaign.")
    return text
