"""/announce end to end in the console: the progress message follows the broadcast and turns
into the final report; the check-in's button counts a volunteer as done."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.settings import Settings
from bot.delivery.outbox import Outbox
from bot.schedule.scheduler import ReminderScheduler
from tests.conftest import App, eventually, make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, board_interval=0.05)  # progress edits every 50 ms


async def until(app: App, text: str) -> str:
    """Wait until the console has printed `text`; everything printed so far."""
    await eventually(lambda: text in app.out.getvalue(), what=f"the console printing {text!r}")
    return app.out.getvalue()


async def test_the_progress_message_becomes_the_final_report(app: App) -> None:
    await app.run(":as karim\n:private\n/language fr\n/reminders on")
    await app.run(":as lea\n:private\n:hint en\n/reminders on")
    out = await app.run(":as org\n:hint fr\n:private\n:organizer on\n/announce Gel demain !")
    assert "le texte en Français" in out  # English and Arabic readers get the French text
    out = await app.run(":press 1")
    assert "Envoi de votre annonce à 2 destinataires." in out
    assert "Restants\u00a0: 2" in out
    outbox = Outbox(app.services)
    outbox.register(app.console)
    assert await outbox.drain() == 2
    printed = await until(app, "Votre annonce a été remise à 2 destinataires.")
    report = printed[printed.rindex("edited") :]
    assert "Restants" not in report and "n’a pas pu" not in report
    await app.console.close()


async def test_the_report_counts_what_could_not_be_delivered(app: App) -> None:
    await app.run(":as lea\n:private\n:hint en\n/reminders on")
    await app.run(":as org\n:hint en\n:private\n:organizer on\n/announce Freeze tomorrow!")
    await app.run(":as karim\n:private\n:hint en\n/reminders on")
    await app.run(":as org\n:private")
    out = await app.run(":press 1")
    assert "Sending your announcement to 2 recipients." in out
    assert "Remaining: 2" in out
    # The process died as both messages were going out: on a platform that cannot
    # deduplicate (Telegram) they are unknown, and the report says so.
    storage = app.services.storage
    rows = await storage.claim_deliveries("console", 10)
    assert len(rows) == 2
    for row in rows:
        await storage.mark_sending(row.id)
    await storage.recover_inflight("console", None)
    printed = await until(app, "2 messages may not have arrived")
    assert "Your announcement was delivered to 0 recipients." in printed
    await app.console.close()


async def test_an_announcement_with_nobody_to_reach_says_so(app: App) -> None:
    await app.run(":as org\n:private\n:organizer on\n:hint en\n/announce Hello")
    await app.run(":as org\n:private")  # same chat
    out = await app.run(":press 1")
    assert "Nobody to send it to yet" in out


async def test_the_checkin_has_a_button_that_counts_you_as_done(app: App) -> None:
    await app.run(":as karim\n:private\n/language fr\n/pledge\n/reminders on")
    outbox = Outbox(app.services)
    outbox.register(app.console)
    scheduler = ReminderScheduler(app.services, outbox.wake)
    ladder = await scheduler.ladder()
    assert await scheduler.fire_due(ladder["end"]) == ["end"]
    await outbox.drain()
    assert await scheduler.fire_due(ladder["checkin"]) == ["checkin"]
    before = app.out.tell()
    assert await outbox.drain() == 1
    sent = app.out.getvalue()[before:]
    assert "bot → dm-karim: Avez-vous gelé vos comptes\u00a0?" in sent
    assert "[1] J’ai gelé mes comptes" in sent
    app.services.clock = lambda: ladder["checkin"]  # the button is pressed when it arrives
    out = await app.run(":press 1")
    assert "Merci d’avoir gelé vos comptes" in out
    assert "Dont 1 qui a gelé ses comptes." in await app.run("/tally")
    assert "Vous nous avez déjà dit" in await app.run(":press 1")  # counted once


async def test_a_role_is_pinged_only_from_the_coalitions_discord_server(app: App) -> None:
    setup = ":as org\n:hint en\n:organizer on\n"
    for where in (":private", ":group"):
        out = await app.run(f"{setup}{where}\n/announce <@&5> Freeze tomorrow!")
        assert "a role of the coalition's own Discord server only" in out
        assert "Nothing was saved." in out and "Preview" not in out
    # a mention written inside the text is only text: no role is pinged
    out = await app.run(f"{setup}:private\n/announce Freeze tomorrow! <@&5>")
    assert "Preview of your announcement:" in out and "it will ping" not in out
