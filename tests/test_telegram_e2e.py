"""The Telegram front-end end to end: the real python-telegram-bot against a Bot API server of
our own on 127.0.0.1 (tests/fakes/telegram_server.py). PTB itself is never mocked."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app.bootstrap import bootstrap
from bot.app.logs import setup_logging
from bot.frontends.telegram import TelegramFrontend
from bot.services.container import Services, Telemetry
from bot.web.server import WebServer
from tests.conftest import NOW, WAIT, eventually, make_settings
from tests.fakes.telegram_server import FakeTelegram, Limits

TOKEN = "123456:TEST" + "abcdefghijklmnopqrstuvwxyzABCD"
ORGANIZER = 500
GROUP = -100500
ADMIN = 600
MEMBER = 700


@dataclass
class World:
    server: FakeTelegram
    frontend: TelegramFrontend
    services: Services

    async def answer_in(self, chat_id: int, count: int = 1) -> list[dict]:
        """Wait until the bot has sent `count` messages in a chat; return them."""
        await self.server.wait_for(lambda: len(self.server.messages(chat_id)) >= count, WAIT)
        return self.server.messages(chat_id)


@asynccontextmanager
async def telegram_world(
    tmp_path: Path,
    limits: Limits | None = None,
    telemetry: Telemetry | None = None,
    **overrides: object,
) -> AsyncIterator[World]:
    """The fake Bot API server and the real bot, started against it (counting what it does
    into `telemetry`, when given)."""
    async with FakeTelegram(TOKEN, limits=limits) as server:
        settings = make_settings(
            tmp_path,
            telegram_token=TOKEN,
            telegram_base_url=server.base_url,
            telegram_base_file_url=server.base_file_url,
            **overrides,
        )
        booted = bootstrap(settings, clock=lambda: NOW, telemetry=telemetry)
        async with booted as (services, dispatcher):
            frontend = TelegramFrontend(services, dispatcher)
            await frontend.start()
            await frontend.lead()  # the only process: it leads
            try:
                yield World(server, frontend, services)
            finally:
                await frontend.stop()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with telegram_world(
        tmp_path, telegram_organizer_ids=str(ORGANIZER), board_interval=0.5
    ) as world:
        server = world.server
        server.add_user(ORGANIZER, "Org", "en")
        server.add_user(ADMIN, "Adm", "fr")
        server.add_user(MEMBER, "Mem", "en")
        server.add_group(GROUP, "Coalition", admins=[ADMIN], creator=ORGANIZER)
        yield world


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("language_code", "expected"),
    [("en", "Thank you!"), ("fr", "Merci"), ("ar", "شكرًا"), (None, "Thank you!")],
)
async def test_pledge_by_command_in_the_volunteers_language(
    world: World, language_code: str | None, expected: str
) -> None:
    world.server.add_user(801, "V", language_code)
    world.server.user_sends(801, 801, "/pledge")
    (answer,) = await world.answer_in(801)
    assert expected in answer["text"]
    assert "1" in answer["text"]


@pytest.mark.parametrize(
    ("user", "code", "expected"),
    [
        (802, "fr", "Votre engagement est enregistré"),
        (803, "ar", "سُجّل تعهّدك"),
        (804, "en", "Your pledge is recorded"),
    ],
)
async def test_deep_link_start_pledges(world: World, user: int, code: str, expected: str) -> None:
    world.server.add_user(user, "V", code)
    world.server.user_sends(user, user, "/start pledge")
    (answer,) = await world.answer_in(user)
    assert expected in answer["text"]


async def test_commands_are_published_per_language_and_scope(world: World) -> None:
    commands = world.server.commands
    english = [c["command"] for c in commands[("default", "en")]]
    assert "pledge" in english and "board" not in english
    admins = [c["command"] for c in commands[("all_chat_administrators", "fr")]]
    assert "board" in admins
    french = {c["command"]: c["description"] for c in commands[("default", "fr")]}
    assert (
        french["pledge"]
        != {c["command"]: c["description"] for c in commands[("default", "en")]}["pledge"]
    )
    assert ("default", "ar") in commands and ("default", "") in commands


async def test_board_button_presses_are_toasts_and_the_board_becomes_exact(world: World) -> None:
    server = world.server
    server.user_sends(ORGANIZER, GROUP, "/board")
    (board,) = await world.answer_in(GROUP)
    assert board["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "pledge"
    # the pin waits its turn under the group's pacing: wait for it, don't race it
    await server.wait_for(lambda: server.pinned.get(GROUP) == board["message_id"], WAIT)
    presses = {}
    for user, code in ((901, "en"), (902, "fr"), (903, "ar"), (904, None), (905, "fr")):
        server.add_user(user, "P", code)
        presses[user] = server.user_presses(user, GROUP, board["message_id"], "pledge")
    await server.wait_for(lambda: all(q in server.callback_answers for q in presses.values()), WAIT)
    assert "Thank you" in server.callback_answers[presses[901]]["text"]
    assert "Merci" in server.callback_answers[presses[902]]["text"]
    assert "شكرًا" in server.callback_answers[presses[903]]["text"]
    assert all(len(a.get("text", "")) <= 200 for a in server.callback_answers.values())
    # no new message per volunteer in the group: only the board
    assert len(server.messages(GROUP)) == 1
    # Edits of a group's board wait for the group's pacing (about 3 s apart): when the
    # first edit shows only some of the presses, the exact count comes one more turn later.
    await server.wait_for(
        lambda: "5 volunteers have pledged in this community." in server.messages(GROUP)[0]["text"],
        WAIT,
    )
    edits = server.edits(GROUP)
    assert 1 <= len(edits) <= 2, "edits are coalesced"
    shown = [e["text"] for e in edits]
    assert len(shown) == len(set(shown)), "never an edit with unchanged text"


async def test_pressing_twice_says_already_and_changes_nothing(world: World) -> None:
    server = world.server
    server.user_sends(ORGANIZER, GROUP, "/board")
    (board,) = await world.answer_in(GROUP)
    server.add_user(910, "P", "en")
    first = server.user_presses(910, GROUP, board["message_id"], "pledge")
    await server.wait_for(lambda: first in server.callback_answers, WAIT)
    second = server.user_presses(910, GROUP, board["message_id"], "pledge")
    await server.wait_for(lambda: second in server.callback_answers, WAIT)
    assert "already pledged" in server.callback_answers[second]["text"]


async def test_organizer_command_refused_to_member_and_accepted_for_admin(world: World) -> None:
    server = world.server
    server.user_sends(MEMBER, MEMBER, "/start")  # so the bot may write to them privately
    await world.answer_in(MEMBER)
    server.user_sends(MEMBER, GROUP, "/board")
    await server.wait_for(lambda: len(server.messages(MEMBER)) >= 2, WAIT)
    assert "only this community's admins" in server.messages(MEMBER)[-1]["text"]
    assert server.messages(GROUP) == []
    server.user_sends(ADMIN, GROUP, "/board")
    (board,) = await world.answer_in(GROUP)
    assert "Arrêtez la haine" in board["text"] or "Stop Hate For Profit" in board["text"]


async def test_anonymous_admin_runs_their_community(world: World) -> None:
    world.server.user_sends(ADMIN, GROUP, "/subscribe off", sender_chat_id=GROUP)
    (answer,) = await world.answer_in(GROUP)
    assert "no longer receive" in answer["text"]


async def test_a_migrated_group_keeps_its_pledges(world: World) -> None:
    server = world.server
    server.user_sends(ORGANIZER, GROUP, "/board")
    (board,) = await world.answer_in(GROUP)
    storage = world.services.storage

    async def board_in(chat_id: int) -> bool:
        return await storage.boards("telegram") == [(str(chat_id), str(board["message_id"]))]

    # The bot stores the board just after it is posted: the group migrates after that.
    await eventually(lambda: board_in(GROUP), what="the board stored in the old group")
    server.add_user(920, "P", "en")
    press = server.user_presses(920, GROUP, board["message_id"], "pledge")
    await server.wait_for(lambda: press in server.callback_answers, WAIT)
    new_id = -100999
    server.migrate_group(GROUP, new_id)  # Telegram tells the bot with two service messages
    await eventually(lambda: board_in(new_id), what="the board moved to the new group id")
    server.user_sends(MEMBER, new_id, "/tally")
    (tally,) = await world.answer_in(new_id)
    assert "1 volunteer has pledged in this community." in tally["text"]
    assert await world.services.storage.boards("telegram") == [
        (str(new_id), str(board["message_id"]))
    ]


async def test_a_volunteer_who_blocked_the_bot_stops_receiving(world: World) -> None:
    server = world.server
    server.add_user(930, "B", "en")
    server.user_sends(930, 930, "/reminders on")
    (answer,) = await world.answer_in(930)
    assert "Reminders are on" in answer["text"]
    key = world.services.identities.key("telegram", "930")
    data = await world.services.storage.export(world.services.campaign.id, key)
    assert data.volunteer is not None and data.volunteer.dm_address == "930"
    server.block_bot(930)
    server.user_sends(930, GROUP, "/pledge")  # the answer would go privately: 403
    await server.wait_for(lambda: any(m == "setMessageReaction" for m, _ in server.requests), WAIT)

    async def reminders_off() -> bool:
        found = await world.services.storage.export(world.services.campaign.id, key)
        return found.volunteer is not None and not found.volunteer.reminders

    # the private answer is refused after the reaction; the bot then stores it
    await eventually(reminders_off, what="reminders turned off after the 403")


async def test_html_injection_shows_literally(world: World) -> None:
    server = world.server
    server.add_user(940, "H", "en")
    server.user_sends(940, 940, '/timezone <b>bold</b><a href="x">')
    (answer,) = await world.answer_in(940)
    assert '<b>bold</b><a href="x">' in answer["text"]
    sent = [p for m, p in server.requests if m == "sendMessage" and p.get("chat_id") == 940]
    assert "&lt;b&gt;bold&lt;/b&gt;" in sent[-1]["text"]
    assert sent[-1]["parse_mode"] == "HTML"


async def test_pledge_in_a_group_does_not_flood_it(world: World) -> None:
    server = world.server
    server.add_user(950, "G", "en")
    server.user_sends(950, 950, "/start")
    await world.answer_in(950)
    server.user_sends(950, GROUP, "/pledge")
    await server.wait_for(lambda: len(server.messages(950)) >= 2, WAIT)
    assert "Thank you!" in server.messages(950)[-1]["text"]
    assert server.messages(GROUP) == []
    assert server.reactions and server.reactions[-1]["chat_id"] == GROUP


async def test_token_never_reaches_the_logs(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    setup_logging("DEBUG", [TOKEN])
    try:
        async with FakeTelegram(TOKEN) as server:
            server.add_user(960, "L", "en")
            settings = make_settings(
                tmp_path,
                telegram_token=TOKEN,
                telegram_base_url=server.base_url,
                telegram_base_file_url=server.base_file_url,
            )
            async with bootstrap(settings) as (services, dispatcher):
                frontend = TelegramFrontend(services, dispatcher)
                await frontend.start()
                await frontend.lead()
                server.user_sends(960, 960, "/pledge")
                await server.wait_for(lambda: len(server.messages(960)) == 1, WAIT)
                server.fail_next("sendMessage", status=500)
                server.user_sends(960, 960, "/tally")
                await server.wait_for(lambda: len(server.messages(960)) == 2, WAIT)
                await frontend.stop()
    finally:
        logging.getLogger().handlers.clear()
    captured = capfd.readouterr()
    assert "telegram" in (captured.err + captured.out).lower()
    assert TOKEN not in captured.err + captured.out
    assert TOKEN.split(":")[1] not in captured.err + captured.out


async def test_webhook_mode_checks_the_secret_and_answers_in_the_response(
    tmp_path: Path,
) -> None:
    async with FakeTelegram(TOKEN) as server:
        server.add_user(970, "W", "fr")
        server.add_group(GROUP, "G", creator=ORGANIZER)
        web = WebServer("127.0.0.1", free_port())
        settings = make_settings(
            tmp_path,
            telegram_token=TOKEN,
            telegram_base_url=server.base_url,
            telegram_base_file_url=server.base_file_url,
            telegram_organizer_ids=str(ORGANIZER),
            telegram_webhook_url=f"http://127.0.0.1:{web.port}/telegram",
            telegram_webhook_secret="s" * 24,
        )
        async with bootstrap(settings) as (services, dispatcher):
            frontend = TelegramFrontend(services, dispatcher, web)
            await frontend.start()
            await frontend.lead()
            await web.start()
            try:
                assert server.webhook_info()["max_connections"] == 100  # not Telegram's 40
                server.user_sends(970, 970, "/pledge")
                await server.wait_for(lambda: len(server.messages(970)) == 1, WAIT)
                assert "Merci" in server.messages(970)[0]["text"]
                server.user_sends(ORGANIZER, GROUP, "/board")
                await server.wait_for(lambda: len(server.messages(GROUP)) == 1, WAIT)
                board = server.messages(GROUP)[0]
                press = server.user_presses(970, GROUP, board["message_id"], "pledge")
                await server.wait_for(lambda: press in server.callback_answers, WAIT)
                assert "déjà" in server.callback_answers[press]["text"]
                # answered inside the webhook response: no answerCallbackQuery request
                assert not any(m == "answerCallbackQuery" for m, _ in server.requests)
                async with aiohttp.ClientSession() as http:
                    url = f"http://127.0.0.1:{web.port}/telegram"
                    async with http.post(url, json={"update_id": 1}) as response:
                        assert response.status == 403
                    headers = {"X-Telegram-Bot-Api-Secret-Token": "wrong" * 5}
                    async with http.post(url, json={}, headers=headers) as response:
                        assert response.status == 403
            finally:
                await frontend.stop()
                await web.stop()


def test_split_text_respects_the_limit() -> None:
    from bot.core.text import split_text

    text = "\n\n".join("word " * 300 for _ in range(5))
    pieces = split_text(text, 4096)
    assert all(len(p) <= 4096 for p in pieces)
    assert re.sub(r"\s+", " ", " ".join(pieces)).strip() == re.sub(r"\s+", " ", text).strip()


def limited_world(tmp_path: Path, **rates: float) -> Any:
    """A world whose server enforces Telegram's limits."""
    return telegram_world(tmp_path, Limits(enabled=True), **rates)


