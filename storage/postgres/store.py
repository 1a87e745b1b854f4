"""PostgresStorage: the Storage contract on a PostgreSQL database that several processes share,
each operation a coroutine of queries.py run on a pool connection, in a transaction of its
own (or, for the counters' writes, several in one: see `GROUP_COMMIT`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TypeVar

import asyncpg

from storage.base import (
    Broadcast,
    Community,
    Delivery,
    Finished,
    LinkResult,
    Pledge,
    PledgeResult,
    Storage,
    StorageError,
    Tally,
    Volunteer,
    VolunteerData,
)
from storage.batching import Coalesced, GroupCommit
from storage.expansion import Expansions
from storage.postgres import links, queries, schema
from storage.postgres.leader import Leadership
from storage.postgres.notices import Notices
from storage.postgres.transactions import (
    Batches,
    alone,
    as_storage_error,
    connect_error,
    describe,
    in_transaction,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
Query = Callable[[asyncpg.Connection], Awaitable[T]]

# Volunteers looked at per transaction when a broadcast is expanded, as in the SQLite store
# (paced as there: storage/expansion.py), so that a million recipients never crowd out the
# presses.
EXPAND_CHUNK = 1000
# Connections each process keeps open to the database.
POOL_SIZE = 10
# How long opening a connection may take before the storage is reported failing.
CONNECT_TIMEOUT_S = 10.0
# How long close() waits for a VACUUM under way (an erasure's); after that it is cancelled
# and autovacuum finishes it.
VACUUM_AT_CLOSE_S = 10.0
# Pledges, check-ins and withdrawals (the writes to a campaign's counter row) of one process
# are committed together, several in one transaction (storage/batching.py), when True; each
# in its own when False. The counter row is locked until its transaction commits, so one
# transaction per pledge means one commit (one WAL flush) per pledge in turn, however many
# connections wait. Measured on the 2-core machine (200 concurrent new pledges, median of
# 5 runs; batches against a pool of 10 with each pledge one autocommit statement): 45 ms
# against 86 ms on the test server (fsync off), 51 against 157 ms with fsync and
# synchronous_commit on; three storages at once, 600 pledges, 165 against 309 ms and 165
# against 616 ms.
GROUP_COMMIT = True


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to reset when a connection goes back to the pool (asyncpg still rolls back a
    transaction left open): the pool's connections never LISTEN, lock or SET anything (the
    leader's lock and LISTEN have connections of their own), and the default reset costs
    a round trip at every release (bench/processes.py: about a tenth of a pledge's)."""


async def _always() -> bool:
    """No checkpoints here: nothing to do after a batch's commit."""
    return True


