"""Which process leads: the one holding a PostgreSQL advisory lock on its own connection.

The platforms' limits are per bot, not per process, so exactly one process at a time runs
the scheduler and sends (the outbox), and edits the boards. The lock is a session-level
advisory lock held by a connection that does nothing else: it is released by PostgreSQL
itself when that connection ends, however the process ends (SIGKILL, a lost network). The
holder checks its connection every `CHECK_SECONDS`; a check that fails or takes longer than
that means it may have lost the lock, and it stops leading at once (another process may
already have taken over). Every other process tries to take the lock every `CHECK_SECONDS`,
so a takeover happens within about two of them once the old connection is gone (TCP
keepalives on that connection bound how long PostgreSQL takes to see a silent peer gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

import asyncpg

log = logging.getLogger(__name__)

# The lock's key: any 64-bit number no other application on the database uses.
LOCK_KEY = 0x636F616C6974696F  # "coalitio"
CHECK_SECONDS = 1.0


class Leadership:
    """Tries to take the lead and keeps watching that it still holds it."""

    def __init__(self, url: str, key: int = LOCK_KEY) -> None:
        self._url = url
        self._key = key
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        # The lock's connection is named after the process: `pg_stat_activity` tells who leads.
        self.name = f"coalition-lead-{os.getpid()}"

    def _session_settings(self) -> dict[str, str]:
        # PostgreSQL probes this connection's peer every few seconds: a leader cut off by
        # the network (no FIN, no RST) is found dead in about 8 s and its lock released,
        # rather than after the system's two-hour default.
        return {
            "application_name": self.name,
            "tcp_keepalives_idle": "5",
            "tcp_keepalives_interval": "1",
            "tcp_keepalives_count": "3",
        }

    @property
    def leading(self) -> bool:
        """Whether this process holds the lock (as far as its last check could tell)."""
        return self._conn is not None and not self._lost.is_set()

    async def try_lead(self) -> bool:
        """Take the lock if no other process holds it; True if this process leads now."""
        if self.leading:
            return True
        await self._drop()
        try:
            conn = await asyncio.wait_for(
                asyncpg.connect(self._url, server_settings=self._session_settings()),
                CHECK_SECONDS * 5,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError) as error:
            log.warning("leadership: cannot reach PostgreSQL (%s)", type(error).__name__)
            return False
        try:
            taken = await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key)
        except (OSError, asyncpg.PostgresError):
            taken = False
        if not taken:
            await conn.close()
            return False
        self._conn = conn
        self._lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: self._lost.set())
        return True

    async def watch(self) -> None:
        """Return when the lead may be lost: the lock's connection ended or stopped
        answering within CHECK_SECONDS."""
        while self.leading:
            conn = self._conn
            assert conn is not None
            try:
                await asyncio.wait_for(conn.fetchval("SELECT 1"), CHECK_SECONDS)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                self._lost.set()
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), CHECK_SECONDS)
        log.warning("leadership: lost the lock's connection; stopping leading")
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()  # ends the session: PostgreSQL releases the lock

    async def close(self) -> None:
        """Give the lead up (another process takes over at its next try)."""
        self._lost.set()
        await self._drop()