async def test_retry_after_holds_one_chat_without_stalling_the_others(tmp_path: Path) -> None:
    # The bot is told the chat limit is 100/s, so the server's real 1/s answers 429.
    async with limited_world(tmp_path, telegram_rate_per_chat=100) as world:
        server = world.server
        for user in (1001, 1002):
            server.add_user(user, "R", "en")
        for _ in range(3):
            server.user_sends(1001, 1001, "/tally")
        await server.wait_for(lambda: server.rejected_429 >= 1, WAIT)
        server.user_sends(1002, 1002, "/tally")
        # What shows that 1002 did not wait behind 1001 is the order, not a stopwatch: 1002
        # is answered before 1001's held answers have all gone out.
        await server.wait_for(lambda: len(server.messages(1002)) == 1, WAIT)
        assert len(server.messages(1001)) < 3, "the other chat was answered while 1001 waits"
        await server.wait_for(lambda: len(server.messages(1001)) == 3, WAIT)


async def test_paced_bot_stays_under_the_limits(tmp_path: Path) -> None:
    async with limited_world(tmp_path) as world:
        server = world.server
        server.add_user(1003, "R", "fr")
        for _ in range(3):
            server.user_sends(1003, 1003, "/tally")
        await server.wait_for(lambda: len(server.messages(1003)) == 3, WAIT)
        assert server.rejected_429 == 0


