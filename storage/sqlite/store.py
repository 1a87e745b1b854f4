"""SQLiteStorage: the Storage contract on one SQLite file, each operation a function of
queries.py handed to the group-commit writer, and the WAL cut after every erasure.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from storage.base import (
    Broadcast,
    Community,
    Delivery,
    Finished,
    LinkResult,
    NotWiped,
    Pledge,
    PledgeResult,
    Storage,
    StorageError,
    Tally,
    Volunteer,
    VolunteerData,
)
from storage.batching import GroupCommit
from storage.expansion import Expansions
from storage.sqlite import links, queries, schema
from storage.sqlite.transactions import Op, as_storage_error, run_batch, run_each, run_reads

log = logging.getLogger(__name__)

T = TypeVar("T")
# Volunteers looked at per transaction when a broadcast is expanded: a chunk holds the writer
# for a few milliseconds, so a press waits at most that long behind a million recipients.
EXPAND_CHUNK = 1000
# (How the chunks are paced, in the background: storage/expansion.py.)


async def _nothing_to_cut() -> bool:
    """Reads never ask for a WAL cut."""
    return True


class SQLiteStorage(Storage):
    """The default backend: one SQLite file in the data directory."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._conn: aiosqlite.Connection | None = None
        # Reads have their own connection (and thread): under WAL they see the last commit
        # and never wait for the writer, however long its batch.
        self._reader: aiosqlite.Connection | None = None
        # Point reads (one volunteer, one community, the counters) run right here on the
        # event loop: a few dozen microseconds, less than a hop to any thread. Under WAL
        # they never wait for the writer; if SQLite ever says busy, they take the reader's
        # thread instead of waiting here.
        self._inline: sqlite3.Connection | None = None
        self._reads = GroupCommit[sqlite3.Connection](
            run_batch=self._on_reader,
            run_each=self._on_reader,
            classify=as_storage_error,
            after_commit=_nothing_to_cut,
        )
        self._writer = GroupCommit[sqlite3.Connection](
            run_batch=self._in_one_transaction,
            run_each=self._each_alone,
            classify=as_storage_error,
            after_commit=self._cut_wal,
        )
        self.wal_truncates = 0  # how many times the WAL was cut (tests, benchmarks)
        # Broadcasts whose volunteers are being added after the first chunk.
        self._expansions = Expansions(lambda b: self._expand_step(b), lambda: EXPAND_CHUNK)
        self._wipe_owed = False  # a cut failed: the next erasure's cut, close or open does it

    # -- lifecycle -----------------------------------------------------------------

    async def open(self) -> None:
        """Open the file, set pragmas, apply migrations, then cut the WAL: a process killed
        between an erasure's commit and its cut left copies there, and this finishes it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = await aiosqlite.connect(self.path, isolation_level=None)
        self._writer.open()
        await schema.configure(self._conn)
        await schema.migrate(self._conn)
        self._reader = await aiosqlite.connect(self.path, isolation_level=None)
        await schema.configure_reader(self._reader)
        self._reads.open()
        self._inline = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        schema.configure_inline(self._inline)
        if not await self._cut_wal():
            log.warning("storage: the WAL could not be cut at start-up; will try again")

    async def close(self) -> None:
        """Wait for queued operations, cut the WAL and close; never raises, even when the
        disk is full or the file read-only (what cannot be cut now is cut at the next open)."""
        if self._conn is None:
            return
        await self._expansions.close()  # the next start finishes them (finish_expansions)
        await self._writer.close()
        await self._reads.close()
        inline, self._inline = self._inline, None
        if inline is not None:
            with contextlib.suppress(Exception):
                inline.close()
        reader, self._reader = self._reader, None
        if reader is not None:
            with contextlib.suppress(Exception):  # it only read: nothing of it is lost
                await reader.close()
        if not await self._cut_wal():
            log.warning("storage: the WAL could not be cut at shutdown; the next start will")
        conn, self._conn = self._conn, None
        try:
            await conn.close()
        except Exception as error:  # a failing disk: the process ends anyway
            log.warning("storage: closing the database failed: %s", as_storage_error(error))

    # -- the writer ------------------------------------------------------------------

    def _open_writer(self) -> GroupCommit[sqlite3.Connection]:
        """The writer, once the file is open (StorageError before, and after close)."""
        if self._conn is None:
            raise StorageError("storage failing: the storage is closed")
        return self._writer

    async def _call(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run op in the next write transaction and return its result."""
        result: T = await self._open_writer().submit(op)
        return result

    async def _read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read on the reader connection, with the reads queued meanwhile (one thread
        hop for all of them); before open sets it up, through the writer."""
        if self._reader is None:
            return await self._call(op)
        result: T = await self._reads.submit(op)
        return result

    async def _peek(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """A point read (an index lookup or two) on the event loop; the reader's thread if
        SQLite is busy, or before open."""
        inline = self._inline
        if inline is None:
            return await self._read(op)
        try:
            return op(inline)
        except sqlite3.Error as error:
            if (error.sqlite_errorcode or 0) & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return await self._read(op)  # busy is an answer here: read on the thread
            wrapped = as_storage_error(error)
            if wrapped is error:
                raise
            raise wrapped from error

    async def _on_reader(self, ops: list[Op]) -> list[Any]:
        """A batch of reads on the reader's thread, each outcome its own."""
        reader = self._reader
        if reader is None:
            raise StorageError("storage failing: the storage is closed")
        outcomes: list[Any] = await reader._execute(run_reads, reader._conn, ops)
        return outcomes

    async def _on_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run fn(the sqlite3 connection, *args) on aiosqlite's thread: the one place we
        hand it a function (its private Connection._execute)."""
        assert self._conn is not None
        return await self._conn._execute(fn, self._conn._conn, *args)

    async def _in_one_transaction(self, ops: list[Op]) -> list[Any]:
        """A batch in one transaction, one savepoint per operation."""
        outcomes: list[Any] = await self._on_thread(run_batch, ops)
        return outcomes

    async def _each_alone(self, ops: list[Op]) -> list[Any]:
        """A batch whose COMMIT failed: each operation in its own transaction."""
        outcomes: list[Any] = await self._on_thread(run_each, ops)
        return outcomes

    async def _wipe(self) -> None:
        """Cut the WAL once everything queued so far is committed (NotWiped if it cannot)."""
        if not await self._open_writer().checkpoint():
            raise NotWiped("the WAL could not be cut yet")

    async def _wipe_quietly(self, what: str) -> None:
        """Cut the WAL for an erasure nobody waits on; a failure is logged and owed."""
        try:
            await self._wipe()
        except (NotWiped, StorageError):
            log.warning("storage: %s is saved, its old copies are not cut yet", what)

    async def _wipe_after(self, erased: bool) -> None:
        """Cut the WAL after an erasure (or when a cut is owed). secure_delete zeroed the
        freed cells; the cut drops the old page images, shared with every erasure of the
        same batch. NotWiped only for whoever had something erased."""
        if not (erased or self._wipe_owed):
            return
        try:
            await self._wipe()
        except NotWiped:
            if erased:  # nothing of theirs was here: nothing to tell them
                raise

    async def _cut_wal(self) -> bool:
        """Checkpoint the WAL into the main file and cut it to zero bytes, outside any
        transaction; False (and owed) if it could not be done now."""
        if self._conn is None:
            return False
        try:
            cut = bool(await self._on_thread(schema.truncate_wal))
        except Exception as error:
            log.warning("storage: cutting the WAL failed: %s", as_storage_error(error))
            cut = False
        self._wipe_owed = not cut
        if cut:
            self.wal_truncates += 1
        return cut

    # -- operations ----------------------------------------------------------------------

    async def ensure_campaign(self, slug: str) -> int:
        """Return the id of the campaign named slug, creating it when new."""
        return await self._call(lambda db: queries.ensure_campaign(db, slug))

    async def load_context(
        self, key: bytes, platform: str, chat_id: str | None
    ) -> tuple[Volunteer | None, Community | None]:
        """Read the volunteer and the community of one invocation in one go."""
        return await self._peek(lambda db: queries.load_context(db, key, platform, chat_id))

    async def pledge(
        self, campaign_id: int, key: bytes, platform: str, chat_id: str | None, choice: str | None
    ) -> PledgeResult:
        """Record a pledge (idempotent); counters change in the same transaction."""
        return await self._call(
            lambda db: queries.pledge(db, campaign_id, key, platform, chat_id, choice)
        )

    async def mark_done(self, campaign_id: int, key: bytes) -> bool | None:
        """Record that a volunteer froze their accounts (counted in the same transaction)."""
        return await self._call(lambda db: queries.mark_done(db, campaign_id, key))

    async def unpledge(self, campaign_id: int, key: bytes) -> bool:
        """Withdraw a pledge; False when there was none."""
        return await self._call(lambda db: queries.unpledge(db, campaign_id, key))

    async def get_pledge(self, campaign_id: int, key: bytes) -> Pledge | None:
        """The volunteer's pledge in the campaign, if any."""
        return await self._peek(lambda db: queries.get_pledge(db, campaign_id, key))

    async def tally(self, campaign_id: int, platform: str, chat_id: str | None) -> Tally:
        """Counts for one community and overall, read from counters (never a scan)."""
        return await self._peek(lambda db: queries.tally(db, campaign_id, platform, chat_id))

    async def set_language(self, key: bytes, language: str | None) -> None:
        """Store the volunteer's language (None: follow the platform)."""
        await self._call(lambda db: queries.set_language(db, key, language))

    async def set_timezone(self, key: bytes, timezone: str) -> None:
        """Store the volunteer's time zone."""
        await self._call(lambda db: queries.set_timezone(db, key, timezone))

    async def set_reminders(
        self, key: bytes, enabled: bool, dm_address: str | None, platform: str | None = None
    ) -> None:
        """Opt in (keeping the platform and address to write to) or out (dropping them)."""
        if not enabled:
            # Opting out must not create a record of someone we never stored; the address
            # leaves every table, then the files (NotWiped if it cannot be cut yet).
            dropped = bool(await self._call(lambda db: queries.opt_out(db, key)))
            await self._wipe_after(dropped)
            return
        await self._call(lambda db: queries.opt_in(db, key, dm_address, platform))

    async def set_community_language(self, platform: str, chat_id: str, language: str) -> None:
        """Store a community's language."""
        await self._call(lambda db: queries.set_community_language(db, platform, chat_id, language))

    async def set_community_subscribed(self, platform: str, chat_id: str, subscribed: bool) -> None:
        """Subscribe a community to announcements and reminders, or not."""
        await self._call(
            lambda db: queries.set_community_subscribed(db, platform, chat_id, subscribed)
        )

    async def set_tally_posts(
        self, platform: str, chat_id: str, enabled: bool, hour: int | None = None
    ) -> None:
        """Turn a community's periodic tally post on (at `hour`) or off."""
        await self._call(lambda db: queries.set_tally_posts(db, platform, chat_id, enabled, hour))

    async def set_web_page(self, platform: str, chat_id: str, token: str | None) -> None:
        """Give a community its web page at `token` (None: take it down)."""
        await self._call(lambda db: queries.set_web_page(db, platform, chat_id, token))

    async def web_page_tally(self, campaign_id: int, token: str) -> Tally | None:
        """The counts a community's web page shows (None: no page has this token)."""
        return await self._peek(lambda db: queries.web_page_tally(db, campaign_id, token))

    async def set_board(self, platform: str, chat_id: str, board_ref: str | None) -> None:
        """Remember the platform reference of a community's board message."""
        await self._call(lambda db: queries.set_board(db, platform, chat_id, board_ref))

    async def boards(self, platform: str) -> list[tuple[str, str]]:
        """(chat id, board reference) of every community of a platform that has a board."""
        return await self._read(lambda db: queries.boards(db, platform))

    async def move_community(self, platform: str, old_chat_id: str, new_chat_id: str) -> bool:
        """Give a community a new chat id (a migrated group), keeping its pledges and board."""
        return await self._call(
            lambda db: queries.move_community(db, platform, old_chat_id, new_chat_id)
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
            lambda db: links.redeem(db, campaign_id, key, platform, code, now, attempts, window)
        )

    async def unlink(self, key: bytes) -> str | None:
        """Split a person's linked accounts again (see Storage)."""
        return await self._call(lambda db: links.unlink(db, key))

    async def forget(self, key: bytes) -> bool:
        """Delete everything about a volunteer, leaving no copy in the files; False if none."""
        existed = bool(await self._call(lambda db: queries.forget(db, key)))
        await self._wipe_after(existed)
        return existed

    async def export(self, campaign_id: int, key: bytes) -> VolunteerData:
        """Everything stored about a volunteer."""
        return await self._peek(lambda db: queries.export(db, campaign_id, key))

    # -- outbox -----------------------------------------------------------------------

    async def set_window(
        self, campaign_id: int, start: datetime, end: datetime, rungs: dict[str, datetime]
    ) -> None:
        """Store an organizer's window and the ladder that goes with it, in one transaction."""
        await self._call(lambda db: queries.set_window(db, campaign_id, start, end, rungs))

    async def window(self, campaign_id: int) -> tuple[datetime, datetime] | None:
        """The freeze window an organizer set, if any."""
        return await self._peek(lambda db: queries.window(db, campaign_id))

    async def set_schedule(self, campaign_id: int, rungs: dict[str, datetime]) -> None:
        """Replace the campaign's reminder ladder (rung name -> moment, aware)."""
        await self._call(lambda db: queries.set_schedule(db, campaign_id, rungs))

    async def schedule(self, campaign_id: int) -> dict[str, datetime]:
        """The campaign's reminder ladder."""
        return await self._read(lambda db: queries.schedule(db, campaign_id))

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
        chunk per transaction (presses are written between chunks); `started` is called
        once the first rows can be sent. A key made before finishes what a restart left."""
        only = json.dumps(sorted(platforms)) if platforms is not None else None
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
            await self._wipe_quietly("the campaign's end")
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
            await self._wipe_quietly("the campaign's end")
        return recipients, finished

    async def expansions_done(self) -> None:
        """Wait until the broadcasts this process is expanding have all their recipients."""
        await self._expansions.done()

    async def finish_expansions(self) -> int:
        """Finish adding the volunteers of broadcasts a stop interrupted; how many. (One
        this process is adding in the background is left to it.)"""
        return await self._expansions.finish(await self._call(queries.unfinished_expansions))

    async def save_announcement(self, campaign_id: int, texts: dict[str, str], source: str) -> int:
        """Keep an organizer's announcement (texts per language) until it is sent; its id."""
        return await self._call(
            lambda db: queries.save_announcement(db, campaign_id, texts, source)
        )

    async def announcement(self, announcement_id: int) -> tuple[dict[str, str], str] | None:
        """An announcement's texts per language and its fallback language."""
        return await self._peek(lambda db: queries.announcement(db, announcement_id))

    async def recipient_counts(self) -> dict[str, int]:
        """How many recipients a broadcast would have now, per platform."""
        return await self._read(queries.recipient_counts)

    async def claim_deliveries(self, platform: str, limit: int) -> list[Delivery]:
        """Mark up to `limit` pending deliveries of a platform in flight and return them."""
        return await self._call(lambda db: queries.claim_deliveries(db, platform, limit))

    async def finish_deliveries(self, finished: list[Finished]) -> None:
        """Record how deliveries ended: sent, failed, unreachable, or pending (retry); the
        campaign's end for private addresses when this ends its last reminder."""
        if finished and await self._call(lambda db: queries.finish_deliveries(db, finished)):
            await self._wipe_quietly("the campaign's end")

    async def next_due(self, platform: str) -> datetime | None:
        """When the platform's earliest waiting delivery comes due (None: nothing waits)."""
        return await self._read(lambda db: queries.next_due(db, platform))

    async def mark_sending(self, delivery_id: int) -> None:
        """A claimed delivery's request is about to go out."""
        await self._call(lambda db: queries.mark_sending(db, delivery_id))

    async def recover_inflight(
        self, platform: str, resend_within: timedelta | None
    ) -> dict[str, int]:
        """After a crash, settle the platform's rows left in flight: those never sent go back
        to pending; those sent within `resend_within` too; the rest become unknown."""
        settled, ended = await self._call(
            lambda db: queries.recover_inflight(db, platform, resend_within)
        )
        if ended:
            await self._wipe_quietly("the campaign's end")
        return settled

    async def set_progress(self, broadcast_id: int, where: str | None) -> None:
        """Remember where a broadcast's progress message is (None: its report is shown)."""
        await self._call(lambda db: queries.set_progress(db, broadcast_id, where))

    async def open_progress(self, platform: str) -> list[tuple[int, str]]:
        """The broadcasts whose progress message on `platform` awaits its final report."""
        return await self._read(lambda db: queries.open_progress(db, platform))

    async def delivery_counts(self, broadcast_id: int) -> dict[str, int]:
        """How many deliveries of a broadcast are in each state."""
        return await self._read(lambda db: queries.delivery_counts(db, broadcast_id))

    async def broadcasts_made(self, keys: list[str]) -> set[str]:
        """Which of these idempotency keys already have their broadcast (a rung sent)."""
        if not keys:
            return set()
        return await self._peek(lambda db: queries.broadcasts_made(db, keys))
