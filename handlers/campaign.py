"""/campaign: the freeze window in your time, where it stands, and the message to post.

Organizers also see the reminder ladder, and change it:

    /campaign window 2026-12-16 09:00         the new start, in the campaign's time zone;
                                              the freeze keeps its length (24 hours)
    /campaign window 2026-12-16 09:00 48h     a new start and a new length (every text
                                              says the window's length)
    /campaign reminder before_1h 2h           how long before the start the rung goes
                                              (after the end, for end and checkin)
    /campaign reminder checkin off|on         switch a rung off, or back to its default

A change is stored (the window an organizer sets wins over the configured one), the
rungs move with the window, and the running scheduler rebuilds its jobs at once.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core import i18n
from bot.core.i18n import LRI, N_, PDI, Raw, _, ngettext
from bot.core.text import echo
from bot.core.types import Invocation, Platform, Reply, Scope, private
from bot.services.campaign import (
    LADDER,
    Phase,
    default_distance,
    duration,
    load_ladder,
    moved_ladder,
    place,
    reminder_key,
)
from bot.services.container import Services
from bot.services.registry import Arg, Choice, Command, fold
from bot.services.render import paragraphs, window
from handlers.common import post_message, reader_zone
from handlers.reminders import STATE

log = logging.getLogger(__name__)

ACTION = Arg(
    "action",
    label=N_("What to change (coalition organizers)"),
    choices=(
        Choice(
            "window",
            scope=Scope.COALITION,
            aliases=("fenêtre", "période", "dates", "نافذة", "موعد", "الموعد"),
        ),
        Choice(
            "reminder",
            scope=Scope.COALITION,
            aliases=("reminders", "rappel", "rappels", "تذكير", "التذكير", "تذكيرات"),
        ),
    ),
)
VALUE = Arg("value", label=N_("new value (coalition organizers)"), rest=True)

# The freeze keeps its length when organizers move it, unless they type a new one; every
# text says the window's own length (bot.services.campaign.duration).
MIN_LENGTH = timedelta(hours=1)
MAX_LENGTH = timedelta(days=14)
MAX_DISTANCE = timedelta(days=7)  # how far a reminder may be from its end of the window
# How far ahead organizers may move the freeze: further is surely a typo (2062 for 2026).
MAX_AHEAD = timedelta(days=366)

# "2026-12-16", "2026-12-16 09:00" or "2026-12-16T09:00".
_WINDOW = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})"
    r"(?:(?:T|\s+)(?P<hour>\d{1,2}):(?P<minute>\d{2}))?",
    re.IGNORECASE,
)
# Distances of reminders: "36h", "1h30", "90m", "2d" (or "2j"), "1d12h", "0".
_HOURS_MINUTES = re.compile(r"(\d{1,4})h(\d{1,2})")
_PARTS = re.compile(r"(?:\d{1,4}(?:min|mn|d|j|h|m))+")
_PART = re.compile(r"(\d{1,4})(min|mn|d|j|h|m)")
_UNITS = {
    "d": timedelta(days=1),
    "j": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "mn": timedelta(minutes=1),
    "min": timedelta(minutes=1),
}

WINDOW_EXAMPLE = "/campaign window 2026-12-16 09:00"
MOVE_EXAMPLE = "/campaign reminder before_1h 2h"
OFF_EXAMPLE = "/campaign reminder checkin off"
ON_EXAMPLE = "/campaign reminder checkin on"


def parse_length(text: str) -> timedelta | None:
    """A length of time typed as 36h, 1h30, 90m, 2d, 1d12h or 0; None if unreadable."""
    word = fold(text).replace(" ", "")
    if word.isdecimal():  # only 0 may go without a unit (and int() never reads 5,000 digits)
        return timedelta(0) if all(unicodedata.digit(ch) == 0 for ch in word) else None
    hours_minutes = _HOURS_MINUTES.fullmatch(word)
    if hours_minutes:
        if int(hours_minutes[2]) >= 60:  # 1h99 is a typo, not 2h39
            return None
        return timedelta(hours=int(hours_minutes[1]), minutes=int(hours_minutes[2]))
    if not _PARTS.fullmatch(word):
        return None
    return sum((int(n) * _UNITS[unit] for n, unit in _PART.findall(word)), timedelta())


def parse_start(match: re.Match[str], zone: ZoneInfo) -> datetime | None:
    """The start a window's date and time mean in the campaign's zone; None if no such day."""
    if not 1970 <= int(match["year"]) <= 2999:
        return None
    try:
        return datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            int(match["hour"] or 0),
            int(match["minute"] or 0),
            tzinfo=zone,
        )
    except ValueError:
        return None


def find_rung(word: str) -> str | None:
    """The rung a word names (before_1h, before-1h, check-in…), or None."""
    name = fold(word).replace("-", "_")
    name = "checkin" if name == "check_in" else name
    return name if name in LADDER else None


def example(command: str) -> Raw:
    """A command to copy, kept in one left-to-right piece inside right-to-left text."""
    return Raw(f"{LRI}{command}{PDI}" if i18n.current().rtl else command)


def window_example(services: Services) -> str:
    """The window command with the current window's values (or an example date)."""
    campaign = services.campaign
    if campaign.start is None or campaign.end is None:
        return WINDOW_EXAMPLE
    start = campaign.start.astimezone(campaign.zone)
    return f"/campaign window {start:%Y-%m-%d %H:%M}"