async def test_a_reminder_reaches_groups_and_volunteers_in_their_languages(world: World) -> None:
    from bot.delivery.outbox import Outbox
    from bot.schedule.scheduler import ReminderScheduler

    server = world.server
    server.user_sends(ORGANIZER, GROUP, "/language ar group")
    await world.answer_in(GROUP)
    for user, code in ((1101, "fr"), (1102, "en"), (1103, "ar")):
        server.add_user(user, "R", code)
        server.user_sends(user, user, "/reminders on")
        await world.answer_in(user)
    server.block_bot(1103)
    outbox = Outbox(world.services)
    outbox.register(world.frontend)
    scheduler = ReminderScheduler(world.services, outbox.wake)
    due = (await scheduler.ladder())["start"]
    made = await scheduler.fire(due=due, rung="start")
    assert made is not None and made.recipients == 4
    assert await outbox.drain() == 4
    assert "Gelez vos comptes maintenant" in server.messages(1101)[-1]["text"]
    assert "Freeze your accounts now" in server.messages(1102)[-1]["text"]
    assert "حان وقت تجميد حساباتك الآن" in server.messages(GROUP)[-1]["text"]
    counts = await world.services.storage.delivery_counts(made.id)
    assert counts == {"sent": 3, "unreachable": 1}
    key = world.services.identities.key("telegram", "1103")
    data = await world.services.storage.export(world.services.campaign.id, key)
    assert data.volunteer is not None and not data.volunteer.reminders  # stopped writing


