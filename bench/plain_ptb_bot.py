"""Baseline for bench/telegram_burst.py: the plainest python-telegram-bot bot that does the job.

One handler: write the pledge (aiosqlite, one commit per press) and answer the press. Long
polling with concurrent updates, PTB's defaults otherwise. Reads TOKEN, BASE_URL,
BASE_FILE_URL and DB from the environment, and POOL if set: the size of PTB's httpx
connection pool (default 256), which a careful user lowers when profiling shows httpx
walking it on every request; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal

import aiosqlite
from telegram import Update
from telegram.ext import ApplicationBuilder, CallbackQueryHandler, ContextTypes


async def main() -> None:
    db = await aiosqlite.connect(os.environ["DB"])
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute("CREATE TABLE IF NOT EXISTS pledges (user_id INTEGER PRIMARY KEY)")
    await db.commit()

    async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await db.execute("INSERT OR IGNORE INTO pledges VALUES (?)", (query.from_user.id,))
        await db.commit()
        await query.answer("Thank you for pledging!")

    builder = (
        ApplicationBuilder()
        .token(os.environ["TOKEN"])
        .base_url(os.environ["BASE_URL"])
        .base_file_url(os.environ["BASE_FILE_URL"])
        .concurrent_updates(True)
    )
    if os.environ.get("POOL"):
        builder = builder.connection_pool_size(int(os.environ["POOL"]))
    application = builder.build()
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


if __name__ == "__main__":
    asyncio.run(main())
