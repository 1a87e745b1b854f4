"""Organizers change the freeze window and the reminders with /campaign, and turn on a
periodic tally post with /tallypost: through the console, with a clock the test moves."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app.bootstrap import bootstrap, utc_now
from bot.core.settings import Settings
from bot.core.types import ChatKind, Invocation, Platform
from bot.delivery.outbox import Outbox
from bot.frontends.console import Console
from bot.schedule.scheduler import ReminderScheduler
from storage.base import Broadcast
from tests.conftest import NOW, WAIT, App, eventually, make_settings, subscribers

PARIS = ZoneInfo("Europe/Paris")
NNBSP = "\u202f"  # what Babel puts between a time and AM/PM in English


@dataclass
class Clock:
    """The services' clock, moved by the test."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@asynccontextmanager
async def running(settings: Settings, clock: Clock | None = None) -> AsyncIterator[App]:
    """The bot on the test's data directory; leaving and entering again is a restart."""
    async with bootstrap(settings, clock=clock or utc_now) as (services, dispatcher):
        out = io.StringIO()
        yield App(services, dispatcher, out, Console(dispatcher, out=out))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def away_from_today(tmp_path: Path) -> Settings:
    """Settings whose freeze window is a month from the real date. APScheduler runs on the
    wall clock, not on the test's Clock: with the fixed December 2026 window, a test that
    starts the real scheduler would find a reminder rung due (and send it) whenever the
    suite runs within an hour after one, during the real campaign."""
    real = datetime.now(UTC)
    return make_settings(
        tmp_path,
        campaign_start=(real + timedelta(days=30)).isoformat(),
        campaign_end=(real + timedelta(days=31)).isoformat(),
    )


@pytest.fixture
async def bot(settings: Settings, clock: Clock) -> AsyncIterator[App]:
    async with running(settings, clock) as app:
        yield app


def outbox_for(app: App) -> Outbox:
    outbox = Outbox(app.services)
    outbox.register(app.console)
    return outbox


async def sent(app: App, outbox: Outbox) -> str:
    """What the outbox delivers now, as the console shows it."""
    before = app.out.tell()
    await outbox.drain()
    return app.out.getvalue()[before:]


def at(text: str) -> str:
    """An English moment as Babel writes it: '9:00 AM' with a narrow no-break space."""
    return text.replace(" AM", f"{NNBSP}AM").replace(" PM", f"{NNBSP}PM")


# -- /campaign: what volunteers and organizers see -------------------------------------------


async def test_volunteers_see_the_window_and_organizers_also_the_ladder(bot: App) -> None:
    out = await bot.run("/campaign")
    assert at("The freeze runs from Wed, Dec 16, 2026, 9:00 AM to Thu, Dec 17, 2026") in out
    assert "Reminders" not in out and "before_1h" not in out

    out = await bot.run(":organizer on\n/campaign")
    assert at("The freeze runs from Wed, Dec 16, 2026, 9:00 AM") in out
    assert "bot (only amina sees this): Reminders (Central European Time):" in out
    assert at("• before_24h: Tue, Dec 15, 2026, 9:00 AM, to come") in out
    assert at("• before_1h: Wed, Dec 16, 2026, 8:00 AM, to come") in out
    assert at("• start: Wed, Dec 16, 2026, 9:00 AM, to come") in out
    assert at("• end: Thu, Dec 17, 2026, 9:00 AM, to come") in out
    assert at("• checkin: Thu, Dec 17, 2026, 10:00 AM, to come") in out
    # how to change them, with the current window as the example to edit
    assert "To move the window: /campaign window 2026-12-16 09:00 (its new start" in out
    assert "/campaign reminder before_1h 2h" in out and "/campaign reminder checkin off" in out


async def test_the_ladder_is_shown_in_the_organizers_own_time_zone(bot: App) -> None:
    out = await bot.run(":organizer on\n/timezone America/Montreal\n/campaign")
    assert "Reminders (Eastern Time):" in out
    assert at("• start: Wed, Dec 16, 2026, 3:00 AM, to come") in out


# -- changing the window --------------------------------------------------------------------


