"""The SQL of the Storage contract on PostgreSQL: one coroutine per operation over an asyncpg
connection, run inside the transaction the store gives it (or alone, for a single
statement), and the row helpers they share.

Several processes write to one database at once, so every write that depends on what it
read locks it first, and locks are taken in one order: a campaign's row (its counters),
then a volunteer's, then their pledge's, then a community's and its tally; a broadcast's row
before the deliveries it adds. Whatever still meets in a circle is a deadlock PostgreSQL
breaks, and the store tries it again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from storage.base import (
    Broadcast,
    Community,
    Delivery,
    Finished,
    Pledge,
    PledgeResult,
    PledgeStatus,
    StorageError,
    Tally,
    Volunteer,
    VolunteerData,
)
from storage.postgres import links

log = logging.getLogger(__name__)


def now() -> datetime:
    """Now, aware, in UTC (this process's clock, as the SQLite backend uses its own)."""
    return datetime.now(UTC)


def count(status: str) -> int:
    """The number of rows an INSERT, UPDATE or DELETE touched, from its command tag."""
    return int(status.rsplit(" ", 1)[-1])


async def ensure_campaign(db: asyncpg.Connection, slug: str) -> int:
    """Return the id of the campaign named slug, creating it when new."""
    made = await db.fetchval(
        "INSERT INTO campaigns (slug, created_at) VALUES ($1, $2) "
        "ON CONFLICT (slug) DO NOTHING RETURNING id",
        slug,
        now(),
    )
    if made is not None:
        return int(made)
    # Someone made it (perhaps a moment ago, in another process): this statement sees it.
    return int(await db.fetchval("SELECT id FROM campaigns WHERE slug = $1", slug))


async def load_context(
    db: asyncpg.Connection, key: bytes, platform: str, chat_id: str | None
) -> tuple[Volunteer | None, Community | None]:
    """Read the volunteer and the community of one invocation in one statement (every
    command starts here). A linked account reads its person's volunteer (its key too)."""
    row = await db.fetchrow(
        "SELECT v.language, v.timezone, v.reminders, v.dm_address, v.created_at, "
        "c.id, c.language, c.subscribed, c.board_ref, c.tally_posts, c.web_page, l.person, "
        "c.tally_hour "
        "FROM (SELECT 1) AS one LEFT JOIN links l ON l.alias = $1 "
        "LEFT JOIN volunteers v ON v.key = COALESCE(l.person, $1) "
        "LEFT JOIN communities c ON c.platform = $2 AND c.chat_id = $3",
        key,
        platform,
        chat_id,
    )
    return _context(row, key, platform, chat_id)


def _context(
    row: asyncpg.Record, key: bytes, platform: str, chat_id: str | None
) -> tuple[Volunteer | None, Community | None]:
    volunteer = (
        None
        if row[4] is None
        else Volunteer(
            key if row[11] is None else bytes(row[11]),
            row[0],
            row[1],
            bool(row[2]),
            row[3],
            row[4].astimezone(UTC),
        )
    )
    community = (
        None
        if row[5] is None or chat_id is None
        else Community(
            int(row[5]), platform, chat_id, row[6], row[7], row[8], row[9], row[10], row[12]
        )
    )
    return volunteer, community


Context = tuple[bytes, str, str | None]  # what load_context is asked: key, platform, chat id


async def load_contexts(
    db: asyncpg.Connection, wanted: Sequence[Context]
) -> list[tuple[Volunteer | None, Community | None]]:
    """load_context for several invocations in one statement (one round trip), in order.
    Each is looked up by its keys (LATERAL ... LIMIT 1: never a join that reads a table
    whole)."""
    if len(wanted) == 1:
        return [await load_context(db, *wanted[0])]
    rows = await db.fetch(
        "SELECT v.language, v.timezone, v.reminders, v.dm_address, v.created_at, "
        "c.id, c.language, c.subscribed, c.board_ref, c.tally_posts, c.web_page, l.person, "
        "c.tally_hour "
        "FROM unnest($1::bytea[], $2::text[], $3::text[]) WITH ORDINALITY AS u(k, p, ch, i) "
        "LEFT JOIN LATERAL (SELECT person FROM links l WHERE l.alias = u.k LIMIT 1) l ON true "
        "LEFT JOIN LATERAL (SELECT * FROM volunteers v "
        "  WHERE v.key = COALESCE(l.person, u.k) LIMIT 1) v ON true "
        "LEFT JOIN LATERAL (SELECT * FROM communities c "
        "  WHERE c.platform = u.p AND c.chat_id = u.ch LIMIT 1) c ON true "
        "ORDER BY u.i",
        [key for key, _, _ in wanted],
        [platform for _, platform, _ in wanted],
        [chat_id for _, _, chat_id in wanted],
    )
    if len(rows) != len(wanted):
        raise StorageError("storage failing: load_context answered for fewer invocations")
    return [_context(row, *asked) for row, asked in zip(rows, wanted, strict=True)]


async def pledge(
    db: asyncpg.Connection,
    campaign_id: int,
    key: bytes,
    platform: str,
    chat_id: str | None,
    choice: str | None,
) -> PledgeResult:
    """Record a pledge (idempotent); counters change in the same transaction (the function
    record_pledge of the schema, one round trip)."""
    row = await db.fetchrow(
        "SELECT out_status, out_number, out_choice, out_total "
        "FROM record_pledge($1, $2, $3, $4, $5, $6)",
        campaign_id,
        key,
        platform,
        chat_id,
        choice,
        now(),
    )
    return _pledge_result(row[0], row[1], row[2], row[3])


def _pledge_result(status: str, number: int, choice: str, total: int | None) -> PledgeResult:
    return PledgeResult(
        PledgeStatus(status), int(number), str(choice), None if total is None else int(total)
    )


@dataclass(frozen=True, slots=True)
class PledgeOp:
    """A pledge for group commit: alone it is `pledge`; the pledges queued together in one
    batch are sent in one round trip (`run_together`, the schema's record_pledges)."""

    campaign_id: int
    key: bytes
    platform: str
    chat_id: str | None
    choice: str | None

    async def __call__(self, db: asyncpg.Connection) -> PledgeResult:
        """Record this pledge alone."""
        return await pledge(
            db, self.campaign_id, self.key, self.platform, self.chat_id, self.choice
        )

    @staticmethod
    async def run_together(db: asyncpg.Connection, ops: Sequence[PledgeOp]) -> list[PledgeResult]:
        """Record several pledges, in order, in one round trip (inside the caller's
        transaction); if one fails, the statement fails and nothing of it stays."""
        rows = await db.fetch(
            "SELECT out_index, out_status, out_number, out_choice, out_total "
            "FROM record_pledges($1, $2, $3, $4, $5, $6) ORDER BY out_index",
            [op.campaign_id for op in ops],
            [op.key for op in ops],
            [op.platform for op in ops],
            [op.chat_id for op in ops],
            [op.choice for op in ops],
            now(),
        )
        if len(rows) != len(ops):
            raise StorageError("storage failing: record_pledges answered for fewer pledges")
        return [_pledge_result(r[1], r[2], r[3], r[4]) for r in rows]


async def mark_done(db: asyncpg.Connection, campaign_id: int, key: bytes) -> bool | None:
    """Record that a volunteer froze their accounts, counted in the same transaction (the
    campaign's row locked first, as a pledge does)."""
    await lock_campaigns(db, [campaign_id])
    row = await db.fetchrow(
        "WITH marked AS (UPDATE pledges SET done_at = $3 "
        "  WHERE volunteer = $1 AND campaign_id = $2 AND done_at IS NULL RETURNING 1), "
        "counted AS (UPDATE campaigns SET done = done + 1 "
        "  WHERE id = $2 AND EXISTS (SELECT 1 FROM marked) RETURNING 1) "
        "SELECT EXISTS (SELECT 1 FROM counted), "
        "EXISTS (SELECT 1 FROM pledges WHERE volunteer = $1 AND campaign_id = $2)",
        key,
        campaign_id,
        now(),
    )
    if row[0]:
        return True
    return False if row[1] else None


async def get_pledge(db: asyncpg.Connection, campaign_id: int, key: bytes) -> Pledge | None:
    """The volunteer's pledge in the campaign, if any."""
    row = await db.fetchrow(
        "SELECT p.choice, p.number, p.created_at, (SELECT COUNT(*) FROM pledge_communities l "
        "WHERE l.volunteer = p.volunteer AND l.campaign_id = p.campaign_id) "
        "FROM pledges p WHERE p.volunteer = $1 AND p.campaign_id = $2",
        key,
        campaign_id,
    )
    if row is None:
        return None
    return Pledge(row[0], int(row[1]), row[2].astimezone(UTC), int(row[3]))


async def lock_campaigns(db: asyncpg.Connection, campaign_ids: list[int]) -> None:
    """Lock campaigns' rows (their counters) until the transaction ends, in id order."""
    await db.execute(
        "SELECT 1 FROM campaigns WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE",
        sorted(campaign_ids),
    )


async def lock_volunteer(db: asyncpg.Connection, key: bytes, *, erase: bool = False) -> bool:
    """Lock a volunteer's row until the transaction ends (for an erasure, against every
    other lock on it); whether there is one."""
    mode = "UPDATE" if erase else "NO KEY UPDATE"
    return bool(await db.fetchval(f"SELECT true FROM volunteers WHERE key = $1 FOR {mode}", key))


async def unpledge(
    db: asyncpg.Connection, campaign_id: int, key: bytes, locked: bool = False
) -> bool:
    """Withdraw a pledge, its counts with it; False when there was none. Takes the
    campaign's lock and the volunteer's unless the caller holds them."""
    if not locked:
        await lock_campaigns(db, [campaign_id])
        if not await lock_volunteer(db, key):
            return False
    communities = [
        row[0]
        for row in await db.fetch(
            "DELETE FROM pledge_communities WHERE volunteer = $1 AND campaign_id = $2 "
            "RETURNING community_id",
            key,
            campaign_id,
        )
    ]
    gone = await db.fetchrow(
        "DELETE FROM pledges WHERE volunteer = $1 AND campaign_id = $2 "
        "RETURNING done_at IS NOT NULL",
        key,
        campaign_id,
    )
    if gone is not None:
        await db.execute(
            "UPDATE campaigns SET pledged = pledged - 1, done = done - $2 WHERE id = $1",
            campaign_id,
            int(gone[0]),
        )
    if communities:
        await db.execute(
            "UPDATE community_tallies SET pledged = pledged - 1 "
            "WHERE campaign_id = $1 AND community_id = ANY($2::bigint[])",
            campaign_id,
            communities,
        )
    return gone is not None


async def tally(
    db: asyncpg.Connection, campaign_id: int, platform: str, chat_id: str | None
) -> Tally:
    """Counts for one community and overall, read from counters (never a scan)."""
    row = await db.fetchrow(
        "SELECT c.pledged, c.done, (SELECT t.pledged FROM communities m "
        "  JOIN community_tallies t ON t.community_id = m.id AND t.campaign_id = $1 "
        "  WHERE m.platform = $2 AND m.chat_id = $3) "
        "FROM (SELECT 1) AS one LEFT JOIN campaigns c ON c.id = $1",
        campaign_id,
        platform,
        chat_id,
    )
    here = None if chat_id is None else int(row[2] or 0)
    return Tally(community=here, total=int(row[0] or 0), done=int(row[1] or 0))


async def set_language(db: asyncpg.Connection, key: bytes, language: str | None) -> None:
    """Store the volunteer's language (None: follow the platform)."""
    await db.execute(
        "INSERT INTO volunteers AS v (key, created_at, language) VALUES ($1, $2, $3) "
        "ON CONFLICT (key) DO UPDATE SET language = EXCLUDED.language",
        key,
        _second(now()),
        language,
    )


async def set_timezone(db: asyncpg.Connection, key: bytes, timezone: str) -> None:
    """Store the volunteer's time zone."""
    await db.execute(
        "INSERT INTO volunteers AS v (key, created_at, timezone) VALUES ($1, $2, $3) "
        "ON CONFLICT (key) DO UPDATE SET timezone = EXCLUDED.timezone",
        key,
        _second(now()),
        timezone,
    )


async def opt_in(
    db: asyncpg.Connection, key: bytes, dm_address: str | None, platform: str | None
) -> None:
    """A volunteer's reminders on, keeping the platform and address to write to."""
    await db.execute(
        "INSERT INTO volunteers AS v (key, created_at, reminders, dm_address, dm_platform) "
        f"VALUES ({links.RESOLVE}, $2, true, $3, $4) ON CONFLICT (key) DO UPDATE SET "
        "reminders = true, "
        "dm_address = EXCLUDED.dm_address, dm_platform = EXCLUDED.dm_platform",
        key,
        _second(now()),
        dm_address,
        platform,
    )


async def opt_out(db: asyncpg.Connection, key: bytes) -> bool:
    """A volunteer's reminders off: their address leaves the volunteers row, their queued
    messages go, and the rows already sent (or in flight) keep no address. The volunteer's
    row is changed (and so locked) first: an expansion adding them waits, or waits for
    this. Whether anything was dropped."""
    key = await links.resolve(db, key)  # a linked account's platform refused: the person's
    dropped = count(
        await db.execute(
            "UPDATE volunteers SET reminders = false, dm_address = NULL, dm_platform = NULL "
            "WHERE key = $1 AND (reminders OR dm_address IS NOT NULL)",
            key,
        )
    )
    dropped += count(
        await db.execute(
            "DELETE FROM deliveries WHERE volunteer = $1 AND state IN ('pending', 'failed')",
            key,
        )
    )
    dropped += count(
        await db.execute(
            "UPDATE deliveries SET address = NULL WHERE volunteer = $1 AND address IS NOT NULL",
            key,
        )
    )
    return dropped > 0


async def set_community(
    db: asyncpg.Connection, platform: str, chat_id: str, column: str, value: object
) -> None:
    """Set one setting of a community (language, subscribed, tally_posts, board_ref, web_page),
    creating the community when new."""
    if column not in {"language", "subscribed", "tally_posts", "board_ref", "web_page"}:
        raise ValueError(f"not a community setting: {column}")
    await db.execute(
        f"INSERT INTO communities (platform, chat_id, created_at, {column}) "
        f"VALUES ($1, $2, $3, $4) "
        f"ON CONFLICT (platform, chat_id) DO UPDATE SET {column} = EXCLUDED.{column}",
        platform,
        chat_id,
        now(),
        value,
    )


async def web_page_tally(db: asyncpg.Connection, campaign_id: int, token: str) -> Tally | None:
    """The counts a community's web page shows (None: no page has this token)."""
    row = await db.fetchrow(
        "SELECT c.pledged, c.done, (SELECT t.pledged FROM community_tallies t "
        "  WHERE t.community_id = m.id AND t.campaign_id = c.id) "
        "FROM communities m, campaigns c WHERE m.web_page = $1 AND c.id = $2",
        token,
        campaign_id,
    )
    if row is None:
        return None
    return Tally(community=int(row[2] or 0), total=int(row[0]), done=int(row[1]))


async def set_tally_posts(
    db: asyncpg.Connection, platform: str, chat_id: str, enabled: bool, hour: int | None
) -> None:
    """Turn a community's periodic tally post on (at `hour`, None: the default slots) or
    off, creating the community when new."""
    await db.execute(
        "INSERT INTO communities (platform, chat_id, created_at, tally_posts, tally_hour) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (platform, chat_id) DO UPDATE SET "
        "tally_posts = EXCLUDED.tally_posts, tally_hour = EXCLUDED.tally_hour",
        platform,
        chat_id,
        now(),
        enabled,
        hour if enabled else None,
    )


async def boards(db: asyncpg.Connection, platform: str) -> list[tuple[str, str]]:
    """(chat id, board reference) of every community of a platform that has a board."""
    rows = await db.fetch(
        "SELECT chat_id, board_ref FROM communities "
        "WHERE platform = $1 AND board_ref IS NOT NULL ORDER BY id",
        platform,
    )
    return [(str(row[0]), str(row[1])) for row in rows]


async def move_community(
    db: asyncpg.Connection, platform: str, old_chat_id: str, new_chat_id: str
) -> bool:
    """Give a community a new chat id (a migrated group), keeping its pledges and board.
    Rare: it takes every campaign's counter lock first, as every write to the counters
    does, so no pledge or withdrawal comes between its reading the links and merging them
    (they wait the few milliseconds it takes)."""
    await db.execute("SELECT 1 FROM campaigns ORDER BY id FOR NO KEY UPDATE")
    rows = await db.fetch(
        "SELECT id, chat_id, language, board_ref, web_page FROM communities "
        "WHERE platform = $1 AND chat_id IN ($2, $3) ORDER BY id FOR UPDATE",
        platform,
        old_chat_id,
        new_chat_id,
    )
    found = {row["chat_id"]: row for row in rows}
    old = found.get(old_chat_id)
    if old is None:
        return False  # nothing there, or already moved (a second notice)
    new = found.get(new_chat_id)
    if new is None:
        await db.execute(
            "UPDATE communities SET chat_id = $2 WHERE id = $1", old["id"], new_chat_id
        )
        return True
    # Someone used the new id before the notice arrived: merge the old into it.
    await db.execute(
        "INSERT INTO pledge_communities (volunteer, campaign_id, community_id) "
        "SELECT volunteer, campaign_id, $1 FROM pledge_communities WHERE community_id = $2 "
        "ON CONFLICT DO NOTHING",
        new["id"],
        old["id"],
    )
    await db.execute(
        "INSERT INTO community_tallies AS t (campaign_id, community_id, pledged) "
        "SELECT campaign_id, $1, COUNT(*) FROM pledge_communities WHERE community_id = $1 "
        "GROUP BY campaign_id "
        "ON CONFLICT (campaign_id, community_id) DO UPDATE SET pledged = EXCLUDED.pledged",
        new["id"],
    )
    # The old row lets go of its web page's address first: addresses are unique.
    await db.execute("DELETE FROM communities WHERE id = $1", old["id"])
    await db.execute(
        "UPDATE communities SET board_ref = COALESCE(board_ref, $2), "
        "language = COALESCE(language, $3), web_page = COALESCE(web_page, $4) WHERE id = $1",
        new["id"],
        old["board_ref"],
        old["language"],
        old["web_page"],
    )
    return True


async def forget(db: asyncpg.Connection, key: bytes) -> list[str]:
    """Delete a volunteer and all that hangs on them (pledges with their counts, their
    deliveries); the tables rows left (empty if there was nobody). The counters of their
    campaigns are locked first (as a pledge does), then the volunteer's row, against
    everything else that could add a row of theirs meanwhile."""
    pledged = "SELECT campaign_id FROM pledges WHERE volunteer = $1"
    await lock_campaigns(db, [int(row[0]) for row in await db.fetch(pledged, key)])
    await links.forget(db, key)  # (the links go with the volunteer's row)
    if not await lock_volunteer(db, key, erase=True):
        return []
    touched = ["volunteers", "links", "link_codes", "link_attempts"]
    campaigns = sorted(int(row[0]) for row in await db.fetch(pledged, key))
    for campaign_id in campaigns:
        await unpledge(db, campaign_id, key, locked=True)
    if campaigns:
        touched += ["pledges", "pledge_communities"]
    if count(await db.execute("DELETE FROM deliveries WHERE volunteer = $1", key)):
        touched.append("deliveries")
    await db.execute("DELETE FROM volunteers WHERE key = $1", key)
    return touched


async def export(db: asyncpg.Connection, campaign_id: int, key: bytes) -> VolunteerData:
    """Everything stored about a volunteer."""
    return VolunteerData(
        await _volunteer(db, key),
        await get_pledge(db, campaign_id, key),
        await links.platforms(db, key),
    )


async def set_window(
    db: asyncpg.Connection,
    campaign_id: int,
    start: datetime,
    end: datetime,
    rungs: dict[str, datetime],
) -> None:
    """Store an organizer's window and the ladder that goes with it (in the caller's
    transaction)."""
    await db.execute(
        "UPDATE campaigns SET start_at = $2, end_at = $3 WHERE id = $1",
        campaign_id,
        start.astimezone(UTC),
        end.astimezone(UTC),
    )
    await set_schedule(db, campaign_id, rungs)


async def window(db: asyncpg.Connection, campaign_id: int) -> tuple[datetime, datetime] | None:
    """The freeze window an organizer set, if any."""
    row = await db.fetchrow("SELECT start_at, end_at FROM campaigns WHERE id = $1", campaign_id)
    if row is None or row[0] is None or row[1] is None:
        return None
    return row[0].astimezone(UTC), row[1].astimezone(UTC)


async def set_schedule(
    db: asyncpg.Connection, campaign_id: int, rungs: dict[str, datetime]
) -> None:
    """Replace the campaign's reminder ladder (in the caller's transaction)."""
    await db.execute("DELETE FROM schedule_rungs WHERE campaign_id = $1", campaign_id)
    if rungs:
        await db.execute(
            "INSERT INTO schedule_rungs (campaign_id, rung, due_at) "
            "SELECT $1, rung, due_at "
            "FROM unnest($2::text[], $3::timestamptz[]) AS r (rung, due_at)",
            campaign_id,
            list(rungs),
            [at.astimezone(UTC) for at in rungs.values()],
        )


async def schedule(db: asyncpg.Connection, campaign_id: int) -> dict[str, datetime]:
    """The campaign's reminder ladder."""
    rows = await db.fetch(
        "SELECT rung, due_at FROM schedule_rungs WHERE campaign_id = $1 ORDER BY due_at",
        campaign_id,
    )
    return {str(row[0]): row[1].astimezone(UTC) for row in rows}


async def create_broadcast(
    db: asyncpg.Connection,
    campaign_id: int,
    key: str,
    kind: str,
    subject: str,
    default_language: str,
    volunteers: bool,
    tally_posts_only: bool,
    tally_hours: list[int] | None,
    only: list[str] | None,
) -> tuple[Broadcast | None, bool]:
    """Create a broadcast and its communities' deliveries (`only`: the platforms, None for
    all); its opted-in volunteers come after, a chunk per transaction (expand_step). None
    if the key exists (made by this process or another: the key's unique index makes the
    second wait for the first and then do nothing). Whether creating it ended the campaign
    for private addresses."""
    at = now()
    broadcast_id = await db.fetchval(
        "INSERT INTO broadcasts (campaign_id, key, kind, subject, created_at, expand_after, "
        "expand_language, expand_only) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
        "ON CONFLICT (key) DO NOTHING RETURNING id",
        campaign_id,
        key,
        kind,
        subject,
        at,
        b"" if volunteers else None,
        default_language,
        only,
    )
    if broadcast_id is None:
        return None, False
    communities = count(
        await db.execute(
            "INSERT INTO deliveries (broadcast_id, platform, address, language, updated_at) "
            "SELECT $1, platform, chat_id, COALESCE(language, $2), $3 FROM communities "
            "WHERE subscribed AND (tally_posts OR NOT $4) "
            "AND ($5::text[] IS NULL OR platform = ANY($5::text[])) "
            "AND (NOT $4 OR CASE WHEN $6::int[] IS NULL THEN tally_hour IS NULL "
            "ELSE tally_hour = ANY($6::int[]) END) ORDER BY id",
            broadcast_id,
            default_language,
            at,
            tally_posts_only,
            only,
            tally_hours,
        )
    )
    await db.execute(
        "UPDATE broadcasts SET recipients = $2 WHERE id = $1", broadcast_id, communities
    )
    made = Broadcast(int(broadcast_id), key, kind, subject, communities)
    # the last reminder, with nobody to send it to: the campaign is over already
    return made, (not volunteers and await end_if_over(db, [made.id]))


async def expand_step(
    db: asyncpg.Connection, broadcast_id: int, chunk: int
) -> tuple[int, bool, bool]:
    """Add the next `chunk` volunteers (in key order) who opted in to a broadcast's
    deliveries, and advance its cursor, under the broadcast row's lock: a second expander
    (another process) waits and continues after this chunk, and the unique index drops any
    recipient added twice. Each volunteer added is share-locked until the commit: one who
    opts out or is forgotten meanwhile either waits for this chunk (and then takes its row
    with theirs) or is skipped. (recipients so far, whether every volunteer has been looked
    at, whether that ended the campaign for private addresses)."""
    row = await db.fetchrow(
        "SELECT expand_after, expand_language, expand_only, recipients FROM broadcasts "
        "WHERE id = $1 FOR NO KEY UPDATE",
        broadcast_id,
    )
    if row is None or row[0] is None:
        return (int(row[3]) if row else 0), True, False
    after, language, only, _recipients = row
    step = await db.fetchrow(
        # (the chunk's last key: bytea has no MAX)
        "WITH bound AS (SELECT (SELECT key FROM "
        "  (SELECT key FROM volunteers WHERE key > $2 ORDER BY key LIMIT $3) AS chunk "
        "  ORDER BY key DESC LIMIT 1) AS upper), "
        "added AS (INSERT INTO deliveries "
        "  (broadcast_id, platform, address, language, volunteer, updated_at) "
        "  SELECT $1, v.dm_platform, v.dm_address, COALESCE(v.language, $4), v.key, $5 "
        "  FROM volunteers v, bound WHERE v.key > $2 AND v.key <= bound.upper "
        "  AND v.reminders AND v.dm_address IS NOT NULL AND v.dm_platform IS NOT NULL "
        "  AND ($6::text[] IS NULL OR v.dm_platform = ANY($6::text[])) "
        "  ORDER BY v.key FOR SHARE OF v "
        "  ON CONFLICT DO NOTHING RETURNING 1) "
        "UPDATE broadcasts SET expand_after = (SELECT upper FROM bound), "
        "recipients = recipients + (SELECT COUNT(*) FROM added) "
        "WHERE id = $1 RETURNING recipients, expand_after IS NULL",
        broadcast_id,
        after,
        chunk,
        language,
        now(),
        only,
    )
    recipients, finished = int(step[0]), bool(step[1])
    if finished:
        return recipients, True, await end_if_over(db, [broadcast_id])
    return recipients, False, False


async def unfinished_expansions(db: asyncpg.Connection) -> list[int]:
    """Broadcasts whose volunteers are not all added yet (a stop interrupted them, or
    another process is adding them)."""
    rows = await db.fetch("SELECT id FROM broadcasts WHERE expand_after IS NOT NULL ORDER BY id")
    return [int(row[0]) for row in rows]


async def save_announcement(
    db: asyncpg.Connection, campaign_id: int, texts: dict[str, str], source: str
) -> int:
    """Keep an organizer's announcement (texts per language) until it is sent; its id."""
    return int(
        await db.fetchval(
            "INSERT INTO announcements (campaign_id, texts, source, created_at) "
            "VALUES ($1, $2::jsonb, $3, $4) RETURNING id",
            campaign_id,
            json.dumps(texts, ensure_ascii=False),
            source,
            now(),
        )
    )


async def announcement(
    db: asyncpg.Connection, announcement_id: int
) -> tuple[dict[str, str], str] | None:
    """An announcement's texts per language and its fallback language."""
    row = await db.fetchrow(
        "SELECT texts::text, source FROM announcements WHERE id = $1", announcement_id
    )
    return (json.loads(row[0]), str(row[1])) if row else None


async def recipient_counts(db: asyncpg.Connection) -> dict[str, int]:
    """How many recipients a broadcast would have now, per platform."""
    rows = await db.fetch(
        "SELECT platform, COUNT(*) FROM communities WHERE subscribed GROUP BY 1 "
        "UNION ALL SELECT dm_platform, COUNT(*) FROM volunteers "
        "WHERE reminders AND dm_platform IS NOT NULL GROUP BY 1"
    )
    counts: dict[str, int] = {}
    for platform, number in rows:
        counts[platform] = counts.get(platform, 0) + int(number)
    return counts


async def claim_deliveries(db: asyncpg.Connection, platform: str, limit: int) -> list[Delivery]:
    """Mark up to `limit` due pending deliveries of a platform in flight and return them;
    rows another claimer holds are skipped, so two claimers never get one row."""
    at = now()
    rows = await db.fetch(
        "WITH picked AS (SELECT id FROM deliveries WHERE platform = $1 AND state = 'pending' "
        "  AND (not_before IS NULL OR not_before <= $2) ORDER BY id LIMIT $3 "
        "  FOR UPDATE SKIP LOCKED) "
        "UPDATE deliveries d SET state = 'inflight', attempts = d.attempts + 1, "
        "sending_at = NULL, updated_at = $2 FROM picked, broadcasts b "
        "WHERE d.id = picked.id AND b.id = d.broadcast_id "
        "RETURNING d.id, d.broadcast_id, b.kind, b.subject, d.platform, d.address, "
        "d.language, d.attempts, d.volunteer IS NOT NULL",
        platform,
        at,
        limit,
    )
    deliveries = [
        Delivery(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5], r[6], int(r[7]), bool(r[8]))
        for r in rows
    ]
    return sorted(deliveries, key=lambda d: d.id)


