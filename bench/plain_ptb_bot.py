"""Baseline for bench/telegram_burst.py: the plainest python-telegram-bot bot that does the job.

One handler: write the pledge (aiosqlite, one commit per press) and answer the press by its
own request (`await query.answer(...)`), with concurrent updates, PTB's defaults otherwise.
It takes updates one of three ways, as PTB documents them (MODE):

- `polling` (the default): `Updater.start_polling`;
- `webhook`: `Application.run_webhook`, PTB's own webhook server (tornado; needs
  `pip install "python-telegram-bot[webhooks]"`), which puts each update on the
  application's queue and answers Telegram's POST at once;
- `custom-webhook`: PTB's documented custom-webhook pattern (`.updater(None)`, the web
  server puts `Update.de_json(...)` on `application.update_queue`), here on aiohttp, which
  the project already depends on.

Reads TOKEN, BASE_URL, BASE_FILE_URL and DB from the environment; for the webhook modes
WEBHOOK_URL (the URL Telegram posts to), PORT (where to listen on 127.0.0.1), SECRET (the
secret token Telegram sends back) and MAX_CONNECTIONS (passed to setWebhook, default 100,
as coalition-bot asks); and POOL if set: the size of PTB's httpx connection pool (default
256), which a careful user lowers when profiling shows httpx walking it on every request.
Stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any
from urllib.parse import urlsplit

import aiosqlite
from telegram import Update
from telegram.ext import Application, ApplicationBuilder, CallbackQueryHandler, ContextTypes

ALLOWED_UPDATES = ["callback_query"]


async def open_db() -> aiosqlite.Connection:
    db = await aiosqlite.connect(os.environ["DB"])
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute("CREATE TABLE IF NOT EXISTS pledges (user_id INTEGER PRIMARY KEY)")
    await db.commit()
    return db


async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Write the pledge (its own commit), then answer the press by a separate request."""
    query = update.callback_query
    assert query is not None
    db: aiosqlite.Connection = context.bot_data["db"]
    await db.execute("INSERT OR IGNORE INTO pledges VALUES (?)", (query.from_user.id,))
    await db.commit()
    await query.answer("Thank you for pledging!")


def builder() -> ApplicationBuilder[Any, Any, Any, Any, Any, Any]:
    built = (
        ApplicationBuilder()
        .token(os.environ["TOKEN"])
        .base_url(os.environ["BASE_URL"])
        .base_file_url(os.environ["BASE_FILE_URL"])
        .concurrent_updates(True)
    )
    if os.environ.get("POOL"):
        built = built.connection_pool_size(int(os.environ["POOL"]))
    return built


async def polling() -> None:
    db = await open_db()
    application = builder().build()
    application.bot_data["db"] = db
    application.add_handler(CallbackQueryHandler(on_press))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with application:
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0.0, timeout=10)
        await application.start()
        await stop.wait()
        await application.updater.stop()
        await application.stop()
    await db.close()


def webhook() -> None:
    """`Application.run_webhook`: initialize, post_init (the database), setWebhook, serve
    with PTB's tornado server until SIGTERM, then shut down. It owns the event loop."""

    async def post_init(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        application.bot_data["db"] = await open_db()

    async def post_shutdown(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        await application.bot_data["db"].close()

    application = builder().post_init(post_init).post_shutdown(post_shutdown).build()
    application.add_handler(CallbackQueryHandler(on_press))
    url = os.environ["WEBHOOK_URL"]
    application.run_webhook(
        listen="127.0.0.1",
        port=int(os.environ["PORT"]),
        url_path=urlsplit(url).path,
        webhook_url=url,
        secret_token=os.environ["SECRET"],
        max_connections=int(os.environ.get("MAX_CONNECTIONS") or 100),
        allowed_updates=ALLOWED_UPDATES,
        stop_signals=(signal.SIGTERM, signal.SIGINT),
    )


async def custom_webhook() -> None:
    """PTB's custom-webhook pattern (its examples/customwebhookbot), on aiohttp."""
    from aiohttp import web

    db = await open_db()
    application = builder().updater(None).build()
    application.bot_data["db"] = db
    application.add_handler(CallbackQueryHandler(on_press))
    url = os.environ["WEBHOOK_URL"]
    secret = os.environ["SECRET"]

    async def telegram(request: web.Request) -> web.Response:
        if request.headers.get("X-Telegram-Bot-Api-Secret-Token") != secret:
            return web.Response(status=403)
        update = Update.de_json(await request.json(), application.bot)
        await application.update_queue.put(update)
        return web.Response()

    app = web.Application()
    app.router.add_post(urlsplit(url).path, telegram)
    runner = web.AppRunner(app, access_log=None)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with application:
        await application.bot.set_webhook(
            url,
            secret_token=secret,
            max_connections=int(os.environ.get("MAX_CONNECTIONS") or 100),
            allowed_updates=ALLOWED_UPDATES,
        )
        await application.start()
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", int(os.environ["PORT"])).start()
        await stop.wait()
        await runner.cleanup()
        await application.stop()
    await db.close()


if __name__ == "__main__":
    mode = os.environ.get("MODE", "polling")
    if mode == "webhook":
        webhook()
    elif mode == "custom-webhook":
        asyncio.run(custom_webhook())
    else:
        asyncio.run(polling())
