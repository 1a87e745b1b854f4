"""The fake Telegram server against the real python-telegram-bot, on the wire."""

from __future__ import annotations

import asyncio
import datetime as dtm
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReactionTypeEmoji,
    Update,
)
from telegram.constants import ChatMemberStatus, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler

from tests.fakes.telegram_server import FakeTelegram, Limits

TOKEN = "123456:TEST" + "abcdefghijklmnopqrstuvwxyzABCD"
USER = 42
GROUP = -1001234
KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="yes")]])


@pytest.fixture
async def server() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as fake:
        yield fake


def make_bot(server: FakeTelegram, token: str = TOKEN) -> Bot:
    return Bot(token, base_url=server.base_url, base_file_url=server.base_file_url)


@pytest.fixture
async def bot(server: FakeTelegram) -> AsyncIterator[Bot]:
    async with make_bot(server) as tg_bot:
        yield tg_bot


# -- (1) a bare Bot ------------------------------------------------------------------------


async def test_bare_bot_sends_edits_and_answers(server: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (server.bot_id, "coalition_test_bot", True)

    server.add_user(USER, "Ana", "fr")
    server.user_sends(USER, USER, "/start")  # the user opens the private chat
    sent = await bot.send_message(
        USER, "Hello <b>Ana</b> &amp; co", parse_mode=ParseMode.HTML, reply_markup=KEYBOARD
    )
    assert sent.text == "Hello Ana & co"
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [("bold", 6, 3)]
    assert sent.reply_markup == KEYBOARD
    assert sent.from_user is not None and sent.from_user.id == server.bot_id

    edited = await bot.edit_message_text(
        "Changed", chat_id=USER, message_id=sent.message_id, reply_markup=KEYBOARD
    )
    assert not isinstance(edited, bool) and edited.text == "Changed"
    assert server.messages(USER)[0]["text"] == "Changed"
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text(
            "Changed", chat_id=USER, message_id=sent.message_id, reply_markup=KEYBOARD
        )
    assert len(server.edits(USER)) == 1

    query_id = server.user_presses(USER, USER, sent.message_id, "yes")
    (update,) = await bot.get_updates(timeout=0, offset=-1)
    assert update.callback_query is not None
    assert update.callback_query.id == query_id
    assert update.callback_query.data == "yes"
    assert update.callback_query.message is not None
    assert update.callback_query.message.message_id == sent.message_id
    assert await bot.answer_callback_query(query_id, text="Noted", show_alert=True)
    assert server.callback_answers[query_id]["show_alert"] is True
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(query_id, text="again")


async def test_wire_details(server: FakeTelegram, bot: Bot) -> None:
    server.add_user(USER, started=True)
    # a text that looks like JSON stays a string; booleans and objects arrive decoded
    await bot.send_message(USER, "123", disable_notification=True, disable_web_page_preview=True)
    method, params = server.requests[-1]
    assert method == "sendMessage"
    assert params["text"] == "123" and params["chat_id"] == USER
    assert params["disable_notification"] is True
    assert params["link_preview_options"] == {"is_disabled": True}

    with pytest.raises(BadRequest, match=r"(?i)Unsupported start tag"):
        await bot.send_message(USER, "a <script> b", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)reserved"):
        await bot.send_message(USER, "Hi.", parse_mode=ParseMode.MARKDOWN_V2)
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query("nope")
    long_query = server.user_presses(
        USER, USER, (await bot.send_message(USER, "k", reply_markup=KEYBOARD)).message_id, "yes"
    )
    with pytest.raises(BadRequest):
        await bot.answer_callback_query(long_query, text="x" * 201)
    assert await bot.answer_callback_query(long_query, text="x" * 200)

    # a reply to the user's own message carries reply_to_message
    asked = server.user_sends(USER, USER, "question")
    answer = await bot.send_message(USER, "answer", reply_to_message_id=asked)
    assert answer.reply_to_message is not None and answer.reply_to_message.text == "question"
    with pytest.raises(BadRequest, match=r"(?i)replied not found"):
        await bot.send_message(USER, "x", reply_to_message_id=9999)
    assert await bot.send_message(
        USER, "x", reply_to_message_id=9999, allow_sending_without_reply=True
    )

    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("noSuchMethod")
    wrong = make_bot(server, "123456:WRONG" + "x" * 29)
    with pytest.raises(InvalidToken):
        await wrong.initialize()
    await wrong.shutdown()
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.base_url}{TOKEN}/noSuchMethod") as response:
            assert response.status == 404
            assert await response.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found",
            }
        async with session.post(f"{server.base_url}bad:token/getMe") as response:
            assert response.status == 401
            assert (await response.json())["description"] == "Unauthorized"
        # JSON bodies work too
        async with session.post(
            f"{server.base_url}{TOKEN}/sendMessage", json={"chat_id": USER, "text": "json"}
        ) as response:
            body = await response.json()
            assert body["ok"] is True and body["result"]["text"] == "json"