async def finish_deliveries(db: asyncpg.Connection, finished: list[Finished]) -> bool:
    """Record how deliveries ended; whether that ended the campaign for private addresses."""
    await db.execute(
        # a retry for a reader who opted out meanwhile (no address left) is not one
        "UPDATE deliveries d SET state = CASE WHEN f.state = 'pending' AND d.address IS NULL "
        "THEN 'failed' ELSE f.state END, updated_at = $5, not_before = f.not_before, "
        "attempts = d.attempts - f.uncounted "
        "FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::int[]) "
        "AS f (id, state, not_before, uncounted) "
        "WHERE d.id = f.id AND d.state = 'inflight'",
        [f.id for f in finished],
        [f.state for f in finished],
        [f.not_before.astimezone(UTC) if f.not_before is not None else None for f in finished],
        [int(not f.counted) for f in finished],
        now(),
    )
    rows = await db.fetch(
        "SELECT DISTINCT broadcast_id FROM deliveries WHERE id = ANY($1::bigint[])",
        [f.id for f in finished],
    )
    return await end_if_over(db, [int(row[0]) for row in rows])


async def next_due(db: asyncpg.Connection, platform: str) -> datetime | None:
    """When the platform's earliest waiting delivery comes due (None: nothing waits)."""
    row = await db.fetchrow(
        "SELECT EXISTS (SELECT 1 FROM deliveries WHERE platform = $1 AND state = 'pending' "
        "AND not_before IS NULL)",
        platform,
    )
    if row[0]:
        return now()
    earliest = await db.fetchval(
        "SELECT MIN(not_before) FROM deliveries WHERE platform = $1 AND state = 'pending'",
        platform,
    )
    return None if earliest is None else earliest.astimezone(UTC)