def moment_text(moment: datetime, zone: ZoneInfo, platform: str) -> str:
    """A reminder's moment for the reader (on Discord, in each reader's own time zone)."""
    if platform == Platform.DISCORD:
        return Raw(f"<t:{int(moment.timestamp())}:f>")
    return i18n.current().when(moment, zone)


async def campaign(invocation: Invocation, services: Services) -> list[Reply]:
    """Show the freeze window and the message to post; organizers also change the schedule."""
    action = invocation.args.get("action")
    if action is None:
        replies = [Reply(text=overview(invocation, services))]
        if invocation.is_organizer:
            replies += private(await schedule_text(invocation, services))
        return replies
    value = invocation.args.get("value", "").strip()
    if action == "window":
        return await set_window(invocation, services, value)
    return await set_reminder(invocation, services, value)


def overview(invocation: Invocation, services: Services) -> str:
    """The freeze window in the reader's time, where the campaign stands, the message."""
    phase = services.campaign.phase(services.clock())
    status = {
        Phase.UNSCHEDULED: "",
        Phase.UPCOMING: _("The freeze has not started yet."),
        Phase.FREEZING: _("The freeze is under way: keep your accounts frozen until it ends."),
        Phase.OVER: _("The freeze is over. Thank you to everyone who took part!"),
    }[phase]
    return paragraphs(
        _(
            "Stop Hate For Profit: freeze your Instagram and Facebook accounts for {length}.",
            length=Raw(duration(services.campaign.length)),
        ),
        window(services, reader_zone(invocation, services), invocation.platform),
        status,
        post_message(services),
    )


async def schedule_text(invocation: Invocation, services: Services) -> str:
    """For organizers: each reminder, its moment in the reader's time, whether it was sent,
    and how to change the window and the reminders."""
    campaign = services.campaign
    translator = i18n.current()
    zone = reader_zone(invocation, services)
    how = paragraphs(
        _(
            "To move the window: {example} (its new start, in {zone}; the freeze keeps its "
            "length).",
            example=example(window_example(services)),
            zone=translator.zone_name(campaign.zone),
        ),
        _(
            "To move a reminder: {example} (how long before the start; after the end, for "
            "end and checkin). To switch one off or back on: {off}, {on}.",
            example=example(MOVE_EXAMPLE),
            off=example(OFF_EXAMPLE),
            on=example(ON_EXAMPLE),
        ),
    )
    if campaign.start is None or campaign.end is None:
        return paragraphs(_("No reminders are scheduled: the freeze has no dates yet."), how)
    ladder = await load_ladder(services.storage, campaign)
    keys = {rung: reminder_key(campaign.slug, rung, due) for rung, due in ladder.items()}
    sent = await services.storage.broadcasts_made(list(keys.values()))
    now = services.clock()
    lines = [
        _("Reminders:")
        if invocation.platform == Platform.DISCORD
        else _("Reminders ({zone}):", zone=translator.zone_name(zone))
    ]
    for rung in [*LADDER, *(r for r in ladder if r not in LADDER)]:
        due = ladder.get(rung)
        if due is None:
            lines.append(_("• {rung}: off", rung=rung))
            continue
        moment = moment_text(due, zone, invocation.platform)
        if keys[rung] in sent:
            lines.append(_("• {rung}: {moment}, sent", rung=rung, moment=moment))
        elif due > now:
            lines.append(_("• {rung}: {moment}, to come", rung=rung, moment=moment))
        else:
            lines.append(
                _("• {rung}: {moment}, not sent (its moment has passed)", rung=rung, moment=moment)
            )
    return paragraphs("\n".join(lines), how)