async def test_a_new_window_moves_its_reminders_and_outlives_a_restart(
    settings: Settings, clock: Clock
) -> None:
    async with running(settings, clock) as app:
        out = await app.run(":organizer on\n/campaign window 2026-12-20 18:00")
        assert (
            at(
                "Done: the freeze now runs from Sun, Dec 20, 2026, 6:00 PM to Mon, Dec 21, 2026, "
                "6:00 PM (Central European Time)."
            )
            in out
        )
        assert at("• before_24h: Sat, Dec 19, 2026, 6:00 PM, to come") in out
        assert at("• before_1h: Sun, Dec 20, 2026, 5:00 PM, to come") in out
        assert at("• end: Mon, Dec 21, 2026, 6:00 PM, to come") in out
        assert at("• checkin: Mon, Dec 21, 2026, 7:00 PM, to come") in out
        assert "/campaign window 2026-12-20 18:00" in out  # the command to copy, filled in

        out = await app.run(":as lea\n:organizer off\n:hint fr\n/campaign")
        assert "Le gel commence le dim. 20 déc. 2026, 18:00 et se termine le lun. 21 déc." in out

    # The configured window still says December 16: the organizers' one wins after a restart.
    async with running(settings, clock) as app:
        out = await app.run("/campaign")
        assert at("The freeze runs from Sun, Dec 20, 2026, 6:00 PM") in out
        scheduler = ReminderScheduler(app.services)
        old_start = datetime(2026, 12, 16, 9, 0, tzinfo=PARIS)
        new_start = datetime(2026, 12, 20, 18, 0, tzinfo=PARIS)
        assert await scheduler.fire_due(old_start) == []
        assert "start" in await scheduler.fire_due(new_start)


async def test_window_without_a_time_starts_at_midnight_and_lasts_24_hours(bot: App) -> None:
    out = await bot.run(":organizer on\n/campaign window 2026-12-18")
    assert "Fri, Dec 18, 2026, 12:00" in out and "Sat, Dec 19, 2026, 12:00" in out


async def test_a_window_of_another_length_changes_every_text_that_says_it(bot: App) -> None:
    assert "for 24 hours" in await bot.run(":as omar\n/pledge")
    out = await bot.run(":organizer on\n/campaign window 2026-12-18 09:00 48h")
    assert at("Fri, Dec 18, 2026, 9:00 AM to Sun, Dec 20, 2026, 9:00 AM") in out
    out = await bot.run(":organizer off\n:as amina\n/pledge")
    assert "you will freeze your accounts (Instagram and Facebook) for 2 days." in out
    assert "I froze my Instagram and Facebook accounts for 2 days because" in out
    out = await bot.run(":as lea\n:hint fr\n/campaign")
    assert "gelez vos comptes Instagram et Facebook pendant 2 jours." in out
    out = await bot.run(":as sami\n:hint ar\n/start")
    assert "نجمّد حساباتنا على إنستاجرام وفيسبوك لمدة يومين" in out

    out = await bot.run(":as amina\n:hint none\n:organizer on\n/campaign window 2026-12-18 90m")
    assert at("Fri, Dec 18, 2026, 12:00 AM to Fri, Dec 18, 2026, 1:30 AM") in out
    out = await bot.run("/campaign window 2026-12-18 0")
    assert "A freeze lasts from 1 hour to 14 days. Nothing changed." in out
    out = await bot.run(":organizer off\n/campaign")
    assert "for 90 minutes." in out


async def test_reminders_a_new_window_puts_in_the_past_are_switched_off(
    bot: App, clock: Clock
) -> None:
    await subscribers(bot)
    clock.now = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
    out = await bot.run(":as org\n:private\n:organizer on\n/campaign window 2026-12-10 13:45")
    assert (
        "These reminders' moments have already passed, so they are now off: before_24h and "
        "before_1h."
    ) in out
    assert "• before_24h: off" in out and "• before_1h: off" in out
    assert at("• start: Thu, Dec 10, 2026, 1:45 PM, to come") in out
    # nothing is sent late for them
    scheduler = ReminderScheduler(bot.services)
    assert await scheduler.fire_due(clock.now) == []


# -- moving and switching off a rung ----------------------------------------------------------