async def mark_sending(db: asyncpg.Connection, delivery_id: int) -> None:
    """A claimed delivery's request is about to go out."""
    await db.execute(
        "UPDATE deliveries SET sending_at = $2 WHERE id = $1 AND state = 'inflight'",
        delivery_id,
        now(),
    )


async def recover_inflight(
    db: asyncpg.Connection, platform: str, resend_within: timedelta | None
) -> tuple[dict[str, int], bool]:
    """After a crash, settle the platform's rows left in flight: those never sent go back
    to pending; those sent within `resend_within` too; the rest become unknown. The counts,
    and whether that ended the campaign for private addresses."""
    at = now()
    # None: nothing was sent recently enough to be sent again
    cutoff = at - resend_within if resend_within is not None else None
    touched = await db.fetch(
        "SELECT DISTINCT broadcast_id FROM deliveries WHERE platform = $1 AND state = 'inflight'",
        platform,
    )
    # Its reader opted out meanwhile (no address left): never sent again.
    failed = count(
        await db.execute(
            "UPDATE deliveries SET state = 'failed', updated_at = $2 "
            "WHERE platform = $1 AND state = 'inflight' AND address IS NULL "
            "AND sending_at IS NULL",
            platform,
            at,
        )
    )
    pending = count(
        await db.execute(
            "UPDATE deliveries SET state = 'pending', sending_at = NULL, updated_at = $2 "
            "WHERE platform = $1 AND state = 'inflight' AND address IS NOT NULL "
            "AND (sending_at IS NULL OR sending_at >= $3)",
            platform,
            at,
            cutoff,
        )
    )
    unknown = count(
        await db.execute(
            "UPDATE deliveries SET state = 'unknown', updated_at = $2 "
            "WHERE platform = $1 AND state = 'inflight'",
            platform,
            at,
        )
    )
    counts = {"pending": pending, "unknown": unknown}
    if failed:
        counts["failed"] = failed
    return counts, await end_if_over(db, [int(row[0]) for row in touched])