async def test_commands_pins_reactions_members(server: FakeTelegram, bot: Bot) -> None:
    server.add_group(GROUP, "Coalition", admins=[7], creator=8)
    server.add_group(-55, "No pins", bot_can_pin=False, supergroup=False)
    everyone = [BotCommand("pledge", "Pledge"), BotCommand("tally", "Count")]
    await bot.set_my_commands(everyone, language_code="fr")
    await bot.set_my_commands(everyone[:1], scope=BotCommandScopeAllChatAdministrators())
    await bot.set_my_commands(everyone, scope=BotCommandScopeChat(GROUP))
    assert server.commands[("default", "fr")][0] == {"command": "pledge", "description": "Pledge"}
    assert ("all_chat_administrators", "") in server.commands
    assert (f"chat:{GROUP}", "") in server.commands
    assert [c.command for c in await bot.get_my_commands(language_code="fr")] == ["pledge", "tally"]
    assert await bot.get_my_commands() == ()
    await bot.delete_my_commands(language_code="fr")
    assert ("default", "fr") not in server.commands
    with pytest.raises(BadRequest):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])

    board = await bot.send_message(GROUP, "board")
    assert await board.pin(disable_notification=True)
    assert server.pinned == {GROUP: board.message_id}
    no_pin = await bot.send_message(-55, "board")
    with pytest.raises(BadRequest, match=r"(?i)not enough rights"):
        await no_pin.pin()

    said = server.user_sends(9, GROUP, "/pledge@coalition_test_bot facebook")
    assert await bot.set_message_reaction(GROUP, said, ReactionTypeEmoji("👍"))
    assert server.reactions[-1]["reaction"] == [{"type": "emoji", "emoji": "👍"}]
    with pytest.raises(BadRequest, match=r"(?i)REACTION_INVALID"):
        await bot.set_message_reaction(GROUP, said, ReactionTypeEmoji("🐍"))

    statuses = {
        user: (await bot.get_chat_member(GROUP, user)).status for user in (7, 8, 9, server.bot_id)
    }
    assert statuses == {
        7: ChatMemberStatus.ADMINISTRATOR,
        8: ChatMemberStatus.OWNER,
        9: ChatMemberStatus.MEMBER,
        server.bot_id: ChatMemberStatus.ADMINISTRATOR,
    }
    admins = await bot.get_chat_administrators(GROUP)
    assert [m.user.id for m in admins] == [8, 7, server.bot_id]
    chat = await bot.get_chat(GROUP)
    assert (chat.type, chat.title) == ("supergroup", "Coalition")
    assert chat.pinned_message is not None and chat.pinned_message.message_id == board.message_id


async def test_long_poll_holds_until_an_update(server: FakeTelegram, bot: Bot) -> None:
    server.add_user(USER)
    started = time.monotonic()
    assert await bot.get_updates(timeout=dtm.timedelta(seconds=0.2)) == ()
    assert time.monotonic() - started >= 0.19

    polls = len(server.requests)
    waiting = asyncio.create_task(bot.get_updates(timeout=5))
    await server.wait_for(lambda: len(server.requests) > polls)
    started = time.monotonic()
    server.user_sends(USER, USER, "hello")
    (update,) = await waiting
    assert time.monotonic() - started < 1
    assert update.message is not None and update.message.text == "hello"
    assert update.message.entities == ()
    # not confirmed yet: still there; confirmed by offset: gone
    assert len(await bot.get_updates(timeout=0)) == 1
    assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()

    # allowed_updates filters what is created from then on
    await bot.get_updates(timeout=0, allowed_updates=["callback_query"])
    server.user_sends(USER, USER, "ignored")
    assert await bot.get_updates(timeout=0) == ()