async def test_a_moved_rung_fires_at_its_new_moment_and_a_rung_off_never(
    settings: Settings, clock: Clock
) -> None:
    async with running(settings, clock) as app:
        await subscribers(app)
        out = await app.run(":as org\n:private\n:organizer on\n/campaign reminder before_1h 2h")
        assert (
            at("Done: the before_1h reminder will now go out on Wed, Dec 16, 2026, 7:00 AM.") in out
        )
        out = await app.run("/campaign reminder checkin off")
        assert "Done: the checkin reminder is now off." in out
        assert "• checkin: off" in out

        scheduler = ReminderScheduler(app.services)
        outbox = outbox_for(app)
        seven = datetime(2026, 12, 16, 7, 0, tzinfo=PARIS)
        assert await scheduler.fire_due(seven - timedelta(minutes=1)) == []
        assert await scheduler.fire_due(seven) == ["before_1h"]
        delivered = await sent(app, outbox)  # the text says how long is left now
        assert "bot → dm-lea: The freeze starts in 2 hours. Get ready" in delivered
        assert "bot → dm-karim: Le gel commence dans 2 heures." in delivered
        assert at("The freeze runs from Wed, Dec 16, 2026, 9:00 AM") in delivered
        clock.now = seven + timedelta(minutes=5)
        out = await app.run("/campaign")
        assert at("• before_1h: Wed, Dec 16, 2026, 7:00 AM, sent") in out
        assert at("• start: Wed, Dec 16, 2026, 9:00 AM, to come") in out

        end = datetime(2026, 12, 17, 9, 0, tzinfo=PARIS)
        assert await scheduler.fire_due(end) == ["end"]
        await sent(app, outbox)
        assert await scheduler.fire_due(end + timedelta(hours=1)) == []  # no check-in
        assert await sent(app, outbox) == ""

    # After a restart the rung is still off (an organizer's ladder is never seeded again),
    # and a new window keeps the moved rung two hours before the start.
    async with running(settings, clock) as app:
        out = await app.run(":as org\n:private\n:organizer on\n/campaign window 2026-12-18 09:00")
        assert at("• before_1h: Fri, Dec 18, 2026, 7:00 AM, to come") in out
        assert "• checkin: off" in out
        assert "checkin" not in await ReminderScheduler(app.services).ladder()
        out = await app.run("/campaign reminder checkin on")
        assert at("• checkin: Sat, Dec 19, 2026, 10:00 AM, to come") in out


async def test_every_rung_off_stays_off_after_a_restart(settings: Settings, clock: Clock) -> None:
    async with running(settings, clock) as app:
        await app.run(":organizer on")
        for rung in ("before_24h", "before_1h", "start", "end", "checkin"):
            await app.run(f"/campaign reminder {rung} off")
    async with running(settings, clock) as app:
        assert await ReminderScheduler(app.services).ladder() == {}
        out = await app.run(":organizer on\n/campaign")
        assert out.count(": off") == 5


# -- the running scheduler follows a change at once (real time, real APScheduler) ----------


async def test_the_running_scheduler_rebuilds_at_once_and_sends_a_moved_rung_once(
    tmp_path: Path,
) -> None:
    real = datetime.now(UTC)
    settings = make_settings(
        tmp_path,
        campaign_start=(real + timedelta(days=30)).isoformat(),
        campaign_end=(real + timedelta(days=31)).isoformat(),
    )
    async with running(settings) as app:
        await subscribers(app)  # four recipients on the console
        fired = asyncio.Event()
        # At 0.01 message/s the fan-out of four takes 400 s: a moment's job runs 8 minutes
        # early, so a start a few minutes from now is due at once.
        scheduler = ReminderScheduler(app.services, fired.set, rates={"console": 0.01})
        firings: list[tuple[str, bool]] = []  # each job run: its rung, whether it made one
        fire = scheduler.fire

        async def recorded(rung: str, due: datetime) -> Broadcast | None:
            made = await fire(rung, due)
            firings.append((rung, made is not None))
            return made

        scheduler.fire = recorded  # type: ignore[method-assign]
        await scheduler.start()
        try:
            soon = (real + timedelta(minutes=4)).astimezone(PARIS).replace(second=0, microsecond=0)
            out = await app.run(
                f":as org\n:private\n:organizer on\n/campaign window {soon:%Y-%m-%d %H:%M}"
            )
            assert "so they are now off: before_24h and before_1h." in out
            await asyncio.wait_for(fired.wait(), timeout=WAIT)
            outbox = outbox_for(app)
            delivered = await sent(app, outbox)
            assert "bot → dm-lea: Freeze your accounts now" in delivered
            assert "bot → console-community: Gelez vos comptes maintenant" in delivered
            assert delivered.count("bot →") == 4

            # Another change rebuilds the jobs again: the start is not sent a second time.
            fired.clear()
            before = len(firings)
            await app.run("/campaign reminder checkin 2h")
            # The rebuilt start job is past due, so APScheduler runs it again at once: wait
            # for that run, or "nothing was sent" would only mean "not yet".
            await eventually(
                lambda: any(rung == "start" for rung, _ in firings[before:]),
                what="the rebuilt start job has run",
            )
            assert ("start", True) not in firings[before:]
            assert not fired.is_set()
            assert await sent(app, outbox) == ""
            assert ", sent" in await app.run("/campaign")
        finally:
            await scheduler.stop()
        assert scheduler.rebuild not in app.services.schedule_listeners