async def announce(world: World, text: str) -> dict:
    """The organizer announces in a private chat and presses Send; the progress message."""
    server = world.server
    server.user_sends(ORGANIZER, ORGANIZER, f"/announce {text}")
    (preview,) = await world.answer_in(ORGANIZER)
    (button,) = preview["reply_markup"]["inline_keyboard"][0]
    server.user_presses(ORGANIZER, ORGANIZER, preview["message_id"], button["callback_data"])
    return (await world.answer_in(ORGANIZER, 2))[-1]


async def test_an_announcement_shows_its_progress_then_a_report(world: World) -> None:
    from bot.delivery.outbox import Outbox

    server = world.server
    for user, code in ((1201, "fr"), (1202, "en"), (1203, "ar")):
        server.add_user(user, "R", code)
        server.user_sends(user, user, "/reminders on")
        await world.answer_in(user)
    server.block_bot(1203)
    progress = await announce(world, "en: Freeze tomorrow! fr: Gel demain !")
    assert "Sending your announcement to 3 recipients." in progress["text"]
    assert "Remaining: 3" in progress["text"]
    outbox = Outbox(world.services)
    outbox.register(world.frontend)
    assert await outbox.drain() == 3
    assert (
        server.messages(1201)[-1]["text"]
        == "Gel demain !\n\nPour ne plus recevoir ces rappels, envoyez /reminders off."
    )
    await server.wait_for(
        lambda: (
            "Your announcement was delivered to 2 recipients."
            in server.messages(ORGANIZER)[-1]["text"]
        ),
        WAIT,
    )
    (report,) = [m for m in server.messages(ORGANIZER) if m["message_id"] == progress["message_id"]]
    assert "1 recipient could not be reached: they blocked the bot or left." in report["text"]
    assert "Remaining" not in report["text"]
    assert len(server.messages(ORGANIZER)) == 2  # one message, edited: no new one