# -- (2) a real Application ----------------------------------------------------------------


async def test_application_polling(server: FakeTelegram) -> None:
    server.add_user(USER, "Bea", "en")
    server.add_group(GROUP, "Coalition")

    async def start(update: Update, context: Any) -> None:
        assert update.message is not None
        await update.message.reply_text("Welcome", reply_markup=KEYBOARD)

    async def button(update: Update, context: Any) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("Pressed")
        await query.edit_message_text("Done")

    app: Application[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(server.base_url)
        .base_file_url(server.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(button))
    async with app:
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        await app.start()
        try:
            server.user_sends(USER, USER, "/start")
            await server.wait_for(lambda: len(server.messages(USER)) == 1)
            welcome = server.messages(USER)[0]
            assert welcome["text"] == "Welcome"
            assert "reply_to_message" not in welcome  # PTB does not quote in private chats

            query_id = server.user_presses(USER, USER, welcome["message_id"], "yes")
            await server.wait_for(lambda: query_id in server.callback_answers)
            assert server.callback_answers[query_id]["text"] == "Pressed"
            await server.wait_for(lambda: server.messages(USER)[0]["text"] == "Done")
            assert "reply_markup" not in server.messages(USER)[0]  # edited without markup

            # in a group, a command addressed to the bot; PTB quotes the command there
            said = server.user_sends(9, GROUP, "/start@coalition_test_bot")
            await server.wait_for(lambda: len(server.messages(GROUP)) == 1)
            assert server.messages(GROUP)[0]["reply_to_message"]["message_id"] == said
        finally:
            await app.updater.stop()
            await app.stop()
    assert server.requests[0][0] == "getMe"
    assert "deleteWebhook" in [method for method, _ in server.requests]


# -- (3) flood limits -------------------------------------------------------------------------

# PTB warns on every RetryAfter it builds (int retry_after is deprecated unless PTB_TIMEDELTA).
no_timedelta_warning = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


@no_timedelta_warning
async def test_flood_limits() -> None:
    async with FakeTelegram(TOKEN, limits=Limits(enabled=True)) as server:
        server.add_user(USER, started=True)
        async with make_bot(server) as bot:
            first = await bot.send_message(USER, "one")
            with pytest.raises(RetryAfter):
                await bot.send_message(USER, "two")
            with pytest.raises(RetryAfter):
                await bot.edit_message_text("edited", chat_id=USER, message_id=first.message_id)
            assert server.rejected_429 == 2
            assert [m["text"] for m in server.messages(USER)] == ["one"]

        async with aiohttp.ClientSession() as session:
            url = f"{server.base_url}{TOKEN}/sendMessage"
            async with session.post(url, data={"chat_id": str(USER), "text": "three"}) as response:
                assert response.status == 429
                body = await response.json()
        assert body["error_code"] == 429
        assert body["parameters"]["retry_after"] == 1
        assert body["description"] == "Too Many Requests: retry after 1"
        assert server.rejected_429 == 3


@no_timedelta_warning
async def test_group_minute_limit_and_free_callback_answers() -> None:
    limits = Limits(enabled=True, per_second_per_chat=100, per_minute_per_group=2)
    async with FakeTelegram(TOKEN, limits=limits) as server:
        server.add_group(GROUP)
        async with make_bot(server) as bot:
            sent = await bot.send_message(GROUP, "one", reply_markup=KEYBOARD)
            await bot.send_message(GROUP, "two")
            with pytest.raises(RetryAfter):
                await bot.send_message(GROUP, "three")
            for _ in range(3):
                query_id = server.user_presses(USER, GROUP, sent.message_id, "yes")
                assert await bot.answer_callback_query(query_id)
    _, params = server.requests[-1]
    assert server.rejected_429 == 1 and params["callback_query_id"] == query_id


# -- (4) errors -------------------------------------------------------------------------------


async def test_blocked_kicked_migrated_and_failing(server: FakeTelegram, bot: Bot) -> None:
    server.add_user(USER)
    with pytest.raises(Forbidden, match="can't initiate conversation"):
        await bot.send_message(USER, "hi")
    server.user_sends(USER, USER, "/start")
    await bot.send_message(USER, "hi")
    server.block_bot(USER)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(USER, "hi")

    server.add_group(GROUP)
    server.remove_bot(GROUP)
    with pytest.raises(Forbidden, match="bot was kicked"):
        await bot.send_message(GROUP, "hi")

    server.add_group(-77, supergroup=False)
    server.migrate_group(-77, GROUP - 1)
    with pytest.raises(ChatMigrated) as migrated:
        await bot.send_message(-77, "hi")
    assert migrated.value.new_chat_id == GROUP - 1
    assert (await bot.send_message(GROUP - 1, "moved")).chat.type == "supergroup"

    server.fail_next("sendMessage", status=500)
    with pytest.raises(NetworkError):
        await bot.send_message(GROUP - 1, "x")
    server.fail_next("sendMessage", status=502, times=2)
    for _ in range(2):
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.send_message(GROUP - 1, "x")
    assert (await bot.send_message(GROUP - 1, "through")).text == "through"

    # a slow Telegram: the client times out, the message is sent all the same
    server.fail_next("sendMessage", delay=0.4)
    with pytest.raises(TimedOut):
        await bot.send_message(GROUP - 1, "slow", read_timeout=0.1)
    await server.wait_for(lambda: server.messages(GROUP - 1)[-1]["text"] == "slow")

    updates = await bot.get_updates(timeout=0)
    kinds = [next(k for k in u.to_dict() if k != "update_id") for u in updates]
    assert kinds.count("my_chat_member") == 2  # the block and the removal
    assert [u.message.migrate_to_chat_id for u in updates if u.message][-2] == GROUP - 1


# -- (5) webhook ----------------------------------------------------------------------------


async def test_webhook_delivery(server: FakeTelegram, bot: Bot) -> None:
    received: list[tuple[str | None, dict]] = []
    refusals = [1]

    async def receive(request: web.Request) -> web.Response:
        if refusals:
            refusals.pop()
            return web.Response(status=500)
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        assert await bot.set_webhook(url, secret_token="s3cret")
        assert (await bot.get_webhook_info()).url == url
        with pytest.raises(Conflict):
            await bot.get_updates(timeout=0)

        server.add_user(USER)
        message_id = server.user_sends(USER, USER, "/start hello")
        await server.wait_for(lambda: len(received) == 1)
        secret, data = received[0]
        assert secret == "s3cret"
        update = Update.de_json(data, bot)
        assert update.message is not None
        assert update.message.message_id == message_id
        assert update.message.text == "/start hello"
        assert update.message.entities[0].type == "bot_command"
        assert update.message.entities[0].length == len("/start")
        info = await bot.get_webhook_info()
        assert info.pending_update_count == 0
        assert info.last_error_message is not None and "500" in info.last_error_message

        assert await bot.delete_webhook()
        server.user_sends(USER, USER, "polled again")
        (polled,) = await bot.get_updates(timeout=0)
        assert polled.message is not None and polled.message.text == "polled again"
    finally:
        await runner.cleanup()


async def test_anonymous_admin(server: FakeTelegram, bot: Bot) -> None:
    server.add_group(GROUP, admins=[7])
    server.user_sends(7, GROUP, "/board", sender_chat_id=GROUP)
    (update,) = await bot.get_updates(timeout=0)
    message = update.message
    assert message is not None and message.from_user is not None
    assert message.from_user.id == 1087968824
    assert message.sender_chat is not None and message.sender_chat.id == GROUP
    with pytest.raises(ValueError, match="not an administrator"):
        server.user_sends(9, GROUP, "/board", sender_chat_id=GROUP)


async def test_wait_for_explains_a_timeout(server: FakeTelegram) -> None:
    with pytest.raises(AssertionError, match="never_true"):
        await server.wait_for(lambda: "never_true" == "", timeout=0.05)