# -- refusals and bad input -----------------------------------------------------------------


async def test_volunteers_cannot_change_the_schedule(bot: App) -> None:
    for line in (
        "/campaign window 2026-12-20 18:00",
        "/campaign reminder checkin off",
        "/campaign rappel checkin off",
    ):
        out = await bot.run(line)
        assert "only the coalition's organizers can use /campaign" in out
    out = await bot.run(":organizer on\n/campaign")
    assert at("• checkin: Thu, Dec 17, 2026, 10:00 AM, to come") in out
    assert at("The freeze runs from Wed, Dec 16, 2026, 9:00 AM") in out


BAD = {
    "en": {
        "date": "I could not read “2026-13-45 18:00” as a date and time.",
        "words": "I could not read “tomorrow evening” as a date and time.",
        "length": "A freeze lasts from 1 hour to 14 days. Nothing changed.",
        "over": "would already be over. Nothing changed.",
        "rung": "There is no reminder called “lunch”.",
        "offset": "I could not read “soon” as a length of up to 7 days",
        "passed": "which has already passed. Nothing changed.",
    },
    "fr": {
        "date": "Je n’ai pas pu lire «\u00a02026-13-45 18:00\u00a0» comme une date et une heure.",
        "words": "Je n’ai pas pu lire «\u00a0tomorrow evening\u00a0» comme une date",
        "length": "Un gel dure de 1 heure à 14 jours. Rien n’a changé.",
        "over": "serait déjà terminé. Rien n’a changé.",
        "rung": "Il n’y a pas de rappel nommé «\u00a0lunch\u00a0».",
        "offset": "Je n’ai pas pu lire «\u00a0soon\u00a0» comme une durée de 7 jours au plus",
        "passed": "une heure déjà passée. Rien n’a changé.",
    },
    "ar": {
        "date": "لم أتمكن من قراءة «\u20682026-13-45 18:00\u2069» كتاريخ ووقت.",
        "words": "لم أتمكن من قراءة «\u2068tomorrow evening\u2069» كتاريخ ووقت.",
        "length": "يدوم التجميد من ساعة واحدة إلى \u206814\u2069 يومًا. لم يتغيّر شيء.",
        "over": "سيكون قد انتهى بالفعل. لم يتغير شيء.",
        "rung": "لا يوجد تذكير باسم «\u2068lunch\u2069».",
        "offset": "لم أتمكن من قراءة «\u2068soon\u2069» كمدة لا تتجاوز 7 أيام",
        "passed": "وهو موعد فات بالفعل. لم يتغير شيء.",
    },
}


@pytest.mark.parametrize("lang", sorted(BAD))
async def test_bad_input_gets_a_clear_answer_in_each_language_and_changes_nothing(
    bot: App, clock: Clock, lang: str
) -> None:
    says = BAD[lang]
    await bot.run(f":organizer on\n:hint {lang}\n:private")
    before = await bot.run("/campaign")
    assert says["date"] in await bot.run("/campaign window 2026-13-45 18:00")
    assert says["words"] in await bot.run("/campaign window tomorrow evening")
    # a length typed after the start, out of bounds
    assert says["length"] in await bot.run("/campaign window 2026-12-20 18:00 15d")
    assert says["over"] in await bot.run("/campaign window 2026-11-20 09:00")
    assert says["rung"] in await bot.run("/campaign reminder lunch 2h")
    assert says["offset"] in await bot.run("/campaign reminder before_1h soon")
    clock.now = datetime(2026, 12, 15, 12, 0, tzinfo=UTC)
    assert says["passed"] in await bot.run("/campaign reminder before_24h 30h")
    clock.now = NOW
    assert await bot.run("/campaign") == before  # nothing changed
    assert "Something went wrong" not in before