async def test_the_checkin_button_counts_a_volunteer_as_done(world: World) -> None:
    from bot.delivery.outbox import Outbox
    from bot.schedule.scheduler import ReminderScheduler

    server = world.server
    server.add_user(1301, "V", "ar")
    server.user_sends(1301, 1301, "/pledge")
    server.user_sends(1301, 1301, "/reminders on")
    await world.answer_in(1301, 2)
    outbox = Outbox(world.services)
    outbox.register(world.frontend)
    scheduler = ReminderScheduler(world.services, outbox.wake)
    made = await scheduler.fire("checkin", (await scheduler.ladder())["checkin"])
    assert made is not None and await outbox.drain() == 1
    checkin = server.messages(1301)[-1]
    (button,) = checkin["reply_markup"]["inline_keyboard"][0]
    assert button["text"] == "جمّدتُ حساباتي" and button["callback_data"] == "done"
    ladder = await scheduler.ladder()
    world.services.clock = lambda: ladder["checkin"]  # the check-in is open
    query = server.user_presses(1301, 1301, checkin["message_id"], "done")
    await server.wait_for(lambda: query in server.callback_answers, WAIT)
    assert "شكرًا" in server.callback_answers[query]["text"]
    tally = await world.services.storage.tally(world.services.campaign.id, "telegram", None)
    assert (tally.total, tally.done) == (1, 1)


