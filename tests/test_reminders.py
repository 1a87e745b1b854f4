"""Freeze reminders with a controllable clock: each rung once, on time, in each language."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.delivery.outbox import Outbox
from bot.schedule.scheduler import ReminderScheduler
from tests.conftest import WAIT, App, subscribers


def outbox_for(app: App) -> Outbox:
    outbox = Outbox(app.services)
    outbox.register(app.console)
    return outbox


async def test_each_rung_fires_once_at_its_time_in_each_readers_language(app: App) -> None:
    await subscribers(app)
    outbox = outbox_for(app)
    scheduler = ReminderScheduler(app.services, outbox.wake)
    ladder = await scheduler.ladder()
    assert list(ladder) == ["before_24h", "before_1h", "start", "end", "checkin"]
    start = app.services.campaign.start
    assert start is not None and ladder["start"] == start
    assert await scheduler.fire_due(ladder["before_24h"] - timedelta(minutes=1)) == []
    assert await scheduler.fire_due(ladder["before_24h"]) == ["before_24h"]
    assert await scheduler.fire_due(ladder["before_1h"]) == ["before_1h"]
    assert await outbox.drain() == 8

    before = app.out.tell()
    assert await scheduler.fire_due(ladder["start"]) == ["start"]
    assert await outbox.drain() == 4
    out = app.out.getvalue()[before:]
    assert "bot → console-community: Gelez vos comptes maintenant" in out
    assert "bot → dm-amina: حان وقت تجميد حساباتك الآن" in out
    assert "bot → dm-karim: Gelez vos comptes maintenant" in out
    assert "bot → dm-lea: Freeze your accounts now" in out
    assert "/reminders off" in out  # volunteers are told how to stop; the community is not
    assert out.count("/reminders off") == 3

    # the same moment again (a second firing, a restart): nothing new
    assert await scheduler.fire_due(ladder["start"] + timedelta(minutes=5)) == []
    assert await outbox.drain() == 0

    before = app.out.tell()
    assert await scheduler.fire_due(ladder["end"]) == ["end"]
    await outbox.drain()
    out = app.out.getvalue()[before:]
    assert "The freeze is over. Now post your one message:" in out
    assert "#StopHateForProfit" in out


async def test_a_restart_before_a_rung_still_sends_it_and_after_it_does_not(app: App) -> None:
    await subscribers(app)
    ladder = await ReminderScheduler(app.services).ladder()
    due = ladder["before_1h"]
    # the bot was down when the rung came due, and restarts 10 minutes later (within grace)
    restarted = ReminderScheduler(app.services)
    assert await restarted.fire_due(due + timedelta(minutes=10)) == ["before_1h"]
    # a second restart, later: already sent, not again
    again = ReminderScheduler(app.services)
    assert await again.fire_due(due + timedelta(minutes=20)) == []
    # a rung older than the grace is not sent late at all
    late = ReminderScheduler(app.services, grace=timedelta(minutes=30))
    assert "before_24h" not in await late.fire_due(ladder["before_24h"] + timedelta(hours=2))


async def test_two_schedulers_firing_the_same_rung_make_one_broadcast(app: App) -> None:
    await subscribers(app)
    first, second = ReminderScheduler(app.services), ReminderScheduler(app.services)
    due = (await first.ladder())["start"]
    made = await asyncio.gather(first.fire("start", due), second.fire("start", due))
    assert sum(m is not None for m in made) == 1


async def test_apscheduler_triggers_a_stored_rung(app: App) -> None:
    await subscribers(app)
    fired = asyncio.Event()
    scheduler = ReminderScheduler(app.services, fired.set)
    soon = app.services.clock().__class__.now(app.services.campaign.zone) + timedelta(seconds=0.3)
    await app.services.storage.set_schedule(app.services.campaign.id, {"start": soon})
    await scheduler.start()
    try:
        await asyncio.wait_for(fired.wait(), timeout=WAIT)
    finally:
        await scheduler.stop()
    outbox = outbox_for(app)
    assert await outbox.drain() == 4


async def test_milestones_are_posted_once_to_communities_only(app: App) -> None:
    await subscribers(app)  # one French community, three opted-in volunteers
    from bot.core.types import ChatKind, Invocation, Platform

    def pledge(n: int) -> Invocation:
        return Invocation(
            platform=Platform.CONSOLE,
            user_id=f"crowd{n}",
            chat_id="console-community",
            chat_kind=ChatKind.GROUP,
            command="pledge",
        )

    await asyncio.gather(*(app.dispatcher.handle(pledge(n)) for n in range(120)))
    outbox = outbox_for(app)
    before = app.out.tell()
    assert await outbox.drain() == 1  # the community only, not the volunteers' private chats
    out = app.out.getvalue()[before:]
    assert "bot → console-community: Cap franchi\u00a0: 100 personnes se sont engagées" in out
    assert "crowd" not in out and out.count("bot →") == 1
    # withdrawing and pledging again does not make number 100 a second time
    await app.dispatcher.handle(
        Invocation(
            platform=Platform.CONSOLE,
            user_id="crowd5",
            chat_id="console-community",
            chat_kind=ChatKind.GROUP,
            command="unpledge",
        )
    )
    await app.dispatcher.handle(pledge(5))
    assert await outbox.drain() == 0


async def test_fan_out_starts_early_enough_for_the_last_recipient(app: App) -> None:
    await subscribers(app)  # 4 recipients on the console
    scheduler = ReminderScheduler(app.services, rates={"console": 1.0})
    lead = await scheduler.lead()
    assert lead == timedelta(seconds=4 * 1.5)  # 4 messages at 1/s, with half as much to spare
    due = (await scheduler.ladder())["start"]
    assert "start" not in await scheduler.fire_due(due - lead - timedelta(seconds=1))
    assert "start" in await scheduler.fire_due(due - lead + timedelta(seconds=1))
    # "The freeze is over" never goes before the end, however many recipients wait
    end = (await scheduler.ladder())["end"]
    assert "end" not in await scheduler.fire_due(end - timedelta(seconds=1))
    assert "end" in await scheduler.fire_due(end)


async def test_announce_previews_then_reaches_everyone_in_their_language(app: App) -> None:
    await subscribers(app)  # French community; amina (ar), karim (fr), lea (en) opted in
    out = await app.run(":as org\n:private\n:organizer off\n/announce hello")
    assert "only the coalition's organizers can use /announce" in out
    out = await app.run(":organizer on\n/announce en: Freeze tomorrow! fr: Gel demain !")
    assert "Preview of your announcement:" in out
    assert "English: Freeze tomorrow!" in out and "Français: Gel demain !" in out
    assert "No text in العربية: those readers will get the English text." in out
    out = await app.run(":press 1")
    assert "Sending your announcement to 4 recipients." in out
    assert "This announcement was already sent." in await app.run(":press 1")
    outbox = outbox_for(app)
    before = app.out.tell()
    assert await outbox.drain() == 4
    sent = app.out.getvalue()[before:]
    assert "bot → console-community: Gel demain !" in sent
    assert "bot → dm-karim: Gel demain !" in sent
    assert "bot → dm-lea: Freeze tomorrow!" in sent
    assert "bot → dm-amina: Freeze tomorrow!" in sent  # no Arabic text: the source language


async def test_announce_without_text_explains_how(app: App) -> None:
    out = await app.run(":organizer on\n:hint fr\n/announce")
    assert "Écrivez l’annonce après la commande" in out


async def test_an_announcement_keeps_its_line_breaks(app: App) -> None:
    await app.run(":organizer on")
    invocation_text = "First line.\nSecond line."
    from bot.core.types import ChatKind, Invocation, Platform

    replies = await app.dispatcher.handle(
        Invocation(
            platform=Platform.CONSOLE,
            user_id="org",
            chat_id="dm-org",
            chat_kind=ChatKind.PRIVATE,
            command="announce",
            text=invocation_text,
            is_organizer=True,
        )
    )
    assert "English: First line.\nSecond line." in replies[0].text


async def test_check_in_after_the_freeze_and_done_counts(app: App) -> None:
    await subscribers(app)
    # /done is taken from the freeze start until the check-in closes: here, the morning after.
    app.services.clock = lambda: datetime(2026, 12, 17, 10, 0, tzinfo=UTC)
    out = await app.run(":as noor\n:group\n/done")
    assert "There is no pledge of yours to check in. Send /pledge first." in out
    out = await app.run("/pledge\n/done\n/done\n/tally")
    assert "Thank you for freezing your accounts!" in out
    assert "You already told us you froze your accounts." in out
    assert "1 of them froze their accounts." in out
    out = await app.run(":as sami\n:hint fr\n/pledge\n/done\n/tally")
    assert "Dont 2 qui ont gelé leurs comptes." in out
    out = await app.run(":as noor\n:hint en\n/unpledge\n/tally")
    assert "1 of them froze their accounts." in out  # a withdrawal takes its check-in along
    scheduler = ReminderScheduler(app.services)
    outbox = outbox_for(app)
    before = app.out.tell()
    assert "checkin" in await scheduler.fire_due((await scheduler.ladder())["checkin"])
    await outbox.drain()
    sent = app.out.getvalue()[before:]
    assert "bot → dm-lea: Did you freeze your accounts? If you did, send /done" in sent
    assert "bot → console-community: Avez-vous gelé vos comptes" in sent
