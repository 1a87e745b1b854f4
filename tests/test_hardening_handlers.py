"""Issue 10, through the console: milestones follow the real count, /done only while the
check-in is open, numbers and announcements are bounded, /timezone takes real zones only,
and a broadcast a handler makes wakes the sender at once."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app.bootstrap import bootstrap
from bot.core.settings import Settings
from bot.delivery.outbox import Outbox
from bot.frontends.console import Console
from tests.conftest import NOW, App, make_settings, subscribers

NNBSP = "\u202f"  # Babel's space between a time and AM/PM in English
NBSP = "\u00a0"  # French puts it before a colon
FSI, PDI = "\u2068", "\u2069"  # Arabic isolates every value


@dataclass
class Clock:
    """The services' clock, moved by the test."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def bot(settings: Settings, clock: Clock) -> AsyncIterator[App]:
    async with bootstrap(settings, clock=clock) as (services, dispatcher):
        out = io.StringIO()
        yield App(services, dispatcher, out, Console(dispatcher, out=out))


async def delivered(app: App) -> str:
    """What the outbox sends now, as the console shows it."""
    outbox = Outbox(app.services)
    outbox.register(app.console)
    before = app.out.tell()
    await outbox.drain()
    return app.out.getvalue()[before:]


async def until(app: App, text: str) -> str:
    """Everything printed once the console shows `text` (a guard stops a test that would
    otherwise wait for ever)."""
    async with asyncio.timeout(10.0):
        while text not in app.out.getvalue():  # noqa: ASYNC110 - polling what a user sees
            await asyncio.sleep(0.01)
    return app.out.getvalue()


# -- 1. milestones follow the campaign's real count --------------------------------------------


async def test_one_volunteer_pledging_and_withdrawing_100_times_makes_no_milestone(
    app: App,
) -> None:
    out = await app.run(":as amina\n/pledge\n" + "/unpledge\n/pledge\n" * 100 + "/tally")
    assert "You are volunteer number 101." in out  # numbers only grow…
    assert "1 volunteer has pledged in all." in out  # …but one person is one pledge
    assert "Milestone" not in await delivered(app)

    # The real 100th pledge is the milestone, posted once to the community.
    for n in range(99):
        await app.run(f":as crowd{n}\n/pledge")
    assert "100 volunteers have pledged in all." in await app.run("/tally")
    sent = await delivered(app)
    assert sent == (
        "  bot → console-community: Milestone: 100 volunteers have pledged to freeze their "
        "accounts!\n"
    )
    # Falling under it and reaching it again does not post it a second time.
    await app.run(":as crowd0\n/unpledge\n/pledge")
    assert await delivered(app) == ""


# -- 2. /done from the freeze start until the check-in closes ----------------------------------

DONE = {
    "en": {
        "early": f"Not yet: the freeze starts on Wed, Dec 16, 2026, 9:00{NNBSP}AM. Once you have "
        "frozen your accounts, send /done.",
        "counted": "Thank you for freezing your accounts! You are counted as done.",
        "closed": f"The check-in closed on Sun, Dec 20, 2026, 10:00{NNBSP}AM: it is too late to be "
        "counted as done. Thank you for taking part!",
    },
    "fr": {
        "early": f"Pas encore{NBSP}: le gel commence le mer. 16 déc. 2026, 09:00. Une fois vos "
        "comptes gelés, envoyez /done.",
        "counted": f"Merci d’avoir gelé vos comptes{NBSP}! C’est bien noté.",
        "closed": "Les confirmations de gel sont closes depuis le dim. 20 déc. 2026, "
        f"10:00{NBSP}: il est trop tard pour être compté.",
    },
    "ar": {
        "early": "ليس بعد: يبدأ التجميد في ",
        "counted": "شكرًا على تجميد حساباتك! تمّ احتسابك.",
        "closed": "أُغلق باب تأكيد التجميد في ",
    },
}