async def set_window(invocation: Invocation, services: Services, value: str) -> list[Reply]:
    """Move the freeze window to a new start in the campaign's time zone; it keeps its
    length."""
    translator = i18n.current()
    zone = services.campaign.zone
    zone_name = translator.zone_name(zone)
    if not value:
        return private(
            _(
                "Write the new start of the freeze in the campaign's time zone ({zone}), for "
                "example {example}. The freeze keeps its length ({length}) unless you add a "
                "new one after the start, for example {longer}.",
                zone=zone_name,
                example=example(window_example(services)),
                length=Raw(duration(services.campaign.length)),
                longer=example(window_example(services) + " 48h"),
            )
        )
    match = _WINDOW.fullmatch(value)
    asked: timedelta | None = None  # a new length, typed after the start
    if match is None and " " in value.strip():
        head, _sep, tail = value.strip().rpartition(" ")
        asked = parse_length(tail)
        match = _WINDOW.fullmatch(head.strip()) if asked is not None else None
    start = parse_start(match, zone) if match else None
    if asked is not None and not MIN_LENGTH <= asked <= MAX_LENGTH:
        return private(
            _(
                "A freeze lasts from {shortest} to {longest}. Nothing changed.",
                shortest=Raw(duration(MIN_LENGTH)),
                longest=Raw(duration(MAX_LENGTH)),
            )
        )
    if match is None or start is None:
        return private(
            _(
                "I could not read “{value}” as a date and time. Write the start of the freeze "
                "in the campaign's time zone ({zone}), for example {example}.",
                value=echo(value),
                zone=zone_name,
                example=example(window_example(services)),
            )
        )
    length = asked or services.campaign.length
    start = start.astimezone(UTC)
    end = start + length
    now = services.clock()
    if end <= now:
        return private(
            _(
                "A freeze from {start} to {end} would already be over. Nothing changed.",
                start=translator.when(start, zone),
                end=translator.when(end, zone),
            )
        )
    if start - now > MAX_AHEAD:
        return private(
            _(
                "A freeze starting on {start} is more than a year away. Choose a start within "
                "a year from now. Nothing changed.",
                start=translator.when(start, zone),
            )
        )
    async with services.schedule_lock:
        current = services.campaign
        ladder = await load_ladder(services.storage, current)
        moved = moved_ladder(ladder, current, start, end)
        # A rung the move puts in the past is not sent late: it is switched off, and said so.
        passed = [rung for rung, due in moved.items() if due <= now and ladder.get(rung) != due]
        for rung in passed:
            del moved[rung]
        await store(services, start, end, moved)
    log.info("an organizer moved the freeze window (%s rungs off)", len(passed))
    done = _(
        "Done: the freeze now runs from {start} to {end} ({zone}).",
        start=translator.when(start, zone),
        end=translator.when(end, zone),
        zone=zone_name,
    )
    note = (
        ngettext(
            "This reminder's moment has already passed, so it is now off: {rungs}.",
            "These reminders' moments have already passed, so they are now off: {rungs}.",
            len(passed),
            rungs=translator.join(passed),
        )
        if passed
        else ""
    )
    return private(paragraphs(done, note, await schedule_text(invocation, services)))


async def set_reminder(invocation: Invocation, services: Services, value: str) -> list[Reply]:
    """Move a reminder (how long before the start, or after the end), or switch it off/on."""
    words = value.split()
    usage = _(
        "Name a reminder and when it goes, for example {example} (2 hours before the start; "
        "after the end, for end and checkin), or switch it off with {off}.",
        example=example(MOVE_EXAMPLE),
        off=example(OFF_EXAMPLE),
    )
    if not words:
        return private(usage)
    rung = find_rung(words[0])
    if rung is None:
        return private(
            _(
                "There is no reminder called “{value}”. The reminders are: {rungs}.",
                value=echo(words[0]),
                rungs=i18n.current().join(list(LADDER)),
            )
        )
    if len(words) < 2:
        return private(usage)
    setting = " ".join(words[1:])
    state = next((c.value for c in STATE.choices if c.matches(setting)), None)
    distance = default_distance(rung) if state == "on" else parse_length(setting)
    if state != "off" and (distance is None or distance > MAX_DISTANCE):
        return private(
            _(
                "I could not read “{value}” as a length of up to 7 days, such as {example}, "
                "or as {off}.",
                value=echo(setting),
                example=Raw("2h"),
                off=Raw("off"),
            )
        )
    async with services.schedule_lock:
        current = services.campaign
        if current.start is None or current.end is None:
            return private(
                _(
                    "The freeze has no dates yet. Set them first, for example {example}.",
                    example=example(window_example(services)),
                )
            )
        ladder = dict(await load_ladder(services.storage, current))
        if state == "off":
            ladder.pop(rung, None)
            done = _("Done: the {rung} reminder is now off.", rung=rung)
        else:
            assert distance is not None
            moment = place(rung, distance, current.start, current.end)
            zone = reader_zone(invocation, services)
            if moment <= services.clock():
                return private(
                    _(
                        "That would be {moment}, which has already passed. Nothing changed.",
                        moment=moment_text(moment, zone, invocation.platform),
                    )
                )
            ladder[rung] = moment
            done = _(
                "Done: the {rung} reminder will now go out on {moment}.",
                rung=rung,
                moment=moment_text(moment, zone, invocation.platform),
            )
        await store(services, current.start, current.end, ladder)
    log.info("an organizer changed the %s reminder", rung)
    return private(paragraphs(done, await schedule_text(invocation, services)))


async def store(
    services: Services, start: datetime, end: datetime, ladder: dict[str, datetime]
) -> None:
    """Store an organizer's window and ladder, use them from now on, and reschedule."""
    campaign = services.campaign
    # The stored window also marks the ladder as the organizers': an empty one stays empty.
    await services.storage.set_window(campaign.id, start, end, ladder)
    services.campaign = replace(
        campaign, start=start.astimezone(campaign.zone), end=end.astimezone(campaign.zone)
    )
    await services.schedule_changed()
    services.counts_changed()  # boards show the window too: let them redraw


COMMANDS = (
    Command(
        "campaign",
        N_("Show the freeze window and the message to post"),
        campaign,
        args=(ACTION, VALUE),
        public=True,
    ),
)