async def test_the_window_command_explains_itself_when_left_empty(bot: App) -> None:
    out = await bot.run(":organizer on\n/campaign window")
    assert "Write the new start of the freeze in the campaign's time zone" in out
    assert "The freeze keeps its length (24 hours) unless you add a new one" in out
    out = await bot.run("/campaign reminder before_1h")
    assert "Name a reminder and when it goes, for example /campaign reminder before_1h 2h" in out
    out = await bot.run("/campaign fenêtre 2026-12-20 18:00")  # French words work too
    assert at("Sun, Dec 20, 2026, 6:00 PM to Mon, Dec 21, 2026, 6:00 PM") in out


# -- periodic tally posts ---------------------------------------------------------------------


def in_community(chat: str, command: str, text: str = "", user: str = "org") -> Invocation:
    """A command typed in another community than the console's own."""
    return Invocation(
        platform=Platform.CONSOLE,
        user_id=user,
        chat_id=chat,
        chat_kind=ChatKind.GROUP,
        command=command,
        text=text,
        is_organizer=user == "org",
        is_admin=user == "org",  # org runs the communities it speaks in here
    )


async def communities(app: App) -> None:
    """console-community (French) and ar-community (Arabic) turn tally posts on;
    en-community does not. Two volunteers pledge."""
    out = await app.run(":as org\n:admin on\n/language fr group\n/tallypost on")
    assert "Désormais, cette communauté reçoit le nombre d’engagements toutes les 24 heures." in out
    await app.dispatcher.handle(in_community("ar-community", "language", "ar group"))
    replies = await app.dispatcher.handle(in_community("ar-community", "tallypost", "on"))
    assert "كل \u206824\u2069 ساعة" in replies[0].text
    await app.dispatcher.handle(in_community("en-community", "language", "en group"))
    await app.run(":as amina\n:organizer off\n/pledge")
    await app.dispatcher.handle(in_community("en-community", "pledge", user="sam"))


async def test_one_tally_post_per_slot_in_each_communitys_language(
    away_from_today: Settings, clock: Clock
) -> None:
    settings = away_from_today  # it starts the real scheduler: no rung may be due today
    async with running(settings, clock) as app:
        await communities(app)
        scheduler = ReminderScheduler(app.services)
        outbox = outbox_for(app)
        clock.now = datetime(2026, 12, 2, 0, 5, tzinfo=UTC)  # a daily slot began at midnight
        made = await scheduler.fire_tally()
        assert made is not None and made.recipients == 2
        delivered = await sent(app, outbox)
        assert "bot → console-community: Arrêtez la haine pour le profit\u00a0: où en" in delivered
        assert "2 personnes se sont engagées au total." in delivered
        assert "bot → ar-community: حملة “Stop Hate For Profit”: أين وصلنا." in delivered
        assert "تعهّد متطوعان في المجموع." in delivered
        assert "en-community" not in delivered
        assert delivered.count("bot →") == 2

        # Later in the same slot: nothing new, whoever fires.
        clock.now += timedelta(hours=20)
        assert await scheduler.fire_tally() is None
        assert await sent(app, outbox) == ""

    # A restart within the slot's first hour catches up on the slot, which was already posted.
    clock.now = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)
    async with running(settings, clock) as app:
        scheduler = ReminderScheduler(app.services)
        await scheduler.start()
        await scheduler.stop()
        outbox = outbox_for(app)
        assert await sent(app, outbox) == ""

        # The next slot posts again, with the count of then; one community turned it off.
        await app.run(":as lea\n:hint en\n/pledge")
        await app.run(":as org\n:admin on\n/tallypost off")
        clock.now = datetime(2026, 12, 3, 0, 0, 1, tzinfo=UTC)
        made = await ReminderScheduler(app.services).fire_tally()
        assert made is not None and made.recipients == 1
        delivered = await sent(app, outbox)
        assert "bot → ar-community:" in delivered
        assert "تعهّد \u20683\u2069 متطوعين في المجموع." in delivered
        assert "console-community" not in delivered