@pytest.mark.parametrize("lang", sorted(DONE))
async def test_done_is_taken_from_the_freeze_start_until_the_checkin_closes(
    bot: App, clock: Clock, lang: str
) -> None:
    says = DONE[lang]
    await bot.run(f":as noor\n:hint {lang}\n/pledge")
    out = await bot.run("/done")  # 1 December: the freeze starts on the 16th
    assert says["early"] in out
    assert says["counted"] not in out
    assert "0" in await bot.run("/tally")
    # During the freeze (09:00 Paris on the 16th is 08:00 UTC).
    clock.now = datetime(2026, 12, 16, 8, 0, tzinfo=UTC)
    assert says["counted"] in await bot.run("/done")
    # The check-in reminder goes an hour after the end (10:00 Paris on the 17th); it stays
    # open three days more.
    await bot.run(":as sami\n/pledge")
    clock.now = datetime(2026, 12, 20, 8, 59, tzinfo=UTC)
    assert says["counted"] in await bot.run("/done")
    await bot.run(":as lina\n/pledge")
    clock.now = datetime(2026, 12, 20, 9, 0, tzinfo=UTC)
    out = await bot.run("/done")
    assert says["closed"] in out
    assert says["counted"] not in out
    assert "Something went wrong" not in out


async def test_the_checkin_button_after_the_checkin_closed_says_so(bot: App, clock: Clock) -> None:
    await bot.run(":as karim\n:private\n:hint en\n/pledge\n/reminders on")
    clock.now = datetime(2026, 12, 17, 9, 0, tzinfo=UTC)
    from bot.schedule.scheduler import ReminderScheduler

    scheduler = ReminderScheduler(bot.services)
    assert "checkin" in await scheduler.fire_due((await scheduler.ladder())["checkin"])
    sent = await delivered(bot)
    assert "[1] I froze my accounts" in sent
    clock.now = datetime(2026, 12, 25, tzinfo=UTC)
    out = await bot.run(":press 1\n/tally")
    assert "The check-in closed on Sun, Dec 20, 2026" in out
    assert "1 volunteer has pledged in all." in out and "of them froze" not in out


async def test_a_later_checkin_reminder_keeps_the_checkin_open_longer(
    bot: App, clock: Clock
) -> None:
    await bot.run(":as org\n:organizer on\n:private\n:hint en\n/campaign reminder checkin 2d")
    await bot.run(":as noor\n:organizer off\n/pledge")
    clock.now = datetime(2026, 12, 21, 12, 0, tzinfo=UTC)  # past the default close
    assert "You are counted as done." in await bot.run("/done")
    await bot.run(":as sami\n/pledge")
    clock.now = datetime(2026, 12, 22, 8, 0, tzinfo=UTC)  # 2 + 3 days after the end
    assert "The check-in closed on Tue, Dec 22, 2026, 9:00" in await bot.run("/done")


async def test_done_without_freeze_dates_says_they_are_not_set(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, campaign_start=None, campaign_end=None)
    async with bootstrap(settings, clock=lambda: NOW) as (services, dispatcher):
        out_ = io.StringIO()
        out = await App(services, dispatcher, out_, Console(dispatcher, out=out_)).run(
            "/pledge\n/done"
        )
    assert (
        "You can check in once the freeze starts; the organizers have not announced its "
        "dates yet." in out
    )


# -- 3. numbers typed by organizers are bounded -------------------------------------------------


async def test_announce_send_with_a_number_that_is_not_one_gets_the_usage(app: App) -> None:
    await app.run(":as org\n:private\n:organizer on\n:hint en")
    for typed in ("9999999999999999999999999", "²", "12x", "-3"):
        out = await app.run(f"/announce_send {typed}")
        assert f"I did not understand “{typed}”. Usage: /announce_send <announcement number>" in out
        assert "Something went wrong" not in out
    out = await app.run(":hint fr\n/announce_send ²")
    assert "Je n’ai pas compris" in out and "/announce_send <numéro de l’annonce>" in out