async def test_a_send_that_timed_out_is_unknown_and_never_sent_twice(world: World) -> None:
    from bot.delivery.outbox import Outbox
    from bot.schedule.scheduler import ReminderScheduler

    server = world.server
    server.add_user(1401, "T", "en")
    server.user_sends(1401, 1401, "/reminders on")
    await world.answer_in(1401)
    # Telegram is slow: python-telegram-bot gives up after its 5 s read timeout, and the
    # message arrives all the same. Sending it again would make a duplicate.
    server.fail_next("sendMessage", delay=5.5)
    outbox = Outbox(world.services)
    outbox.register(world.frontend)
    scheduler = ReminderScheduler(world.services, outbox.wake)
    made = await scheduler.fire("start", (await scheduler.ladder())["start"])
    assert made is not None and await outbox.drain() == 1
    assert await world.services.storage.delivery_counts(made.id) == {"unknown": 1}
    await server.wait_for(lambda: len(server.messages(1401)) == 2, WAIT)
    assert await outbox.drain() == 0
    reminders = [m for m in server.messages(1401) if "Freeze your accounts now" in m["text"]]
    assert len(reminders) == 1


async def test_the_report_still_comes_after_a_restart(world: World) -> None:
    from bot.delivery.outbox import Outbox

    server = world.server
    server.add_user(1501, "R", "fr")
    server.user_sends(1501, 1501, "/reminders on")
    await world.answer_in(1501)
    progress = await announce(world, "fr: Gel demain !")
    assert "Remaining: 1" in progress["text"]
    storage = world.services.storage
    # Where the progress message is gets stored just after it is sent, in the background.
    await eventually(lambda: storage.open_progress("telegram"), what="the progress message stored")
    # The bot stops before sending anything, and a new process takes over.
    await world.frontend.stop()
    restarted = TelegramFrontend(world.services, world.frontend.dispatcher)
    await restarted.start()
    await restarted.lead()
    try:
        outbox = Outbox(world.services)
        outbox.register(restarted)
        assert await outbox.drain() == 1
        await server.wait_for(
            lambda: (
                "Your announcement was delivered to 1 recipient."
                in server.messages(ORGANIZER)[-1]["text"]
            ),
            WAIT,
        )
        assert server.messages(ORGANIZER)[-1]["message_id"] == progress["message_id"]

        async def reported() -> bool:  # a next start will not report it again
            return not await storage.open_progress("telegram")

        await eventually(reported, what="the report marked as shown")
    finally:
        await restarted.stop()