async def test_a_community_chooses_the_hour_of_its_tally_post(
    away_from_today: Settings, clock: Clock
) -> None:
    settings = away_from_today
    async with running(settings, clock) as app:
        await communities(app)  # console-community and ar-community: the default slots
        replies = await app.dispatcher.handle(
            in_community("ar-community", "tallypost", "on ١٨:٠٠")  # Arabic digits work too
        )
        assert "18:00" in replies[0].text and "توقيت وسط أوروبا" in replies[0].text
        out = await app.run(":as org\n:admin on\n:hint en\n/tallypost on 7pm")
        assert "I could not read “7pm” as an hour." in out
        scheduler = ReminderScheduler(app.services)
        outbox = outbox_for(app)

        # Midnight UTC, the default slot: only the community without a chosen hour.
        clock.now = datetime(2026, 12, 2, 0, 5, tzinfo=UTC)
        made = await scheduler.fire_tally()
        assert made is not None and made.recipients == 1
        assert await scheduler.fire_tally_hours() is not None  # 01:00 in Paris: nobody's hour
        delivered = await sent(app, outbox)
        assert "console-community" in delivered and "ar-community" not in delivered

        # 18:00 in Paris (17:00 UTC): the Arabic community's post, once however often fired.
        clock.now = datetime(2026, 12, 2, 17, 0, 30, tzinfo=UTC)
        made = await scheduler.fire_tally_hours()
        assert made is not None and made.recipients == 1
        assert await scheduler.fire_tally_hours() is None
        delivered = await sent(app, outbox)
        assert "bot → ar-community: حملة “Stop Hate For Profit”: أين وصلنا." in delivered
        assert delivered.count("bot →") == 1
        # The next day at the same hour, again; at other hours, never.
        clock.now = datetime(2026, 12, 2, 21, 0, tzinfo=UTC)
        made = await scheduler.fire_tally_hours()
        assert made is not None and made.recipients == 0
        clock.now = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)
        made = await scheduler.fire_tally_hours()
        assert made is not None and made.recipients == 1


async def test_a_restart_after_a_missed_slot_start_posts_it_once(
    away_from_today: Settings, clock: Clock
) -> None:
    settings = away_from_today  # it starts the real scheduler: no rung may be due today
    async with running(settings, clock) as app:
        await communities(app)
    clock.now = datetime(2026, 12, 2, 0, 20, tzinfo=UTC)  # the bot was down at midnight
    async with running(settings, clock) as app:
        for _ in range(2):  # two restarts in a row
            scheduler = ReminderScheduler(app.services)
            await scheduler.start()
            await scheduler.stop()
        delivered = await sent(app, outbox_for(app))
        assert delivered.count("bot →") == 2


async def test_the_tally_post_shows_who_froze_after_the_freeze(bot: App, clock: Clock) -> None:
    await communities(bot)
    clock.now = datetime(2026, 12, 17, 10, 0, tzinfo=UTC)  # /done is taken after the start
    await bot.run(":as amina\n/done")
    clock.now = datetime(2026, 12, 18, 0, 0, tzinfo=UTC)
    await ReminderScheduler(bot.services).fire_tally()
    delivered = await sent(bot, outbox_for(bot))
    assert "Dont 1 qui a gelé ses comptes." in delivered
    assert "جمّد واحد منهم حساباته." in delivered


async def test_tallypost_is_for_a_communitys_admins(bot: App) -> None:
    assert "only this community's admins can use /tallypost" in await bot.run("/tallypost on")
    out = await bot.run(":organizer on\n/tallypost on")
    assert "only this community's admins can use /tallypost" in out
    out = await bot.run(":organizer off\n:admin on\n:private\n/tallypost on")
    assert "/tallypost works only in a community group, not in a private chat." in out
    out = await bot.run(":group\n/tallypost")
    assert "This community gets no periodic pledge count. To turn it on, send /tallypost on." in (
        out
    )
    await bot.run("/subscribe off")
    out = await bot.run("/tallypost on")
    assert "From now on this community gets the pledge count every 24 hours." in out
    assert "This community is unsubscribed, so nothing will be posted until one of its" in out
    made = await ReminderScheduler(bot.services).fire_tally()
    assert made is not None and made.recipients == 0