async def test_an_announcement_is_sent_once_however_its_number_is_written(app: App) -> None:
    await subscribers(app)
    out = await app.run(":as org\n:private\n:organizer on\n:hint en\n/announce Freeze!")
    assert "[1] Send to everyone" in out
    out = await app.run("/announce_send 1")
    recipients = int(re.search(r"Sending your announcement to (\d+) recipients", out)[1])
    assert recipients >= 3
    for same in ("01", "0001", "١"):  # leading zeros, Arabic-Indic digits: the same one
        assert "This announcement was already sent." in await app.run(f"/announce_send {same}")
    assert (await delivered(app)).count("Freeze!") == recipients


BOUNDS = {
    "en": {
        "length": "I could not read “{}” as a length of up to 7 days",
        "far": f"A freeze starting on Sun, Jan 2, 2028, 9:00{NNBSP}AM is more than a year away. "
        "Choose a start within a year from now. Nothing changed.",
        "date": "I could not read “99999-01-01” as a date and time.",
    },
    "fr": {
        "length": f"Je n’ai pas pu lire «{NBSP}{{}}{NBSP}» comme une durée de 7 jours au plus",
        "far": "Un gel commençant le dim. 2 janv. 2028, 09:00 serait dans plus d’un an. "
        "Choisissez un début dans l’année qui vient. Rien n’a changé.",
        "date": f"Je n’ai pas pu lire «{NBSP}99999-01-01{NBSP}» comme une date et une heure.",
    },
    "ar": {
        "length": f"لم أتمكن من قراءة «{FSI}{{}}{PDI}» كمدة لا تتجاوز 7 أيام",
        "far": "بعيد بأكثر من سنة. اختر موعد بدء خلال سنة من الآن. لم يتغير شيء.",
        "date": f"لم أتمكن من قراءة «{FSI}99999-01-01{PDI}» كتاريخ ووقت.",
    },
}


@pytest.mark.parametrize("lang", sorted(BOUNDS))
async def test_campaign_numbers_out_of_bounds_get_a_clear_answer(app: App, lang: str) -> None:
    says = BOUNDS[lang]
    await app.run(f":as org\n:private\n:organizer on\n:hint {lang}")
    before = await app.run("/campaign")
    huge = "9" * 5000  # more digits than int() reads
    out = await app.run(f"/campaign reminder before_1h {huge}")
    assert says["length"].format(huge[:40] + "…") in out
    for typed in ("99999999999h", "1h99", "²"):
        assert says["length"].format(typed) in await app.run(
            f"/campaign reminder before_1h {typed}"
        )
    assert says["far"] in await app.run("/campaign window 2028-01-02 09:00")
    assert says["date"] in await app.run("/campaign window 99999-01-01")
    assert await app.run("/campaign") == before  # nothing changed
    # Within a year is fine.
    assert "Dec 20, 2027" in await app.run(":hint en\n/campaign window 2027-12-20 09:00")


# -- 4. announcements are capped, and the preview says how many messages each reader gets -----


@pytest.mark.parametrize(
    ("lang", "refusal"),
    [
        (
            "en",
            "This announcement is too long: each language's text may have at most 4,000 "
            "characters, and the English text has 4,001. Nothing was saved.",
        ),
        (
            "fr",
            f"Cette annonce est trop longue{NBSP}: le texte de chaque langue peut compter au plus "
            f"4{NNBSP}000 caractères, et le texte en English en compte 4{NNBSP}001. Rien n’a été "
            "enregistré.",
        ),
        (
            "ar",
            f"هذا الإعلان طويل جدًا: يجب ألّا يتجاوز نص كل لغة {FSI}4,000{PDI} حرف، بينما يبلغ "
            f"طول النص بـ{FSI}English{PDI} {FSI}4,001{PDI}. لم يُحفظ شيء.",
        ),
    ],
)
async def test_an_announcement_over_the_limit_is_refused(app: App, lang: str, refusal: str) -> None:
    await app.run(f":as org\n:private\n:organizer on\n:hint {lang}")
    out = await app.run("/announce fr: Gel demain ! en: " + "x" * 4001)
    assert refusal in out
    assert "Send to everyone" not in out and "[1]" not in out
    out = await app.run(":hint en\n/announce en: " + "x" * 4000)  # at the limit: fine
    assert "[1] Send to everyone" in out


