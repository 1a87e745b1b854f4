"""News between the processes on one database: PostgreSQL's LISTEN/NOTIFY on one channel.

A notice is `<topic> <sender>`: each process listens on its own connection and skips what it
sent itself. A listening connection that drops is opened again (notices sent meanwhile are
lost: every topic is a hint to look at the database again, which the leader also does on
its own schedule, never the data itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Callable
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

CHANNEL = "coalition"
RECONNECT_SECONDS = 1.0


class Notices:
    """Publishes topics and calls back with the other processes' ones."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.sender = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._callbacks: list[Callable[[str], None]] = []
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def publish(self, pool: asyncpg.Pool, topic: str) -> None:
        """Tell every other process `topic` changed."""
        await pool.execute("SELECT pg_notify($1, $2)", CHANNEL, f"{topic} {self.sender}")

    async def subscribe(self, callback: Callable[[str], None]) -> None:
        """Call `callback(topic)` for each topic another process publishes."""
        self._callbacks.append(callback)
        if self._task is None:
            await self._listen()  # the first time: listening before this returns
            self._task = asyncio.create_task(self._keep_listening())

    async def _listen(self) -> None:
        conn = await asyncpg.connect(
            self._url, server_settings={"application_name": "coalition-notices"}
        )
        await conn.add_listener(CHANNEL, self._received)
        self._conn = conn

    def _received(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        topic, _, sender = payload.partition(" ")
        if sender == self.sender:
            return
        for callback in self._callbacks:
            try:
                callback(topic)
            except Exception:
                log.exception("notices: a listener failed on %r", topic)

    async def _keep_listening(self) -> None:
        while not self._closing:
            await asyncio.sleep(RECONNECT_SECONDS)
            conn = self._conn
            if conn is not None and not conn.is_closed():
                continue
            try:
                await self._listen()
                log.info("notices: listening again")
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("notices: cannot listen (%s); trying again", type(error).__name__)

    async def close(self) -> None:
        """Stop listening."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)
