"""Texts that several rooms show: the board, the tally, the freeze window, a broadcast's
progress and report. Handlers, delivery and the front-ends all import them from here, so no
layer below the handlers needs the handlers. Everything is written in the current locale
(`i18n.use()` is entered by the caller), except `render_board`, which uses the community's.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.core import i18n
from bot.core.i18n import Raw, _, ngettext
from bot.core.types import Button, Platform, Reply, ReplyKind
from bot.services.campaign import duration
from bot.services.container import Services
from storage.base import Tally


def pledge_button() -> Button:
    """The "I pledge" button, labelled in the current language."""
    return Button(label=_("I pledge"), action="pledge")


# Below this many pledges a community's web page says "fewer than 5": a page anyone may
# read never narrows a small group's count down to the one or two people who pledged.
SMALL_COMMUNITY = 5


def paragraphs(*parts: str) -> str:
    """Join whole sentences or paragraphs (never pieces of one sentence)."""
    return "\n\n".join(part for part in parts if part)


def window(services: Services, zone: ZoneInfo, platform: str = "") -> str:
    """One sentence giving the freeze window in a time zone (on Discord, in every reader's)."""
    campaign = services.campaign
    if campaign.start is None or campaign.end is None:
        return _("The organizers have not announced the freeze dates yet.")
    if platform == Platform.DISCORD:
        # Discord renders these in each reader's own time zone and language.
        start, end = int(campaign.start.timestamp()), int(campaign.end.timestamp())
        return _(
            "The freeze runs from {start} ({relative}) to {end}.",
            start=Raw(f"<t:{start}:F>"),
            relative=Raw(f"<t:{start}:R>"),
            end=Raw(f"<t:{end}:F>"),
        )
    translator = i18n.current()
    return _(
        "The freeze runs from {start} to {end} ({zone}).",
        start=translator.when(campaign.start, zone),
        end=translator.when(campaign.end, zone),
        zone=translator.zone_name(zone),
    )


BAR_CELLS = 10


def progress_bar(count: int, goal: int) -> str:
    """A ten-cell text bar of count toward goal."""
    filled = min(BAR_CELLS, count * BAR_CELLS // goal) if goal > 0 else 0
    return "▓" * filled + "░" * (BAR_CELLS - filled)


def tally_text(tally: Tally, services: Services) -> str:
    """The counts and the progress toward the goal, in the current language."""
    goal = services.campaign.goal
    parts = []
    if tally.community is not None:
        parts.append(
            ngettext(
                "{count} volunteer has pledged in this community.",
                "{count} volunteers have pledged in this community.",
                tally.community,
            )
        )
    parts.append(
        ngettext(
            "{count} volunteer has pledged in all.",
            "{count} volunteers have pledged in all.",
            tally.total,
        )
    )
    if tally.done:
        parts.append(
            ngettext(
                "{count} of them froze their accounts.",
                "{count} of them froze their accounts.",
                tally.done,
            )
        )
    parts.append(
        _(
            "Goal: {goal}. {bar} {percent}",
            goal=goal,
            bar=progress_bar(tally.total, goal),
            percent=i18n.current().percent(min(tally.total / goal, 9.99)),
        )
    )
    return "\n".join(parts)


async def render_board(services: Services, platform: str, chat_id: str) -> Reply:
    """A community's board as it should read now, in the community's language."""
    counts = await services.storage.tally(services.campaign.id, platform, chat_id)
    _volunteer, community = await services.storage.load_context(b"", platform, chat_id)
    language = (community.language if community else None) or services.settings.default_language
    with i18n.use(services.catalogs.get(language)):
        text = paragraphs(
            _(
                "Stop Hate For Profit: freeze your Instagram and Facebook accounts for {length}.",
                length=Raw(duration(services.campaign.length)),
            ),
            tally_text(counts, services),
            window(services, services.campaign.zone, platform),
        )
        button = pledge_button()
    return Reply(text=text, buttons=(button,), kind=ReplyKind.BOARD)


def remaining(counts: dict[str, int]) -> int:
    """Deliveries not settled yet: waiting or in flight."""
    return counts.get("pending", 0) + counts.get("inflight", 0)


def progress_text(counts: dict[str, int]) -> str:
    """Where a broadcast stands, in the current language."""
    failed = counts.get("failed", 0) + counts.get("unreachable", 0) + counts.get("unknown", 0)
    total = sum(counts.values())
    return "\n".join(
        (
            ngettext(
                "Sending your announcement to {count} recipient.",
                "Sending your announcement to {count} recipients.",
                total,
            ),
            _("Delivered: {count}", count=counts.get("sent", 0)),
            _("Failed: {count}", count=failed),
            _("Remaining: {count}", count=remaining(counts)),
        )
    )


def report_text(counts: dict[str, int]) -> str:
    """The final report of a broadcast, in the current language."""
    sent = counts.get("sent", 0)
    unreachable = counts.get("unreachable", 0)
    failed = counts.get("failed", 0)
    unknown = counts.get("unknown", 0)
    return paragraphs(
        ngettext(
            "Your announcement was delivered to {count} recipient.",
            "Your announcement was delivered to {count} recipients.",
            sent,
        ),
        ngettext(
            "{count} recipient could not be reached: they blocked the bot or left.",
            "{count} recipients could not be reached: they blocked the bot or left.",
            unreachable,
        )
        if unreachable
        else "",
        ngettext(
            "{count} message was refused by the platform.",
            "{count} messages were refused by the platform.",
            failed,
        )
        if failed
        else "",
        ngettext(
            "{count} message may not have arrived: the bot stopped while sending it.",
            "{count} messages may not have arrived: the bot stopped while sending them.",
            unknown,
        )
        if unknown
        else "",
    )