async def set_progress(db: asyncpg.Connection, broadcast_id: int, where: str | None) -> None:
    """Remember where a broadcast's progress message is (None: its report is shown)."""
    await db.execute("UPDATE broadcasts SET progress = $2 WHERE id = $1", broadcast_id, where)


async def open_progress(db: asyncpg.Connection, platform: str) -> list[tuple[int, str]]:
    """The broadcasts whose progress message on `platform` awaits its final report."""
    rows = await db.fetch(
        "SELECT id, progress FROM broadcasts WHERE progress IS NOT NULL "
        "AND progress::jsonb ->> 'platform' = $1 ORDER BY id",
        platform,
    )
    return [(int(row[0]), str(row[1])) for row in rows]


async def delivery_counts(db: asyncpg.Connection, broadcast_id: int) -> dict[str, int]:
    """How many deliveries of a broadcast are in each state."""
    rows = await db.fetch(
        "SELECT state, COUNT(*) FROM deliveries WHERE broadcast_id = $1 GROUP BY state",
        broadcast_id,
    )
    return {str(row[0]): int(row[1]) for row in rows}


async def broadcasts_made(db: asyncpg.Connection, keys: list[str]) -> set[str]:
    """Which of these idempotency keys already have their broadcast (a rung sent)."""
    rows = await db.fetch("SELECT key FROM broadcasts WHERE key = ANY($1::text[])", keys)
    return {str(row[0]) for row in rows}


