"""SQLite storage on aiosqlite: WAL, explicit write transactions, group commit.

Every operation is a plain function over the sqlite3 connection, run on aiosqlite's worker
thread. Operations that arrive while a batch runs are committed together in the next one
(each inside its own SAVEPOINT, so one failing operation rolls back alone): under load a
thousand pledges cost one thread hop and one commit instead of a thousand. If the COMMIT
itself fails, each operation of the batch is tried again alone, so none is reported saved
unless it is, and one that cannot be saved does not take the others down.

Erasing (/forget, opting out, the campaign's end) leaves no copy in the files: secure_delete
zeroes freed cells, then the WAL is checkpointed into the main file and cut to zero bytes.
Erasures queued in the same batch share one cut. A cut that fails (a reader holds the WAL,
the disk fails) is owed: done at the next erasure, at close, and at every open, which also
finishes one a kill interrupted.

A storage failure (disk full, read-only file, I/O error) reaches callers as StorageError.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable, Collection, Iterable
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from storage.base import (
    Broadcast,
    Community,
    Delivery,
    Finished,
    NotWiped,
    Pledge,
    PledgeResult,
    PledgeStatus,
    Storage,
    StorageError,
    Tally,
    Volunteer,
    VolunteerData,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]

BUSY_TIMEOUT_MS = 5000  # how long a write waits for another process's lock
# How long cutting the WAL waits for a reader (a backup, say) to let go: not the writers'
# five seconds, since the whole queue waits behind it; if the reader stays, the cut is owed.
WIPE_BUSY_TIMEOUT_MS = 200

# Primary result codes that mean the storage itself is failing, not the operation.
_FAILING = frozenset(
    {
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_NOLFS,
    }
)


def _truncate_wal_marker(db: sqlite3.Connection) -> None:
    """Queue marker: cut the WAL once everything queued before it is committed."""


_TRUNCATE_WAL: Op = _truncate_wal_marker


def failing(error: BaseException) -> bool:
    """Whether an error means the storage is failing (full, read-only, I/O, closed)."""
    if isinstance(error, sqlite3.Error) and error.sqlite_errorcode is not None:
        return error.sqlite_errorcode & 0xFF in _FAILING
    if isinstance(error, sqlite3.ProgrammingError | ValueError):
        return "closed" in str(error).lower()
    return False


def as_storage_error(error: BaseException) -> BaseException:
    """A StorageError for a failing storage (chained to the cause); other errors unchanged."""
    if isinstance(error, StorageError) or not failing(error):
        return error
    code = getattr(error, "sqlite_errorname", None) or type(error).__name__
    wrapped = StorageError(f"storage failing: {code}: {error}")
    wrapped.__cause__ = error
    return wrapped


class _BeginFailed(Exception):
    """No transaction could be started: no operation of the batch ran."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _moment(at: datetime) -> str:
    """A moment to compare with others in SQL: UTC, to the millisecond."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


def _migrations() -> list[tuple[int, str]]:
    """The numbered SQL migrations shipped in storage/migrations, in order."""
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


class SQLiteStorage(Storage):
    """The default backend: one SQLite file in the data directory."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._conn: aiosqlite.Connection | None = None
        self._closing = False
        self._pending: list[tuple[Op, asyncio.Future[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self.wal_truncates = 0  # how many times the WAL was cut (tests, benchmarks)
        self._wipe_owed = False  # a cut failed: the next erasure's cut, close or open does it

    # -- lifecycle -----------------------------------------------------------------

    async def open(self) -> None:
        """Open the file, set pragmas, apply migrations, then cut the WAL: a process killed
        between an erasure's commit and its cut left copies there, and this finishes it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = await aiosqlite.connect(self.path, isolation_level=None)
        self._closing = False
        await self._conn.executescript(
            f"""
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = NORMAL;
            PRAGMA foreign_keys = ON;
            PRAGMA secure_delete = ON;
            PRAGMA busy_timeout = {BUSY_TIMEOUT_MS};
            """
        )
        await self._migrate()
        if not await self._cut_wal():
            log.warning("storage: the WAL could not be cut at start-up; will try again")

    async def close(self) -> None:
        """Wait for queued operations, cut the WAL and close; never raises, even when the
        disk is full or the file read-only (what cannot be cut now is cut at the next open)."""
        if self._conn is None:
            return
        self._closing = True
        while self._drainer is not None and not self._drainer.done():
            with contextlib.suppress(Exception):
                await self._drainer
        if not await self._cut_wal():
            log.warning("storage: the WAL could not be cut at shutdown; the next start will")
        conn, self._conn = self._conn, None
        try:
            await conn.close()
        except Exception as error:  # a failing disk: the process ends anyway
            log.warning("storage: closing the database failed: %s", as_storage_error(error))

    async def _migrate(self) -> int:
        """Apply every migration newer than the stored schema version, each atomically."""
        assert self._conn is not None
        await self._conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
            "applied_at TEXT NOT NULL)"
        )
        async with self._conn.execute(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version"
        ) as cursor:
            row = await cursor.fetchone()
        current = int(row[0]) if row else 0
        for version, script in _migrations():
            if version <= current:
                continue
            await self._conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\n;"
                f"INSERT INTO schema_version VALUES ({version}, '{_now()}');\nCOMMIT;"
            )
            log.info("applied storage migration %04d", version)
            current = version
        return current

    # -- group commit ----------------------------------------------------------------

    def _enqueue(self, op: Op) -> asyncio.Future[Any]:
        """Queue op for the next batch; its future holds the outcome."""
        if self._conn is None or self._closing:
            raise StorageError("storage failing: the storage is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((op, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return future

    async def _call(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run op in the next write transaction and return its result."""
        result: T = await self._enqueue(op)
        return result

    async def _wipe(self) -> None:
        """Cut the WAL once everything queued so far is committed (NotWiped if it cannot)."""
        await self._enqueue(_TRUNCATE_WAL)

    async def _wipe_quietly(self, what: str) -> None:
        """Cut the WAL for an erasure nobody waits on; a failure is logged and owed."""
        try:
            await self._wipe()
        except (NotWiped, StorageError):
            log.warning("storage: %s is saved, its old copies are not cut yet", what)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            ops = [job for job in batch if job[0] is not _TRUNCATE_WAL]
            wipes = [future for op, future in batch if op is _TRUNCATE_WAL]
            await self._commit(ops)
            if wipes:  # every erasure of the batch shares one cut, after its commit
                cut = await self._cut_wal()
                for future in wipes:
                    if future.done():
                        continue
                    if cut:
                        future.set_result(None)
                    else:
                        future.set_exception(NotWiped("the WAL could not be cut yet"))

    async def _commit(self, batch: list[tuple[Op, asyncio.Future[Any]]]) -> None:
        """Run a batch of operations in one transaction and hand each caller its outcome."""
        if not batch:
            return
        assert self._conn is not None
        ops = [op for op, _ in batch]
        outcomes: list[Any]
        try:
            # aiosqlite's worker-thread call: the one place we hand it a function.
            outcomes = await self._conn._execute(self._run_batch, self._conn._conn, ops)
        except _BeginFailed as failed:  # nothing ran: no use trying each alone
            outcomes = [failed.error] * len(batch)
        except Exception as error:
            if len(batch) == 1:
                outcomes = [error]
            else:  # the COMMIT (or the batch's own bookkeeping) failed: each alone
                log.warning(
                    "storage: a batch of %d failed (%s); trying each alone",
                    len(batch),
                    as_storage_error(error),
                )
                try:
                    outcomes = await self._conn._execute(self._run_each, self._conn._conn, ops)
                except Exception as again:  # the connection itself is gone
                    outcomes = [again] * len(batch)
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(as_storage_error(outcome))
            else:
                future.set_result(outcome)

    async def _cut_wal(self) -> bool:
        """Checkpoint the WAL into the main file and cut it to zero bytes, outside any
        transaction; False (and owed) if it could not be done now."""
        if self._conn is None:
            return False
        try:
            cut = bool(await self._conn._execute(self._truncate, self._conn._conn))
        except Exception as error:
            log.warning("storage: cutting the WAL failed: %s", as_storage_error(error))
            cut = False
        self._wipe_owed = not cut
        if cut:
            self.wal_truncates += 1
        return cut

    @staticmethod
    def _truncate(db: sqlite3.Connection) -> bool:
        """Runs on the database thread: wal_checkpoint(TRUNCATE), waiting a little for
        readers; True if the WAL is now empty."""
        db.execute(f"PRAGMA busy_timeout = {WIPE_BUSY_TIMEOUT_MS}")
        try:
            busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        finally:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return not busy

    @staticmethod
    def _run_batch(db: sqlite3.Connection, ops: list[Op]) -> list[Any]:
        """Runs on the database thread: one transaction, one savepoint per operation."""
        if db.in_transaction:  # left open by a ROLLBACK that failed: nothing in it was saved
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise _BeginFailed(error) from error
        results: list[Any] = []
        try:
            for op in ops:
                db.execute("SAVEPOINT op")
                try:
                    results.append(op(db))
                except Exception as error:
                    try:
                        db.execute("ROLLBACK TO op")
                    except sqlite3.Error:
                        # SQLite rolled the whole transaction back (a full disk can): the
                        # batch is lost, and each operation is tried alone.
                        raise error from None
                    results.append(error)
                db.execute("RELEASE op")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise
        return results

    @classmethod
    def _run_each(cls, db: sqlite3.Connection, ops: list[Op]) -> list[Any]:
        """Runs on the database thread: each operation in its own transaction."""
        results: list[Any] = []
        for op in ops:
            try:
                results.extend(cls._run_batch(db, [op]))
            except _BeginFailed as failed:
                results.append(failed.error)
            except Exception as error:
                results.append(error)
        return results

    # -- operations ----------------------------------------------------------------------

    async def ensure_campaign(self, slug: str) -> int:
        """Return the id of the campaign named slug, creating it when new."""

        def op(db: sqlite3.Connection) -> int:
            db.execute(
                "INSERT INTO campaigns (slug, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (slug, _now()),
            )
            return int(db.execute("SELECT id FROM campaigns WHERE slug = ?", (slug,)).fetchone()[0])

        return await self._call(op)

    async def load_context(
        self, key: bytes, platform: str, chat_id: str | None
    ) -> tuple[Volunteer | None, Community | None]:
        """Read the volunteer and the community of one invocation in one go."""

        def op(db: sqlite3.Connection) -> tuple[Volunteer | None, Community | None]:
            return _volunteer(db, key), (
                _community(db, platform, chat_id) if chat_id is not None else None
            )

        return await self._call(op)

    async def pledge(
        self, campaign_id: int, key: bytes, platform: str, chat_id: str | None, choice: str | None
    ) -> PledgeResult:
        """Record a pledge (idempotent); counters change in the same transaction."""

        def op(db: sqlite3.Connection) -> PledgeResult:
            now = _now()
            _ensure_volunteer(db, key, now)
            row = db.execute(
                "SELECT choice, number FROM pledges WHERE campaign_id = ? AND volunteer = ?",
                (campaign_id, key),
            ).fetchone()
            if row is None:
                number, total = db.execute(
                    "UPDATE campaigns SET pledged = pledged + 1, next_number = next_number + 1 "
                    "WHERE id = ? RETURNING next_number - 1, pledged",
                    (campaign_id,),
                ).fetchone()
                chosen = choice or "both"
                db.execute(
                    "INSERT INTO pledges (campaign_id, volunteer, choice, number, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (campaign_id, key, chosen, number, now),
                )
                result = PledgeResult(PledgeStatus.NEW, number, chosen, total)
            elif choice is not None and row[0] != choice:
                db.execute(
                    "UPDATE pledges SET choice = ? WHERE campaign_id = ? AND volunteer = ?",
                    (choice, campaign_id, key),
                )
                result = PledgeResult(PledgeStatus.UPDATED, row[1], choice)
            else:
                result = PledgeResult(PledgeStatus.ALREADY, row[1], row[0])
            if chat_id is not None:
                community_id = _ensure_community(db, platform, chat_id, now)
                linked = db.execute(
                    "INSERT INTO pledge_communities VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    (campaign_id, key, community_id),
                ).rowcount
                if linked:
                    db.execute(
                        "INSERT INTO community_tallies (campaign_id, community_id, pledged) "
                        "VALUES (?, ?, 1) ON CONFLICT DO UPDATE SET pledged = pledged + 1",
                        (campaign_id, community_id),
                    )
            return result

        return await self._call(op)

    async def mark_done(self, campaign_id: int, key: bytes) -> bool | None:
        """Record that a volunteer froze their accounts (counted in the same transaction)."""

        def op(db: sqlite3.Connection) -> bool | None:
            rows = db.execute(
                "SELECT done_at FROM pledges WHERE campaign_id = ? AND volunteer = ?",
                (campaign_id, key),
            ).fetchall()
            if not rows:
                return None
            if rows[0][0] is not None:
                return False
            db.execute(
                "UPDATE pledges SET done_at = ? WHERE campaign_id = ? AND volunteer = ?",
                (_now(), campaign_id, key),
            )
            db.execute("UPDATE campaigns SET done = done + 1 WHERE id = ?", (campaign_id,))
            return True

        return await self._call(op)

    async def unpledge(self, campaign_id: int, key: bytes) -> bool:
        """Withdraw a pledge; False when there was none."""

        def op(db: sqlite3.Connection) -> bool:
            return _withdraw(db, campaign_id, key)

        return await self._call(op)

    async def get_pledge(self, campaign_id: int, key: bytes) -> Pledge | None:
        """The volunteer's pledge in the campaign, if any."""
        return await self._call(lambda db: _pledge(db, campaign_id, key))

    async def tally(self, campaign_id: int, platform: str, chat_id: str | None) -> Tally:
        """Counts for one community and overall, read from counters (never a scan)."""

        def op(db: sqlite3.Connection) -> Tally:
            total = db.execute(
                "SELECT pledged, done FROM campaigns WHERE id = ?", (campaign_id,)
            ).fetchone()
            here: int | None = None
            if chat_id is not None:
                row = db.execute(
                    "SELECT t.pledged FROM communities c JOIN community_tallies t "
                    "ON t.community_id = c.id AND t.campaign_id = ? "
                    "WHERE c.platform = ? AND c.chat_id = ?",
                    (campaign_id, platform, chat_id),
                ).fetchone()
                here = int(row[0]) if row else 0
            return Tally(
                community=here,
                total=int(total[0]) if total else 0,
                done=int(total[1]) if total else 0,
            )

        return await self._call(op)

    async def set_language(self, key: bytes, language: str | None) -> None:
        """Store the volunteer's language (None: follow the platform)."""

        def op(db: sqlite3.Connection) -> None:
            _ensure_volunteer(db, key, _now())
            db.execute("UPDATE volunteers SET language = ? WHERE key = ?", (language, key))

        await self._call(op)

    async def set_timezone(self, key: bytes, timezone: str) -> None:
        """Store the volunteer's time zone."""

        def op(db: sqlite3.Connection) -> None:
            _ensure_volunteer(db, key, _now())
            db.execute("UPDATE volunteers SET timezone = ? WHERE key = ?", (timezone, key))

        await self._call(op)

    async def set_reminders(
        self, key: bytes, enabled: bool, dm_address: str | None, platform: str | None = None
    ) -> None:
        """Opt in (keeping the platform and address to write to) or out (dropping them)."""
        if not enabled:
            # Opting out must not create a record of someone we never stored; the address
            # leaves every table, then the files (NotWiped if it cannot be cut yet).
            dropped = bool(await self._call(lambda db: _drop_address(db, key)))
            await self._wipe_after(dropped)
            return

        def op(db: sqlite3.Connection) -> None:
            _ensure_volunteer(db, key, _now())
            db.execute(
                "UPDATE volunteers SET reminders = 1, dm_address = ?, dm_platform = ? "
                "WHERE key = ?",
                (dm_address, platform, key),
            )

        await self._call(op)

    async def set_community_language(self, platform: str, chat_id: str, language: str) -> None:
        """Store a community's language."""

        def op(db: sqlite3.Connection) -> None:
            community_id = _ensure_community(db, platform, chat_id, _now())
            db.execute("UPDATE communities SET language = ? WHERE id = ?", (language, community_id))

        await self._call(op)

    async def set_community_subscribed(self, platform: str, chat_id: str, subscribed: bool) -> None:
        """Subscribe a community to announcements and reminders, or not."""

        def op(db: sqlite3.Connection) -> None:
            community_id = _ensure_community(db, platform, chat_id, _now())
            db.execute(
                "UPDATE communities SET subscribed = ? WHERE id = ?",
                (int(subscribed), community_id),
            )

        await self._call(op)

    async def set_tally_posts(self, platform: str, chat_id: str, enabled: bool) -> None:
        """Turn a community's periodic tally post on or off."""

        def op(db: sqlite3.Connection) -> None:
            community_id = _ensure_community(db, platform, chat_id, _now())
            db.execute(
                "UPDATE communities SET tally_posts = ? WHERE id = ?",
                (int(enabled), community_id),
            )

        await self._call(op)

    async def set_board(self, platform: str, chat_id: str, board_ref: str | None) -> None:
        """Remember the platform reference of a community's board message."""

        def op(db: sqlite3.Connection) -> None:
            community_id = _ensure_community(db, platform, chat_id, _now())
            db.execute(
                "UPDATE communities SET board_ref = ? WHERE id = ?", (board_ref, community_id)
            )

        await self._call(op)

    async def boards(self, platform: str) -> list[tuple[str, str]]:
        """(chat id, board reference) of every community of a platform that has a board."""

        def op(db: sqlite3.Connection) -> list[tuple[str, str]]:
            rows = db.execute(
                "SELECT chat_id, board_ref FROM communities "
                "WHERE platform = ? AND board_ref IS NOT NULL ORDER BY id",
                (platform,),
            ).fetchall()
            return [(str(row[0]), str(row[1])) for row in rows]

        return await self._call(op)

    async def move_community(self, platform: str, old_chat_id: str, new_chat_id: str) -> bool:
        """Give a community a new chat id (a migrated group), keeping its pledges and board."""

        def op(db: sqlite3.Connection) -> bool:
            old = _community(db, platform, old_chat_id)
            if old is None:
                return False  # nothing there, or already moved (a second notice)
            new = _community(db, platform, new_chat_id)
            if new is None:
                db.execute("UPDATE communities SET chat_id = ? WHERE id = ?", (new_chat_id, old.id))
                return True
            # Someone used the new id before the notice arrived: merge the old into it.
            db.execute(
                "INSERT INTO pledge_communities (campaign_id, volunteer, community_id) "
                "SELECT campaign_id, volunteer, ? FROM pledge_communities "
                "WHERE community_id = ? ON CONFLICT DO NOTHING",
                (new.id, old.id),
            )
            db.execute(
                "INSERT INTO community_tallies (campaign_id, community_id, pledged) "
                "SELECT campaign_id, ?, COUNT(*) FROM pledge_communities "
                "WHERE community_id = ? GROUP BY campaign_id "
                "ON CONFLICT DO UPDATE SET pledged = excluded.pledged",
                (new.id, new.id),
            )
            db.execute(
                "UPDATE communities SET board_ref = COALESCE(board_ref, ?), "
                "language = COALESCE(language, ?) WHERE id = ?",
                (old.board_ref, old.language, new.id),
            )
            db.execute("DELETE FROM communities WHERE id = ?", (old.id,))
            return True

        return await self._call(op)

    async def forget(self, key: bytes) -> bool:
        """Delete everything about a volunteer, leaving no copy in the files; False if none."""
        existed = bool(await self._call(lambda db: _erase_volunteer(db, key)))
        await self._wipe_after(existed)
        return existed

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

    async def export(self, campaign_id: int, key: bytes) -> VolunteerData:
        """Everything stored about a volunteer."""

        def op(db: sqlite3.Connection) -> VolunteerData:
            return VolunteerData(_volunteer(db, key), _pledge(db, campaign_id, key))

        return await self._call(op)

    # -- outbox -----------------------------------------------------------------------

    async def set_window(
        self, campaign_id: int, start: datetime, end: datetime, rungs: dict[str, datetime]
    ) -> None:
        """Store an organizer's window and the ladder that goes with it, in one transaction."""

        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE campaigns SET start_at = ?, end_at = ? WHERE id = ?",
                (start.astimezone(UTC).isoformat(), end.astimezone(UTC).isoformat(), campaign_id),
            )
            _replace_schedule(db, campaign_id, rungs)

        await self._call(op)

    async def window(self, campaign_id: int) -> tuple[datetime, datetime] | None:
        """The freeze window an organizer set, if any."""

        def op(db: sqlite3.Connection) -> tuple[datetime, datetime] | None:
            row = db.execute(
                "SELECT start_at, end_at FROM campaigns WHERE id = ?", (campaign_id,)
            ).fetchone()
            if row is None or row[0] is None or row[1] is None:
                return None
            return datetime.fromisoformat(row[0]), datetime.fromisoformat(row[1])

        return await self._call(op)

    async def set_schedule(self, campaign_id: int, rungs: dict[str, datetime]) -> None:
        """Replace the campaign's reminder ladder (rung name -> moment, aware)."""

        def op(db: sqlite3.Connection) -> None:
            _replace_schedule(db, campaign_id, rungs)

        await self._call(op)

    async def schedule(self, campaign_id: int) -> dict[str, datetime]:
        """The campaign's reminder ladder."""

        def op(db: sqlite3.Connection) -> dict[str, datetime]:
            rows = db.execute(
                "SELECT rung, due_at FROM schedule_rungs WHERE campaign_id = ? ORDER BY due_at",
                (campaign_id,),
            ).fetchall()
            return {row[0]: datetime.fromisoformat(row[1]) for row in rows}

        return await self._call(op)

    async def create_broadcast(
        self,
        campaign_id: int,
        key: str,
        kind: str,
        subject: str,
        default_language: str,
        volunteers: bool = True,
        tally_posts_only: bool = False,
        platforms: Collection[str] | None = None,
    ) -> Broadcast | None:
        """Create a broadcast and expand its recipients into deliveries, in one transaction."""
        only = json.dumps(sorted(platforms)) if platforms is not None else None

        def op(db: sqlite3.Connection) -> tuple[Broadcast | None, bool]:
            now = _now()
            row = db.execute(
                "INSERT INTO broadcasts (campaign_id, key, kind, subject, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING id",
                (campaign_id, key, kind, subject, now),
            ).fetchall()
            if not row:
                return None, False
            broadcast_id = int(row[0][0])
            communities = db.execute(
                "INSERT INTO deliveries (broadcast_id, platform, address, language, updated_at) "
                "SELECT ?, platform, chat_id, COALESCE(language, ?), ? FROM communities "
                "WHERE subscribed = 1 AND tally_posts >= ? "
                "AND (?5 IS NULL OR platform IN (SELECT value FROM json_each(?5))) ORDER BY id",
                (broadcast_id, default_language, now, int(tally_posts_only), only),
            ).rowcount
            personal = (
                0
                if not volunteers
                else db.execute(
                    "INSERT INTO deliveries "
                    "(broadcast_id, platform, address, language, volunteer, updated_at) "
                    "SELECT ?, dm_platform, dm_address, COALESCE(language, ?), key, ? "
                    "FROM volunteers WHERE reminders = 1 AND dm_address IS NOT NULL "
                    "AND dm_platform IS NOT NULL "
                    "AND (?4 IS NULL OR dm_platform IN (SELECT value FROM json_each(?4))) "
                    "ON CONFLICT DO NOTHING",
                    (broadcast_id, default_language, now, only),
                ).rowcount
            )
            total = communities + personal
            db.execute("UPDATE broadcasts SET recipients = ? WHERE id = ?", (total, broadcast_id))
            made = Broadcast(broadcast_id, key, kind, subject, total)
            # the last reminder, with nobody to send it to: the campaign is over already
            return made, _end_if_over(db, [broadcast_id])

        made, ended = await self._call(op)
        if ended:
            await self._wipe_quietly("the campaign's end")
        return made

    async def save_announcement(self, campaign_id: int, texts: dict[str, str], source: str) -> int:
        """Keep an organizer's announcement (texts per language) until it is sent; its id."""

        def op(db: sqlite3.Connection) -> int:
            return int(
                db.execute(
                    "INSERT INTO announcements (campaign_id, texts, source, created_at) "
                    "VALUES (?, ?, ?, ?) RETURNING id",
                    (campaign_id, json.dumps(texts, ensure_ascii=False), source, _now()),
                ).fetchall()[0][0]
            )

        return await self._call(op)

    async def announcement(self, announcement_id: int) -> tuple[dict[str, str], str] | None:
        """An announcement's texts per language and its fallback language."""

        def op(db: sqlite3.Connection) -> tuple[dict[str, str], str] | None:
            rows = db.execute(
                "SELECT texts, source FROM announcements WHERE id = ?", (announcement_id,)
            ).fetchall()
            return (json.loads(rows[0][0]), str(rows[0][1])) if rows else None

        return await self._call(op)

    async def recipient_counts(self) -> dict[str, int]:
        """How many recipients a broadcast would have now, per platform."""

        def op(db: sqlite3.Connection) -> dict[str, int]:
            rows = db.execute(
                "SELECT platform, COUNT(*) FROM communities WHERE subscribed = 1 GROUP BY 1 "
                "UNION ALL SELECT dm_platform, COUNT(*) FROM volunteers "
                "WHERE reminders = 1 AND dm_platform IS NOT NULL GROUP BY 1"
            ).fetchall()
            counts: dict[str, int] = {}
            for platform, count in rows:
                counts[platform] = counts.get(platform, 0) + int(count)
            return counts

        return await self._call(op)

    async def claim_deliveries(self, platform: str, limit: int) -> list[Delivery]:
        """Mark up to `limit` pending deliveries of a platform in flight and return them."""

        def op(db: sqlite3.Connection) -> list[Delivery]:
            rows = db.execute(
                "UPDATE deliveries SET state = 'inflight', attempts = attempts + 1, "
                "sending_at = NULL, updated_at = ? WHERE id IN (SELECT id FROM deliveries "
                "WHERE platform = ? AND state = 'pending' "
                "AND (not_before IS NULL OR not_before <= ?) ORDER BY id LIMIT ?) "
                "RETURNING id, broadcast_id, platform, address, language, attempts, "
                "volunteer IS NOT NULL",
                (_now(), platform, _moment(datetime.now(UTC)), limit),
            ).fetchall()
            if not rows:
                return []
            subjects = dict(
                (row[0], (row[1], row[2]))
                for row in db.execute(
                    "SELECT id, kind, subject FROM broadcasts WHERE id IN "
                    f"({','.join('?' * len({r[1] for r in rows}))})",
                    tuple({r[1] for r in rows}),
                ).fetchall()
            )
            deliveries = [
                Delivery(r[0], r[1], *subjects[r[1]], r[2], r[3], r[4], r[5], bool(r[6]))
                for r in rows
            ]
            return sorted(deliveries, key=lambda d: d.id)

        return await self._call(op)

    async def finish_deliveries(self, finished: list[Finished]) -> None:
        """Record how deliveries ended: sent, failed, unreachable, or pending (retry); the
        campaign's end for private addresses when this ends its last reminder."""

        def op(db: sqlite3.Connection) -> bool:
            now = _now()
            db.executemany(
                # a retry for a reader who opted out meanwhile (no address left) is not one
                "UPDATE deliveries SET state = CASE WHEN ?1 = 'pending' AND address IS NULL "
                "THEN 'failed' ELSE ?1 END, updated_at = ?2, not_before = ?3, "
                "attempts = attempts - ?4 WHERE id = ?5 AND state = 'inflight'",
                [
                    (
                        f.state,
                        now,
                        _moment(f.not_before) if f.not_before is not None else None,
                        int(not f.counted),
                        f.id,
                    )
                    for f in finished
                ],
            )
            ids = [f.id for f in finished]
            broadcasts = db.execute(
                f"SELECT DISTINCT broadcast_id FROM deliveries WHERE id IN "
                f"({','.join('?' * len(ids))})",
                ids,
            ).fetchall()
            return _end_if_over(db, [row[0] for row in broadcasts])

        if finished and await self._call(op):
            await self._wipe_quietly("the campaign's end")

    async def next_due(self, platform: str) -> datetime | None:
        """When the platform's earliest waiting delivery comes due (None: nothing waits)."""

        def op(db: sqlite3.Connection) -> datetime | None:
            row = db.execute(
                "SELECT MIN(COALESCE(not_before, '')) FROM deliveries "
                "WHERE platform = ? AND state = 'pending'",
                (platform,),
            ).fetchone()
            if row is None or row[0] is None:
                return None
            return datetime.fromisoformat(row[0]) if row[0] else datetime.now(UTC)

        return await self._call(op)

    async def mark_sending(self, delivery_id: int) -> None:
        """A claimed delivery's request is about to go out."""

        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE deliveries SET sending_at = ? WHERE id = ? AND state = 'inflight'",
                (_moment(datetime.now(UTC)), delivery_id),
            )

        await self._call(op)

    async def recover_inflight(
        self, platform: str, resend_within: timedelta | None
    ) -> dict[str, int]:
        """After a crash, settle the platform's rows left in flight: those never sent go back
        to pending; those sent within `resend_within` too; the rest become unknown."""

        def op(db: sqlite3.Connection) -> tuple[dict[str, int], bool]:
            now = _now()
            cutoff = (
                _moment(datetime.now(UTC) - resend_within)
                if resend_within is not None
                else "9999"  # nothing was sent after this: resend none
            )
            touched = db.execute(
                "SELECT DISTINCT broadcast_id FROM deliveries "
                "WHERE platform = ? AND state = 'inflight'",
                (platform,),
            ).fetchall()
            # Its reader opted out meanwhile (no address left): never sent again.
            failed = db.execute(
                "UPDATE deliveries SET state = 'failed', updated_at = ? "
                "WHERE platform = ? AND state = 'inflight' AND address IS NULL "
                "AND sending_at IS NULL",
                (now, platform),
            ).rowcount
            pending = db.execute(
                "UPDATE deliveries SET state = 'pending', sending_at = NULL, updated_at = ? "
                "WHERE platform = ? AND state = 'inflight' AND address IS NOT NULL "
                "AND (sending_at IS NULL OR sending_at >= ?)",
                (now, platform, cutoff),
            ).rowcount
            unknown = db.execute(
                "UPDATE deliveries SET state = 'unknown', updated_at = ? "
                "WHERE platform = ? AND state = 'inflight'",
                (now, platform),
            ).rowcount
            counts = {"pending": int(pending), "unknown": int(unknown)}
            if failed:
                counts["failed"] = int(failed)
            return counts, _end_if_over(db, [row[0] for row in touched])

        settled, ended = await self._call(op)
        if ended:
            await self._wipe_quietly("the campaign's end")
        return settled

    async def set_progress(self, broadcast_id: int, where: str | None) -> None:
        """Remember where a broadcast's progress message is (None: its report is shown)."""

        def op(db: sqlite3.Connection) -> None:
            db.execute("UPDATE broadcasts SET progress = ? WHERE id = ?", (where, broadcast_id))

        await self._call(op)

    async def open_progress(self, platform: str) -> list[tuple[int, str]]:
        """The broadcasts whose progress message on `platform` awaits its final report."""

        def op(db: sqlite3.Connection) -> list[tuple[int, str]]:
            rows = db.execute(
                "SELECT id, progress FROM broadcasts WHERE progress IS NOT NULL "
                "AND json_extract(progress, '$.platform') = ? ORDER BY id",
                (platform,),
            ).fetchall()
            return [(int(row[0]), str(row[1])) for row in rows]

        return await self._call(op)

    async def delivery_counts(self, broadcast_id: int) -> dict[str, int]:
        """How many deliveries of a broadcast are in each state."""

        def op(db: sqlite3.Connection) -> dict[str, int]:
            rows = db.execute(
                "SELECT state, COUNT(*) FROM deliveries WHERE broadcast_id = ? GROUP BY state",
                (broadcast_id,),
            ).fetchall()
            return {str(row[0]): int(row[1]) for row in rows}

        return await self._call(op)

    async def broadcasts_made(self, keys: list[str]) -> set[str]:
        """Which of these idempotency keys already have their broadcast (a rung sent)."""
        if not keys:
            return set()

        def op(db: sqlite3.Connection) -> set[str]:
            rows = db.execute(
                f"SELECT key FROM broadcasts WHERE key IN ({','.join('?' * len(keys))})",
                tuple(keys),
            ).fetchall()
            return {str(row[0]) for row in rows}

        return await self._call(op)


# -- row helpers (run on the database thread) -----------------------------------------


def _replace_schedule(db: sqlite3.Connection, campaign_id: int, rungs: dict[str, datetime]) -> None:
    db.execute("DELETE FROM schedule_rungs WHERE campaign_id = ?", (campaign_id,))
    db.executemany(
        "INSERT INTO schedule_rungs VALUES (?, ?, ?)",
        [(campaign_id, rung, at.astimezone(UTC).isoformat()) for rung, at in rungs.items()],
    )


def _ensure_volunteer(db: sqlite3.Connection, key: bytes, now: str) -> None:
    db.execute(
        "INSERT INTO volunteers (key, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (key, now)
    )


def _ensure_community(db: sqlite3.Connection, platform: str, chat_id: str, now: str) -> int:
    row = db.execute(
        "SELECT id FROM communities WHERE platform = ? AND chat_id = ?", (platform, chat_id)
    ).fetchone()
    if row:
        return int(row[0])
    return int(
        db.execute(
            "INSERT INTO communities (platform, chat_id, created_at) VALUES (?, ?, ?) RETURNING id",
            (platform, chat_id, now),
        ).fetchone()[0]
    )


def _volunteer(db: sqlite3.Connection, key: bytes) -> Volunteer | None:
    row = db.execute(
        "SELECT language, timezone, reminders, dm_address, created_at FROM volunteers "
        "WHERE key = ?",
        (key,),
    ).fetchone()
    if row is None:
        return None
    return Volunteer(key, row[0], row[1], bool(row[2]), row[3], datetime.fromisoformat(row[4]))


def _community(db: sqlite3.Connection, platform: str, chat_id: str) -> Community | None:
    row = db.execute(
        "SELECT id, language, subscribed, board_ref, tally_posts FROM communities "
        "WHERE platform = ? AND chat_id = ?",
        (platform, chat_id),
    ).fetchone()
    if row is None:
        return None
    return Community(row[0], platform, chat_id, row[1], bool(row[2]), row[3], bool(row[4]))


def _pledge(db: sqlite3.Connection, campaign_id: int, key: bytes) -> Pledge | None:
    row = db.execute(
        "SELECT choice, number, created_at FROM pledges WHERE campaign_id = ? AND volunteer = ?",
        (campaign_id, key),
    ).fetchone()
    if row is None:
        return None
    count = db.execute(
        "SELECT COUNT(*) FROM pledge_communities WHERE campaign_id = ? AND volunteer = ?",
        (campaign_id, key),
    ).fetchone()[0]
    return Pledge(row[0], row[1], datetime.fromisoformat(row[2]), int(count))


def _withdraw(db: sqlite3.Connection, campaign_id: int, key: bytes) -> bool:
    communities = db.execute(
        "DELETE FROM pledge_communities WHERE campaign_id = ? AND volunteer = ? "
        "RETURNING community_id",
        (campaign_id, key),
    ).fetchall()
    db.executemany(
        "UPDATE community_tallies SET pledged = pledged - 1 "
        "WHERE campaign_id = ? AND community_id = ?",
        [(campaign_id, row[0]) for row in communities],
    )
    gone = db.execute(
        "DELETE FROM pledges WHERE campaign_id = ? AND volunteer = ? RETURNING done_at",
        (campaign_id, key),
    ).fetchall()
    if gone:
        db.execute(
            "UPDATE campaigns SET pledged = pledged - 1, done = done - ? WHERE id = ?",
            (int(gone[0][0] is not None), campaign_id),
        )
    return bool(gone)


def _erase_volunteer(db: sqlite3.Connection, key: bytes) -> bool:
    """Delete a volunteer and all that hangs on them (pledges with their counts, their
    deliveries by cascade); False if there was nobody."""
    campaigns = [
        row[0] for row in db.execute("SELECT campaign_id FROM pledges WHERE volunteer = ?", (key,))
    ]
    for campaign_id in campaigns:
        _withdraw(db, campaign_id, key)
    return db.execute("DELETE FROM volunteers WHERE key = ?", (key,)).rowcount > 0


def _drop_address(db: sqlite3.Connection, key: bytes) -> bool:
    """A volunteer's reminders off: their address leaves the volunteers row, their queued
    messages go, and the rows already sent (or in flight) keep no address. Whether anything
    was dropped."""
    dropped = db.execute(
        "UPDATE volunteers SET reminders = 0, dm_address = NULL, dm_platform = NULL "
        "WHERE key = ? AND (reminders = 1 OR dm_address IS NOT NULL)",
        (key,),
    ).rowcount
    dropped += db.execute(
        "DELETE FROM deliveries WHERE volunteer = ? AND state IN ('pending', 'failed')", (key,)
    ).rowcount
    dropped += db.execute(
        "UPDATE deliveries SET address = NULL WHERE volunteer = ? AND address IS NOT NULL",
        (key,),
    ).rowcount
    return dropped > 0


def _end_if_over(db: sqlite3.Connection, broadcast_ids: Iterable[int]) -> bool:
    """The campaign's end for private addresses: when one of these broadcasts is the reminder
    of the last rung of its campaign's stored ladder, a rung after the freeze (the check-in,
    or the end when organizers turned the check-in off), and nothing of it is left to send,
    every volunteer's address is dropped, as if each had opted out. Whether anything was
    dropped (the caller then cuts the WAL)."""
    ids = list(broadcast_ids)
    if not ids:
        return False
    # The broadcast's key is the scheduler's reminder_key: reminder:<slug>:<rung>:<unix time>.
    over = db.execute(
        "SELECT 1 FROM broadcasts b JOIN campaigns c ON c.id = b.campaign_id "
        f"WHERE b.id IN ({','.join('?' * len(ids))}) AND b.kind = 'reminder' "
        "AND b.key = (SELECT 'reminder:' || c.slug || ':' || r.rung || ':' "
        "             || CAST(strftime('%s', r.due_at) AS INTEGER) "
        "             FROM schedule_rungs r WHERE r.campaign_id = c.id "
        "             ORDER BY r.due_at DESC LIMIT 1) "
        "AND b.subject IN ('end', 'checkin') "  # a rung after the freeze, not a ladder cut short
        "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.broadcast_id = b.id "
        "                AND d.state IN ('pending', 'inflight')) "
        "LIMIT 1",
        ids,
    ).fetchall()
    if not over:
        return False
    dropped = db.execute(
        "UPDATE volunteers SET reminders = 0, dm_address = NULL, dm_platform = NULL "
        "WHERE reminders = 1 OR dm_address IS NOT NULL"
    ).rowcount
    dropped += db.execute(
        "DELETE FROM deliveries WHERE volunteer IS NOT NULL AND state IN ('pending', 'failed')"
    ).rowcount
    dropped += db.execute(
        "UPDATE deliveries SET address = NULL WHERE volunteer IS NOT NULL AND address IS NOT NULL"
    ).rowcount
    if dropped:
        log.info("the campaign's last reminder is delivered: private addresses dropped")
    return dropped > 0
