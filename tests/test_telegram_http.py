"""The aiohttp backend python-telegram-bot talks through: real PTB calls against the fake Bot
API on 127.0.0.1, and what a timeout says about whether the request reached Telegram."""

from __future__ import annotations

import asyncio

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import TimedOut

from bot.frontends.telegram import may_have_arrived
from bot.frontends.telegram_http import AiohttpRequest
from tests.fakes.telegram_server import FakeTelegram

TOKEN = "123456:HTTP" + "abcdefghijklmnopqrstuvwxyzABCDEF"
USER = 4100


def bot_on(server: FakeTelegram, request: AiohttpRequest) -> Bot:
    return Bot(
        TOKEN,
        base_url=server.base_url,
        base_file_url=server.base_file_url,
        request=request,
        get_updates_request=AiohttpRequest(connection_pool_size=1),  # as the front-end has it
    )


async def test_calls_go_through_and_answers_come_back() -> None:
    async with FakeTelegram(TOKEN) as server:
        server.add_user(USER, "H", "en", started=True)
        async with bot_on(server, AiohttpRequest()) as bot:
            sent = await bot.send_message(USER, "Hello <b>there</b>", parse_mode="HTML")
            assert sent.text == "Hello there"
            edited = await bot.edit_message_text("Bye", chat_id=USER, message_id=sent.message_id)
            assert edited.text == "Bye"  # type: ignore[union-attr]
        assert [m["text"] for m in server.messages(USER)] == ["Bye"]


async def test_a_request_that_never_got_a_connection_was_not_sent() -> None:
    async with FakeTelegram(TOKEN) as server:
        server.add_user(USER, "H", "en", started=True)
        request = AiohttpRequest(connection_pool_size=1, connect_timeout=0.2, pool_timeout=0.2)
        async with bot_on(server, request) as bot:
            server.fail_next("sendMessage", delay=1.5)  # Telegram is slow: it holds the one
            first = asyncio.ensure_future(bot.send_message(USER, "one"))  # connection
            await asyncio.sleep(0.1)
            with pytest.raises(TimedOut) as waited:
                await bot.send_message(USER, "two")
            assert not may_have_arrived(waited.value)  # safe to send again
            await first
        await asyncio.sleep(0.2)
        assert [m["text"] for m in server.messages(USER)] == ["one"]


async def test_a_request_that_timed_out_after_leaving_may_have_arrived() -> None:
    async with FakeTelegram(TOKEN) as server:
        server.add_user(USER, "H", "en", started=True)
        async with bot_on(server, AiohttpRequest(read_timeout=0.3)) as bot:
            server.fail_next("sendMessage", delay=0.8)
            with pytest.raises(TimedOut) as waited:
                await bot.send_message(USER, "late")
            assert may_have_arrived(waited.value)  # never send it again
            await server.wait_for(lambda: len(server.messages(USER)) == 1, timeout=5)
        assert [m["text"] for m in server.messages(USER)] == ["late"]


async def test_a_press_arrives_with_its_chat_and_message_but_not_their_content() -> None:
    async with FakeTelegram(TOKEN) as server:
        server.add_user(USER, "H", "en", started=True)
        async with bot_on(server, AiohttpRequest()) as bot:
            keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("I pledge", callback_data="p")]])
            board = await bot.send_message(USER, "A long board " * 50, reply_markup=keyboard)
            server.user_presses(USER, USER, board.message_id, "p")
            (update,) = await bot.get_updates(timeout=0)
        query = update.callback_query
        assert query is not None and query.data == "p" and query.from_user.id == USER
        assert query.message is not None
        assert (query.message.chat.id, query.message.message_id) == (USER, board.message_id)
        # The board's text and keyboard are not parsed again for every press.
        assert getattr(query.message, "text", None) is None