# -- row helpers ----------------------------------------------------------------------


def _second(at: datetime) -> datetime:
    """A volunteer's and a pledge's creation are kept to the second (as SQLite keeps them)."""
    return at.replace(microsecond=0)


async def _volunteer(db: asyncpg.Connection, key: bytes) -> Volunteer | None:
    row = await db.fetchrow(
        "SELECT language, timezone, reminders, dm_address, created_at FROM volunteers "
        "WHERE key = $1",
        key,
    )
    if row is None:
        return None
    return Volunteer(key, row[0], row[1], bool(row[2]), row[3], row[4].astimezone(UTC))


async def end_if_over(db: asyncpg.Connection, broadcast_ids: Iterable[int]) -> bool:
    """The campaign's end for private addresses: when one of these broadcasts is the reminder
    of the last rung of its campaign's stored ladder, a rung after the freeze (the check-in,
    or the end when organizers turned the check-in off), and nothing of it is left to send,
    every volunteer's address is dropped, as if each had opted out. Whether anything was
    dropped (the caller then vacuums).

    Two processes may settle a broadcast's last two rows at once, each unable to see the
    other's: so the candidate broadcasts are locked first, and the check, a statement of
    its own, runs after the other's commit and sees it."""
    ids = sorted(set(broadcast_ids))
    if not ids:
        return False
    candidates = [
        int(row[0])
        for row in await db.fetch(
            "SELECT id FROM broadcasts WHERE id = ANY($1::bigint[]) AND kind = 'reminder' "
            "AND subject IN ('end', 'checkin') ORDER BY id FOR NO KEY UPDATE",
            ids,
        )
    ]
    if not candidates:
        return False
    # The broadcast's key is the scheduler's reminder_key: reminder:<slug>:<rung>:<unix time>.
    over = await db.fetchval(
        "SELECT EXISTS (SELECT 1 FROM broadcasts b JOIN campaigns c ON c.id = b.campaign_id "
        "WHERE b.id = ANY($1::bigint[]) "
        "AND b.key = (SELECT 'reminder:' || c.slug || ':' || r.rung || ':' "
        "             || floor(extract(epoch FROM r.due_at))::bigint "
        "             FROM schedule_rungs r WHERE r.campaign_id = c.id "
        "             ORDER BY r.due_at DESC LIMIT 1) "
        "AND b.expand_after IS NULL "  # every recipient is in: nothing more will come
        "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.broadcast_id = b.id "
        "                AND d.state IN ('pending', 'inflight')))",
        candidates,
    )
    if not over:
        return False
    dropped = count(
        await db.execute(
            "UPDATE volunteers SET reminders = false, dm_address = NULL, dm_platform = NULL "
            "WHERE reminders OR dm_address IS NOT NULL"
        )
    )
    dropped += count(
        await db.execute(
            "DELETE FROM deliveries WHERE volunteer IS NOT NULL AND state IN ('pending', 'failed')"
        )
    )
    dropped += count(
        await db.execute(
            "UPDATE deliveries SET address = NULL "
            "WHERE volunteer IS NOT NULL AND address IS NOT NULL"
        )
    )
    if dropped:
        log.info("the campaign's last reminder is delivered: private addresses dropped")
    return dropped > 0