async def test_the_preview_says_how_many_messages_each_reader_gets(app: App) -> None:
    await app.run(":as org\n:private\n:organizer on\n:hint en")
    out = await app.run("/announce Freeze tomorrow!")
    assert "Each reader gets it in 1 message." in out
    words = " ".join(["freeze"] * 500)  # 3,499 characters: one Telegram message, two on Discord
    out = await app.run(f"/announce {words}")
    assert "On Telegram, each reader gets it in 1 message.\n" in out
    assert "On Discord, each reader gets it in 2 messages." in out
    out = await app.run(f":hint fr\n/announce {words}")
    assert "Sur Discord, chaque destinataire la reçoit en 2 messages." in out
    out = await app.run(f":hint ar\n/announce {words}")
    assert "يتلقى كل قارئ الإعلان في رسالتين." in out
    # Where only the console delivers (no message limit), one message.
    Outbox(app.services).register(app.console)
    out = await app.run(f":hint en\n/announce {words}")
    assert "Each reader gets it in 1 message." in out and "Discord" not in out


# -- 5. /timezone takes the zones of real places ----------------------------------------------


@pytest.mark.parametrize(
    ("lang", "refusal"),
    [
        ("en", "I don't know the time zone “{}”. Use a name such as Europe/Paris"),
        ("fr", "Je ne connais pas le fuseau horaire «\u00a0{}\u00a0»"),
        ("ar", "لا أعرف المنطقة الزمنية «\u2068{}\u2069»"),
    ],
)
async def test_timezone_refuses_what_is_not_a_place(app: App, lang: str, refusal: str) -> None:
    await app.run(f":private\n:hint {lang}")
    for name in ("localtime", "Factory", "posixrules", "Etc/Unknown", "Etc/GMT+5", "EST5EDT"):
        out = await app.run(f"/timezone {name}")
        assert refusal.format(name) in out, out
    out = await app.run(":hint en\n/timezone")
    assert "Your time zone is Europe/Paris." in out  # nothing was stored


async def test_timezone_takes_places_and_utc(app: App) -> None:
    await app.run(":private\n:hint en")
    for typed, zone in (
        ("africa/cairo", "Africa/Cairo"),
        ("America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"),
        ("US/Eastern", "US/Eastern"),
        ("utc", "UTC"),
    ):
        assert f"Your time zone is now {zone}." in await app.run(f"/timezone {typed}")


# -- 6. a broadcast made by a handler wakes the sender at once --------------------------------


async def test_an_announcement_is_delivered_without_waiting_for_the_outbox_to_look(
    app: App,
) -> None:
    # The sender as the bot runs it, but looking at the database on its own only once an
    # hour: the delivery below can only come from the announcement waking it.
    outbox = Outbox(app.services, idle=3600)
    outbox.register(app.console)
    outbox.start()
    try:
        await subscribers(app)  # meanwhile the sender has looked once and found nothing
        await app.run(":as org\n:private\n:organizer on\n:hint en\n/announce Freeze tomorrow!")
        out = await app.run(":press 1")
        assert "Sending your announcement to" in out
        printed = await until(app, "bot → dm-lea: Freeze tomorrow!")
        assert printed.index("Sending your announcement") < printed.index("bot → dm-lea")
    finally:
        await outbox.stop()
        await app.console.close()


async def test_a_milestone_is_delivered_without_waiting_for_the_outbox_to_look(
    app: App,
) -> None:
    outbox = Outbox(app.services, idle=3600)
    outbox.register(app.console)
    outbox.start()
    try:
        for n in range(100):
            await app.run(f":as crowd{n}\n/pledge")
        await until(app, "bot → console-community: Milestone: 100 volunteers have pledged")
    finally:
        await outbox.stop()