class PostgresStorage(Storage):
    """The backend for several processes on one PostgreSQL database."""

    def __init__(self, url: str, pool_size: int = POOL_SIZE) -> None:
        self._url = url  # never logged, never in an error: it may hold a password
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._group_commit = GROUP_COMMIT
        self._batches = Batches(self._open_pool)
        self._writer = GroupCommit[asyncpg.Connection](
            run_batch=self._batches.run_batch,
            run_each=self._batches.run_each,
            classify=as_storage_error,
            after_commit=_always,
        )
        # Every command's first read: those asked meanwhile in one round trip (bench/
        # processes.py: a round trip of its own per command was about half of a bot
        # process's CPU, most of it the socket's send).
        self._contexts = Coalesced[queries.Context, tuple[Volunteer | None, Community | None]](
            lambda wanted: alone(self._open_pool(), lambda db: queries.load_contexts(db, wanted))
        )
        # Broadcasts whose volunteers are being added after the first chunk.
        self._expansions = Expansions(lambda b: self._expand_step(b), lambda: EXPAND_CHUNK)
        # Tables an erasure left dead rows in, for the next VACUUM, and the task running it.
        self._to_vacuum: set[str] = set()
        self._vacuuming: asyncio.Task[None] | None = None
        self.vacuums = 0  # how many VACUUMs ran (tests)
        self._leadership = Leadership(url)
        self._notices = Notices(url)
        self._tokens_swept = 0.0

    def __repr__(self) -> str:
        return "PostgresStorage(<url hidden>)"

    # -- lifecycle -----------------------------------------------------------------

    async def open(self) -> None:
        """Open the pool and apply pending migrations (once, whichever process is first);
        then VACUUM the tables that hold personal data, in the background: a process stopped
        between an erasure's commit and its VACUUM left dead rows, and this clears them."""
        try:
            pool = await asyncpg.create_pool(
                self._url,
                min_size=self._pool_size,
                max_size=self._pool_size,
                timeout=CONNECT_TIMEOUT_S,
                # A generic plan made while the tables were empty scans them whole until
                # the first ANALYZE (bench/processes.py: a fresh database's pledges slowed
                # from 1,083/s to 244/s in the first minute); custom plans stay flat.
                server_settings={
                    "application_name": "coalition-bot",
                    "plan_cache_mode": "force_custom_plan",
                },
                reset=_keep_session,
            )
        except Exception as error:
            raise connect_error(error) from None
        try:
            async with pool.acquire() as conn:
                await schema.migrate(conn)
        except BaseException as error:
            pool.terminate()
            wrapped = as_storage_error(error)
            if wrapped is error:
                raise
            raise wrapped from error
        self._pool = pool
        self._writer.open()
        self._vacuum_soon(schema.PERSONAL_TABLES)

    async def close(self) -> None:
        """Stop the background expansions (the next start finishes them), wait for queued
        writes and a VACUUM under way, and close the pool; never raises."""
        if self._pool is None:
            return
        await self._leadership.close()
        await self._notices.close()
        await self._expansions.close()  # the next start finishes them (finish_expansions)
        await self._writer.close()
        vacuuming = self._vacuuming
        if vacuuming is not None and not vacuuming.done():
            try:
                await asyncio.wait_for(asyncio.shield(vacuuming), VACUUM_AT_CLOSE_S)
            except Exception:
                vacuuming.cancel()
                log.warning("storage: a VACUUM was cut short at shutdown; autovacuum will do it")
                await asyncio.gather(vacuuming, return_exceptions=True)
        pool, self._pool = self._pool, None
        try:
            await asyncio.wait_for(pool.close(), CONNECT_TIMEOUT_S)
        except Exception as error:
            log.warning("storage: closing the connections failed: %s", describe(error))
            pool.terminate()

    # -- several processes ------------------------------------------------------------

    async def try_lead(self) -> bool:
        """Take the lead (an advisory lock on a connection of its own) if no process has it."""
        return await self._leadership.try_lead()

    async def lead_lost(self) -> None:
        """Return once the lock's connection ended or stopped answering."""
        await self._leadership.watch()

    async def publish(self, topic: str) -> None:
        """NOTIFY the other processes that `topic` changed."""
        await self._guard(self._notices.publish(self._open_pool(), topic))

    async def subscribe(self, callback: Callable[[str], None]) -> None:
        """LISTEN (on a connection of its own) for the other processes' topics."""
        await self._guard(self._notices.subscribe(callback))

    async def take_command_token(self, key: bytes, rate: int, period: float) -> bool | None:
        """One of `rate` commands per `period` seconds from the bucket every process shares
        (refilled continuously); full buckets are swept now and then."""
        now = time.time()
        pool = self._open_pool()
        taken = await self._guard(
            pool.fetchval(
                "INSERT INTO command_tokens AS b (key, tokens, at) VALUES ($1, $2 - 1, $3) "
                "ON CONFLICT (key) DO UPDATE SET "
                "tokens = LEAST($2, b.tokens + ($3 - b.at) * $2 / $4) - 1, at = $3 "
                "WHERE LEAST($2, b.tokens + ($3 - b.at) * $2 / $4) >= 1 "
                "RETURNING true",
                key,
                float(rate),
                now,
                float(period),
            )
        )
        if now - self._tokens_swept > period:
            self._tokens_swept = now
            await self._guard(
                pool.execute("DELETE FROM command_tokens WHERE at < $1", now - period)
            )
        return bool(taken)

    # -- running queries -------------------------------------------------------------

    def _open_pool(self) -> asyncpg.Pool:
        """The pool, once open (StorageError before, and after close)."""
        if self._pool is None:
            raise StorageError("storage failing: the storage is closed")
        return self._pool

    async def _guard(self, work: Awaitable[T]) -> T:
        """Await work, its database and connection errors as StorageError."""
        try:
            return await work
        except Exception as error:
            wrapped = as_storage_error(error)
            if wrapped is error:
                raise
            raise wrapped from error

    async def _call(self, op: Query[T], retry_on: tuple[type[BaseException], ...] = ()) -> T:
        """Run op in a transaction of its own (a deadlock: tried again)."""
        pool = self._open_pool()
        return await self._guard(in_transaction(pool, op, retry_on))

    async def _run(self, op: Query[T]) -> T:
        """Run op outside any explicit transaction: a single statement, or reads."""
        pool = self._open_pool()
        return await self._guard(alone(pool, op))

    async def _count(self, op: Query[T]) -> T:
        """A write to the counters: with the others queued meanwhile in one transaction
        (group commit), or in its own."""
        if not self._group_commit:
            return await self._call(op)
        self._open_pool()
        result: T = await self._writer.submit(op)
        return result

    # -- erasure ---------------------------------------------------------------------

    def _vacuum_soon(self, tables: Collection[str]) -> None:
        """VACUUM these tables in the background (after what is queued already): the dead
        row versions an erasure left, and their index entries, go. Never waited for."""
        if not tables or self._pool is None:
            return
        self._to_vacuum.update(tables)
        if self._vacuuming is None or self._vacuuming.done():
            self._vacuuming = asyncio.create_task(self._vacuum())

    async def _vacuum(self) -> None:
        """Run VACUUM until no table waits for one; a failure is logged (autovacuum will
        come by later)."""
        while self._to_vacuum and self._pool is not None:
            tables, self._to_vacuum = self._to_vacuum, set()
            try:
                async with self._pool.acquire() as conn:
                    await schema.vacuum(conn, tables)
                self.vacuums += 1
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning(
                    "storage: VACUUM after an erasure failed (%s); autovacuum will do it",
                    describe(error),
                )

    async def vacuums_done(self) -> None:
        """Wait until the VACUUMs asked for so far have run (tests)."""
        while self._vacuuming is not None and not self._vacuuming.done():
            await asyncio.gather(self._vacuuming, return_exceptions=True)

    # -- operations ----------------------------------------------------------------------

    async def ensure_campaign(self, slug: str) -> int:
        """Return the id of the campaign named slug, creating it when new."""
        return await self._run(lambda db: queries.ensure_campaign(db, slug))

    async def load_context(
        self, key: bytes, platform: str, chat_id: str | None
    ) -> tuple[Volunteer | None, Community | None]:
        """Read the volunteer and the community of one invocation in one go (with the
        other invocations' asked meanwhile)."""
        return await self._guard(self._contexts.read((key, platform, chat_id)))

    async def pledge(
        self, campaign_id: int, key: bytes, platform: str, chat_id: str | None, choice: str | None
    ) -> PledgeResult:
        """Record a pledge (idempotent); counters change in the same transaction."""
        return await self._count(queries.PledgeOp(campaign_id, key, platform, chat_id, choice))

    async def mark_done(self, campaign_id: int, key: bytes) -> bool | None:
        """Record that a volunteer froze their accounts (counted in the same transaction)."""
        return await self._count(lambda db: queries.mark_done(db, campaign_id, key))

    async def unpledge(self, campaign_id: int, key: bytes) -> bool:
        """Withdraw a pledge; False when there was none."""
        return await self._count(lambda db: queries.unpledge(db, campaign_id, key))

    async def get_pledge(self, campaign_id: int, key: bytes) -> Pledge | None:
        """The volunteer's pledge in the campaign, if any."""
        return await self._run(lambda db: queries.get_pledge(db, campaign_id, key))

    async def tally(self, campaign_id: int, platform: str, chat_id: str | None) -> Tally:
        """Counts for one community and overall, read from counters (never a scan)."""
        return await self._run(lambda db: queries.tally(db, campaign_id, platform, chat_id))

    async def set_language(self, key: bytes, language: str | None) -> None:
        """Store the volunteer's language (None: follow the platform)."""
        await self._run(lambda db: queries.set_language(db, key, language))

    async def set_timezone(self, key: bytes, timezone: str) -> None:
        """Store the volunteer's time zone."""
        await self._run(lambda db: queries.set_timezone(db, key, timezone))

    async def set_reminders(
        self, key: bytes, enabled: bool, dm_address: str | None, platform: str | None = None
    ) -> None:
        """Opt in (keeping the platform and address to write to) or out: the address leaves
        every table in one transaction, and a VACUUM clears the old row versions later."""
        if not enabled:
            # Opting out must not create a record of someone we never stored.
            if await self._call(lambda db: queries.opt_out(db, key)):
                self._vacuum_soon(("volunteers", "deliveries"))
            return
        await self._run(lambda db: queries.opt_in(db, key, dm_address, platform))

    async def set_community_language(self, platform: str, chat_id: str, language: str) -> None:
        """Store a community's language."""
        await self._run(
            lambda db: queries.set_community(db, platform, chat_id, "language", language)
        )

    async def set_community_subscribed(self, platform: str, chat_id: str, subscribed: bool) -> None:
        """Subscribe a community to announcements and reminders, or not."""
        await self._run(
            lambda db: queries.set_community(db, platform, chat_id, "subscribed", subscribed)
        )

    async def set_tally_posts(
        self, platform: str, chat_id: str, enabled: bool, hour: int | None = None
    ) -> None:
        """Turn a community's periodic tally post on (at `hour`) or off."""
        await self._run(lambda db: queries.set_tally_posts(db, platform, chat_id, enabled, hour))

    async def set_web_page(self, platform: str, chat_id: str, token: str | None) -> None:
        """Give a community its web page at `token` (None: take it down)."""
        await self._run(lambda db: queries.set_community(db, platform, chat_id, "web_page", token))

    async def web_page_tally(self, campaign_id: int, token: str) -> Tally | None:
        """The counts a community's web page shows (None: no page has this token)."""
        return await self._run(lambda db: queries.web_page_tally(db, campaign_id, token))

    async def set_board(self, platform: str, chat_id: str, board_ref: str | None) -> None:
        """Remember the platform reference of a community's board message."""
        await self._run(
            lambda db: queries.set_community(db, platform, chat_id, "board_ref", board_ref)
        )

    async def boards(self, platform: str) -> list[tuple[str, str]]:
        """(chat id, board reference) of every community of a platform that has a board."""
        return await self._run(lambda db: queries.boards(db, platform))

    async def move_community(self, platform: str, old_chat_id: str, new_chat_id: str) -> bool:
        """Give a community a new chat id (a migrated group), keeping its pledges and board."""
        # A first setting under the new id (a language, a board) may make its community
        # between our look and our move: then it is a merge, and the move is tried again.
        return await self._call(
            lambda db: queries.move_community(db, platform, old_chat_id, new_chat_id),
            retry_on=(asyncpg.UniqueViolationError,),
        )

    async def add_link_code(
        self, key: bytes, platform: str, code: bytes, expires_at: datetime
    ) -> bool:
        """Keep a one-time /link code for an account (False: the hash is taken)."""
        return await self._call(lambda db: links.add_code(db, key, platform, code, expires_at))

    async def redeem_link_code(
        self,
        campaign_id: int,
        key: bytes,
        platform: str,
        code: bytes,
        now: datetime,
        attempts: int,
        window: timedelta,
    ) -> LinkResult:
        """Join the account `key` to the one that made `code` (see Storage)."""
        return await self._call(
            lambda db: links.redeem(db, campaign_id, key, platform, code, now, attempts, window),
            retry_on=(asyncpg.DeadlockDetectedError,),
        )

    async def unlink(self, key: bytes) -> str | None:
        """Split a person's linked accounts again (see Storage)."""
        return await self._call(lambda db: links.unlink(db, key))

    async def forget(self, key: bytes) -> bool:
        """Delete everything about a volunteer in one transaction; False if none. The dead
        row versions stay in the table files until a VACUUM, started here in the background
        (PostgreSQL cannot promise more: see the package's docstring)."""
        touched = await self._call(lambda db: queries.forget(db, key))
        self._vacuum_soon(touched)
        return bool(touched)

    async def export(self, campaign_id: int, key: bytes) -> VolunteerData:
        """Everything stored about a volunteer."""
        return await self._run(lambda db: queries.export(db, campaign_id, key))

    # -- outbox -----------------------------------------------------------------------

    async def set_window(
        self, campaign_id: int, start: datetime, end: datetime, rungs: dict[str, datetime]
    ) -> None:
        """Store an organizer's window and the ladder that goes with it, in one transaction."""
        await self._call(lambda db: queries.set_window(db, campaign_id, start, end, rungs))

    async def window(self, campaign_id: int) -> tuple[datetime, datetime] | None:
        """The freeze window an organizer set, if any."""
        return await self._run(lambda db: queries.window(db, campaign_id))

    async def set_schedule(self, campaign_id: int, rungs: dict[str, datetime]) -> None:
        """Replace the campaign's reminder ladder (rung name -> moment, aware)."""
        await self._call(lambda db: queries.set_schedule(db, campaign_id, rungs))

    async def schedule(self, campaign_id: int) -> dict[str, datetime]:
        """The campaign's reminder ladder."""
        return await self._run(lambda db: queries.schedule(db, campaign_id))

    async def create_broadcast(
        self,
        campaign_id: int,
        key: str,
        kind: str,
        subject: str,
        default_language: str,
        volunteers: bool = True,
        tally_posts_only: bool = False,
        tally_hours: Collection[int] | None = None,
        platforms: Collection[str] | None = None,
        started: Callable[[], object] | None = None,
    ) -> Broadcast | None:
        """Create a broadcast: its communities in one transaction, then its volunteers a
        chunk per transaction; `started` is called once the first rows can be sent. A key
        made before (here or in another process) finishes what is left of it and is None."""
        only = sorted(platforms) if platforms is not None else None
        made, ended = await self._call(
            lambda db: queries.create_broadcast(
                db,
                campaign_id,
                key,
                kind,
                subject,
                default_language,
                volunteers,
                tally_posts_only,
                None if tally_hours is None else sorted(tally_hours),
                only,
            )
        )
        if made is None:
            await self.finish_expansions()
            return None
        if ended:
            self._vacuum_soon(("volunteers", "deliveries"))
        if volunteers:
            recipients = await self._expansions.start(made.id, started)
            made = replace(made, recipients=recipients)
        elif started is not None:
            started()
        return made

    async def _expand_step(self, broadcast_id: int) -> tuple[int, bool]:
        """One chunk of a broadcast's volunteers, in its own transaction: (its recipients so
        far, whether every volunteer has been looked at)."""
        recipients, finished, ended = await self._call(
            lambda db: queries.expand_step(db, broadcast_id, EXPAND_CHUNK)
        )
        if ended:
            self._vacuum_soon(("volunteers", "deliveries"))
        return recipients, finished

    async def expansions_done(self) -> None:
        """Wait until the broadcasts this process is expanding have all their recipients."""
        await self._expansions.done()

    async def finish_expansions(self) -> int:
        """Finish adding the volunteers of broadcasts a stop interrupted; how many. One this
        process is adding in the background is left to it; one another process is adding
        is shared with it, chunk by chunk (each chunk under the broadcast's row lock)."""
        return await self._expansions.finish(await self._run(queries.unfinished_expansions))

    async def save_announcement(self, campaign_id: int, texts: dict[str, str], source: str) -> int:
        """Keep an organizer's announcement (texts per language) until it is sent; its id."""
        return await self._run(lambda db: queries.save_announcement(db, campaign_id, texts, source))

    async def announcement(self, announcement_id: int) -> tuple[dict[str, str], str] | None:
        """An announcement's texts per language and its fallback language."""
        return await self._run(lambda db: queries.announcement(db, announcement_id))

    async def recipient_counts(self) -> dict[str, int]:
        """How many recipients a broadcast would have now, per platform."""
        return await self._run(queries.recipient_counts)

    async def claim_deliveries(self, platform: str, limit: int) -> list[Delivery]:
        """Mark up to `limit` pending deliveries of a platform in flight and return them
        (rows another process is claiming are skipped, never claimed twice)."""
        return await self._run(lambda db: queries.claim_deliveries(db, platform, limit))

    async def finish_deliveries(self, finished: list[Finished]) -> None:
        """Record how deliveries ended: sent, failed, unreachable, or pending (retry); the
        campaign's end for private addresses when this ends its last reminder."""
        if finished and await self._call(lambda db: queries.finish_deliveries(db, finished)):
            self._vacuum_soon(("volunteers", "deliveries"))

    async def next_due(self, platform: str) -> datetime | None:
        """When the platform's earliest waiting delivery comes due (None: nothing waits)."""
        return await self._run(lambda db: queries.next_due(db, platform))

    async def mark_sending(self, delivery_id: int) -> None:
        """A claimed delivery's request is about to go out."""
        await self._run(lambda db: queries.mark_sending(db, delivery_id))

    async def recover_inflight(
        self, platform: str, resend_within: timedelta | None
    ) -> dict[str, int]:
        """After a crash, settle the platform's rows left in flight: those never sent go back
        to pending; those sent within `resend_within` too; the rest become unknown."""
        settled, ended = await self._call(
            lambda db: queries.recover_inflight(db, platform, resend_within)
        )
        if ended:
            self._vacuum_soon(("volunteers", "deliveries"))
        return settled

    async def set_progress(self, broadcast_id: int, where: str | None) -> None:
        """Remember where a broadcast's progress message is (None: its report is shown)."""
        await self._run(lambda db: queries.set_progress(db, broadcast_id, where))

    async def open_progress(self, platform: str) -> list[tuple[int, str]]:
        """The broadcasts whose progress message on `platform` awaits its final report."""
        return await self._run(lambda db: queries.open_progress(db, platform))

    async def delivery_counts(self, broadcast_id: int) -> dict[str, int]:
        """How many deliveries of a broadcast are in each state."""
        return await self._run(lambda db: queries.delivery_counts(db, broadcast_id))

    async def broadcasts_made(self, keys: list[str]) -> set[str]:
        """Which of these idempotency keys already have their broadcast (a rung sent)."""
        if not keys:
            return set()
        return await self._run(lambda db: queries.broadcasts_made(db, keys))
