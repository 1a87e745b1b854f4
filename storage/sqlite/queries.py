"""The SQL of the Storage contract: one function per operation, each a plain function over
the sqlite3 connection run on the database thread inside the writer's transaction, and the
row helpers they share.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from storage.base import (
    Broadcast,
    Community,
    Delivery,
    Finished,
    Pledge,
    PledgeResult,
    PledgeStatus,
    Tally,
    Volunteer,
    VolunteerData,
)
from storage.sqlite import links
from storage.sqlite.schema import moment, seconds, timestamp

log = logging.getLogger(__name__)


def ensure_campaign(db: sqlite3.Connection, slug: str) -> int:
    """Return the id of the campaign named slug, creating it when new."""
    db.execute(
        "INSERT INTO campaigns (slug, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (slug, timestamp()),
    )
    return int(db.execute("SELECT id FROM campaigns WHERE slug = ?", (slug,)).fetchone()[0])


def load_context(
    db: sqlite3.Connection, key: bytes, platform: str, chat_id: str | None
) -> tuple[Volunteer | None, Community | None]:
    """Read the volunteer and the community of one invocation in one statement (every
    command starts here). A linked account reads its person's volunteer (its key too)."""
    row = db.execute(
        "SELECT v.language, v.timezone, v.reminders, v.dm_address, v.created_at, "
        "c.id, c.language, c.subscribed, c.board_ref, c.tally_posts, c.web_page, l.person, "
        "c.tally_hour "
        "FROM (SELECT 1) LEFT JOIN links l ON l.alias = ? "
        "LEFT JOIN volunteers v ON v.key = COALESCE(l.person, ?) "
        "LEFT JOIN communities c ON c.platform = ? AND c.chat_id = ?",
        (key, key, platform, chat_id),
    ).fetchone()
    volunteer = (
        None
        if row[4] is None
        else Volunteer(
            key if row[11] is None else bytes(row[11]),
            row[0],
            row[1],
            bool(row[2]),
            row[3],
            datetime.fromtimestamp(row[4], UTC),
        )
    )
    community = (
        None
        if row[5] is None or chat_id is None
        else Community(
            row[5], platform, chat_id, row[6], bool(row[7]), row[8], bool(row[9]), row[10], row[12]
        )
    )
    return volunteer, community


def pledge(
    db: sqlite3.Connection,
    campaign_id: int,
    key: bytes,
    platform: str,
    chat_id: str | None,
    choice: str | None,
) -> PledgeResult:
    """Record a pledge (idempotent); counters change in the same transaction."""
    since = seconds()
    _ensure_volunteer(db, key, since)
    chosen = choice or "both"
    # A new pledge takes the campaign's next number in the same statement that stores it;
    # the counters follow only when it was new.
    if db.execute(
        "INSERT INTO pledges (campaign_id, volunteer, choice, number, created_at) "
        "SELECT id, ?, ?, next_number, ? FROM campaigns WHERE id = ? ON CONFLICT DO NOTHING",
        (key, chosen, since, campaign_id),
    ).rowcount:
        number, total = db.execute(
            "UPDATE campaigns SET pledged = pledged + 1, next_number = next_number + 1 "
            "WHERE id = ? RETURNING next_number - 1, pledged",
            (campaign_id,),
        ).fetchone()
        result = PledgeResult(PledgeStatus.NEW, number, chosen, total)
    else:
        row = db.execute(
            "SELECT choice, number FROM pledges WHERE campaign_id = ? AND volunteer = ?",
            (campaign_id, key),
        ).fetchone()
        if choice is not None and row[0] != choice:
            db.execute(
                "UPDATE pledges SET choice = ? WHERE campaign_id = ? AND volunteer = ?",
                (choice, campaign_id, key),
            )
            result = PledgeResult(PledgeStatus.UPDATED, row[1], choice)
        else:
            result = PledgeResult(PledgeStatus.ALREADY, row[1], row[0])
    if chat_id is not None:
        community_id = _ensure_community(db, platform, chat_id)
        linked = db.execute(
            "INSERT INTO pledge_communities (campaign_id, volunteer, community_id) "
            "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (campaign_id, key, community_id),
        ).rowcount
        if linked:
            db.execute(
                "INSERT INTO community_tallies (campaign_id, community_id, pledged) "
                "VALUES (?, ?, 1) ON CONFLICT DO UPDATE SET pledged = pledged + 1",
                (campaign_id, community_id),
            )
    return result


def mark_done(db: sqlite3.Connection, campaign_id: int, key: bytes) -> bool | None:
    """Record that a volunteer froze their accounts (counted in the same transaction)."""
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
        (timestamp(), campaign_id, key),
    )
    db.execute("UPDATE campaigns SET done = done + 1 WHERE id = ?", (campaign_id,))
    return True


def get_pledge(db: sqlite3.Connection, campaign_id: int, key: bytes) -> Pledge | None:
    """The volunteer's pledge in the campaign, if any."""
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
    return Pledge(row[0], row[1], datetime.fromtimestamp(row[2], UTC), int(count))


def unpledge(db: sqlite3.Connection, campaign_id: int, key: bytes) -> bool:
    """Withdraw a pledge, its counts with it; False when there was none."""
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


def tally(db: sqlite3.Connection, campaign_id: int, platform: str, chat_id: str | None) -> Tally:
    """Counts for one community and overall, read from counters (never a scan)."""
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


def set_language(db: sqlite3.Connection, key: bytes, language: str | None) -> None:
    """Store the volunteer's language (None: follow the platform)."""
    _ensure_volunteer(db, key, seconds())
    db.execute("UPDATE volunteers SET language = ? WHERE key = ?", (language, key))


def set_timezone(db: sqlite3.Connection, key: bytes, timezone: str) -> None:
    """Store the volunteer's time zone."""
    _ensure_volunteer(db, key, seconds())
    db.execute("UPDATE volunteers SET timezone = ? WHERE key = ?", (timezone, key))


def opt_in(
    db: sqlite3.Connection, key: bytes, dm_address: str | None, platform: str | None
) -> None:
    """A volunteer's reminders on, keeping the platform and address to write to."""
    key = links.resolve(db, key)
    _ensure_volunteer(db, key, seconds())
    db.execute(
        "UPDATE volunteers SET reminders = 1, dm_address = ?, dm_platform = ? WHERE key = ?",
        (dm_address, platform, key),
    )


def opt_out(db: sqlite3.Connection, key: bytes) -> bool:
    """A volunteer's reminders off: their address leaves the volunteers row, their queued
    messages go, and the rows already sent (or in flight) keep no address. Whether anything
    was dropped."""
    key = links.resolve(db, key)  # a linked account's platform refused: its person's address
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


def set_community_language(
    db: sqlite3.Connection, platform: str, chat_id: str, language: str
) -> None:
    """Store a community's language."""
    community_id = _ensure_community(db, platform, chat_id)
    db.execute("UPDATE communities SET language = ? WHERE id = ?", (language, community_id))


def set_community_subscribed(
    db: sqlite3.Connection, platform: str, chat_id: str, subscribed: bool
) -> None:
    """Subscribe a community to announcements and reminders, or not."""
    community_id = _ensure_community(db, platform, chat_id)
    db.execute(
        "UPDATE communities SET subscribed = ? WHERE id = ?",
        (int(subscribed), community_id),
    )


def set_tally_posts(
    db: sqlite3.Connection, platform: str, chat_id: str, enabled: bool, hour: int | None
) -> None:
    """Turn a community's periodic tally post on (at `hour`, None: the default slots) or
    off."""
    community_id = _ensure_community(db, platform, chat_id)
    db.execute(
        "UPDATE communities SET tally_posts = ?, tally_hour = ? WHERE id = ?",
        (int(enabled), hour if enabled else None, community_id),
    )


def set_web_page(db: sqlite3.Connection, platform: str, chat_id: str, token: str | None) -> None:
    """Give a community its web page at `token` (None: take it down)."""
    community_id = _ensure_community(db, platform, chat_id)
    db.execute("UPDATE communities SET web_page = ? WHERE id = ?", (token, community_id))


def web_page_tally(db: sqlite3.Connection, campaign_id: int, token: str) -> Tally | None:
    """The counts a community's web page shows (None: no page has this token)."""
    row = db.execute(
        "SELECT c.pledged, c.done, (SELECT t.pledged FROM community_tallies t "
        "  WHERE t.community_id = m.id AND t.campaign_id = c.id) "
        "FROM communities m, campaigns c WHERE m.web_page = ? AND c.id = ?",
        (token, campaign_id),
    ).fetchone()
    if row is None:
        return None
    return Tally(community=int(row[2] or 0), total=int(row[0]), done=int(row[1]))


def set_board(db: sqlite3.Connection, platform: str, chat_id: str, board_ref: str | None) -> None:
    """Remember the platform reference of a community's board message."""
    community_id = _ensure_community(db, platform, chat_id)
    db.execute("UPDATE communities SET board_ref = ? WHERE id = ?", (board_ref, community_id))


def boards(db: sqlite3.Connection, platform: str) -> list[tuple[str, str]]:
    """(chat id, board reference) of every community of a platform that has a board."""
    rows = db.execute(
        "SELECT chat_id, board_ref FROM communities "
        "WHERE platform = ? AND board_ref IS NOT NULL ORDER BY id",
        (platform,),
    ).fetchall()
    return [(str(row[0]), str(row[1])) for row in rows]


def move_community(
    db: sqlite3.Connection, platform: str, old_chat_id: str, new_chat_id: str
) -> bool:
    """Give a community a new chat id (a migrated group), keeping its pledges and board."""
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
    # The old row lets go of its web page's address first: addresses are unique.
    db.execute("DELETE FROM communities WHERE id = ?", (old.id,))
    db.execute(
        "UPDATE communities SET board_ref = COALESCE(board_ref, ?), "
        "language = COALESCE(language, ?), web_page = COALESCE(web_page, ?) WHERE id = ?",
        (old.board_ref, old.language, old.web_page, new.id),
    )
    return True


def forget(db: sqlite3.Connection, key: bytes) -> bool:
    """Delete a volunteer and all that hangs on them (pledges with their counts, their
    deliveries and links by cascade); False if there was nobody."""
    links.forget(db, key)
    campaigns = [
        row[0] for row in db.execute("SELECT campaign_id FROM pledges WHERE volunteer = ?", (key,))
    ]
    for campaign_id in campaigns:
        unpledge(db, campaign_id, key)
    return db.execute("DELETE FROM volunteers WHERE key = ?", (key,)).rowcount > 0


def export(db: sqlite3.Connection, campaign_id: int, key: bytes) -> VolunteerData:
    """Everything stored about a volunteer."""
    return VolunteerData(
        _volunteer(db, key), get_pledge(db, campaign_id, key), links.platforms(db, key)
    )


def set_window(
    db: sqlite3.Connection,
    campaign_id: int,
    start: datetime,
    end: datetime,
    rungs: dict[str, datetime],
) -> None:
    """Store an organizer's window and the ladder that goes with it, in one transaction."""
    db.execute(
        "UPDATE campaigns SET start_at = ?, end_at = ? WHERE id = ?",
        (start.astimezone(UTC).isoformat(), end.astimezone(UTC).isoformat(), campaign_id),
    )
    _replace_schedule(db, campaign_id, rungs)


def window(db: sqlite3.Connection, campaign_id: int) -> tuple[datetime, datetime] | None:
    """The freeze window an organizer set, if any."""
    row = db.execute(
        "SELECT start_at, end_at FROM campaigns WHERE id = ?", (campaign_id,)
    ).fetchone()
    if row is None or row[0] is None or row[1] is None:
        return None
    return datetime.fromisoformat(row[0]), datetime.fromisoformat(row[1])


def set_schedule(db: sqlite3.Connection, campaign_id: int, rungs: dict[str, datetime]) -> None:
    """Replace the campaign's reminder ladder (rung name -> moment, aware)."""
    _replace_schedule(db, campaign_id, rungs)


def schedule(db: sqlite3.Connection, campaign_id: int) -> dict[str, datetime]:
    """The campaign's reminder ladder."""
    rows = db.execute(
        "SELECT rung, due_at FROM schedule_rungs WHERE campaign_id = ? ORDER BY due_at",
        (campaign_id,),
    ).fetchall()
    return {row[0]: datetime.fromisoformat(row[1]) for row in rows}


def create_broadcast(
    db: sqlite3.Connection,
    campaign_id: int,
    key: str,
    kind: str,
    subject: str,
    default_language: str,
    volunteers: bool,
    tally_posts_only: bool,
    tally_hours: list[int] | None,
    only: str | None,
) -> tuple[Broadcast | None, bool]:
    """Create a broadcast and its communities' deliveries (`only`: the platforms as a JSON
    list, None for all); its opted-in volunteers come after, a chunk per transaction
    (expand_step). Whether creating it ended the campaign for private addresses."""
    now = timestamp()
    row = db.execute(
        "INSERT INTO broadcasts (campaign_id, key, kind, subject, created_at, expand_after, "
        "expand_language, expand_only) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (key) DO NOTHING RETURNING id",
        (
            campaign_id,
            key,
            kind,
            subject,
            now,
            b"" if volunteers else None,
            default_language,
            only,
        ),
    ).fetchall()
    if not row:
        return None, False
    broadcast_id = int(row[0][0])
    communities = db.execute(
        "INSERT INTO deliveries (broadcast_id, platform, address, language, updated_at) "
        "SELECT ?, platform, chat_id, COALESCE(language, ?), ? FROM communities "
        "WHERE subscribed = 1 AND tally_posts >= ?4 "
        "AND (?5 IS NULL OR platform IN (SELECT value FROM json_each(?5))) "
        "AND (?4 = 0 OR CASE WHEN ?6 IS NULL THEN tally_hour IS NULL "
        "ELSE tally_hour IN (SELECT value FROM json_each(?6)) END) ORDER BY id",
        (
            broadcast_id,
            default_language,
            now,
            int(tally_posts_only),
            only,
            None if tally_hours is None else json.dumps(tally_hours),
        ),
    ).rowcount
    db.execute("UPDATE broadcasts SET recipients = ? WHERE id = ?", (communities, broadcast_id))
    made = Broadcast(broadcast_id, key, kind, subject, communities)
    # the last reminder, with nobody to send it to: the campaign is over already
    return made, (not volunteers and _end_if_over(db, [broadcast_id]))


def expand_step(db: sqlite3.Connection, broadcast_id: int, chunk: int) -> tuple[int, bool, bool]:
    """Add the next `chunk` volunteers (in key order) who opted in to a broadcast's
    deliveries: (its recipients so far, whether every volunteer has been looked at, whether
    that ended the campaign for private addresses)."""
    row = db.execute(
        "SELECT expand_after, expand_language, expand_only, recipients FROM broadcasts "
        "WHERE id = ?",
        (broadcast_id,),
    ).fetchone()
    if row is None or row[0] is None:
        return (row[3] if row else 0), True, False
    after, language, only, recipients = row
    upper = db.execute(
        "SELECT MAX(key) FROM (SELECT key FROM volunteers WHERE key > ? ORDER BY key LIMIT ?)",
        (after, chunk),
    ).fetchone()[0]
    if upper is None:
        db.execute("UPDATE broadcasts SET expand_after = NULL WHERE id = ?", (broadcast_id,))
        return recipients, True, _end_if_over(db, [broadcast_id])
    added = db.execute(
        "INSERT INTO deliveries "
        "(broadcast_id, platform, address, language, volunteer, updated_at) "
        "SELECT :id, dm_platform, dm_address, COALESCE(language, :language), key, :now "
        "FROM volunteers WHERE key > :after AND key <= :upper "
        "AND reminders = 1 AND dm_address IS NOT NULL AND dm_platform IS NOT NULL "
        "AND (:only IS NULL OR dm_platform IN (SELECT value FROM json_each(:only))) "
        "ON CONFLICT DO NOTHING",
        {
            "id": broadcast_id,
            "language": language,
            "now": timestamp(),
            "after": after,
            "upper": upper,
            "only": only,
        },
    ).rowcount
    db.execute(
        "UPDATE broadcasts SET expand_after = ?, recipients = recipients + ? WHERE id = ?",
        (upper, added, broadcast_id),
    )
    return recipients + added, False, False


def unfinished_expansions(db: sqlite3.Connection) -> list[int]:
    """Broadcasts whose volunteers are not all added yet (a restart interrupted them)."""
    return [
        row[0] for row in db.execute("SELECT id FROM broadcasts WHERE expand_after IS NOT NULL")
    ]


def save_announcement(
    db: sqlite3.Connection, campaign_id: int, texts: dict[str, str], source: str
) -> int:
    """Keep an organizer's announcement (texts per language) until it is sent; its id."""
    return int(
        db.execute(
            "INSERT INTO announcements (campaign_id, texts, source, created_at) "
            "VALUES (?, ?, ?, ?) RETURNING id",
            (campaign_id, json.dumps(texts, ensure_ascii=False), source, timestamp()),
        ).fetchall()[0][0]
    )


def announcement(db: sqlite3.Connection, announcement_id: int) -> tuple[dict[str, str], str] | None:
    """An announcement's texts per language and its fallback language."""
    rows = db.execute(
        "SELECT texts, source FROM announcements WHERE id = ?", (announcement_id,)
    ).fetchall()
    return (json.loads(rows[0][0]), str(rows[0][1])) if rows else None


def recipient_counts(db: sqlite3.Connection) -> dict[str, int]:
    """How many recipients a broadcast would have now, per platform."""
    rows = db.execute(
        "SELECT platform, COUNT(*) FROM communities WHERE subscribed = 1 GROUP BY 1 "
        "UNION ALL SELECT dm_platform, COUNT(*) FROM volunteers "
        "WHERE reminders = 1 AND dm_platform IS NOT NULL GROUP BY 1"
    ).fetchall()
    counts: dict[str, int] = {}
    for platform, count in rows:
        counts[platform] = counts.get(platform, 0) + int(count)
    return counts


def claim_deliveries(db: sqlite3.Connection, platform: str, limit: int) -> list[Delivery]:
    """Mark up to `limit` pending deliveries of a platform in flight and return them."""
    rows = db.execute(
        "UPDATE deliveries SET state = 'inflight', attempts = attempts + 1, "
        "sending_at = NULL, updated_at = ? WHERE id IN (SELECT id FROM deliveries "
        "WHERE platform = ? AND state = 'pending' "
        "AND (not_before IS NULL OR not_before <= ?) ORDER BY id LIMIT ?) "
        "RETURNING id, broadcast_id, platform, address, language, attempts, "
        "volunteer IS NOT NULL",
        (timestamp(), platform, moment(datetime.now(UTC)), limit),
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
        Delivery(r[0], r[1], *subjects[r[1]], r[2], r[3], r[4], r[5], bool(r[6])) for r in rows
    ]
    return sorted(deliveries, key=lambda d: d.id)


def finish_deliveries(db: sqlite3.Connection, finished: list[Finished]) -> bool:
    """Record how deliveries ended; whether that ended the campaign for private addresses."""
    now = timestamp()
    db.executemany(
        # a retry for a reader who opted out meanwhile (no address left) is not one
        "UPDATE deliveries SET state = CASE WHEN ?1 = 'pending' AND address IS NULL "
        "THEN 'failed' ELSE ?1 END, updated_at = ?2, not_before = ?3, "
        "attempts = attempts - ?4 WHERE id = ?5 AND state = 'inflight'",
        [
            (
                f.state,
                now,
                moment(f.not_before) if f.not_before is not None else None,
                int(not f.counted),
                f.id,
            )
            for f in finished
        ],
    )
    ids = [f.id for f in finished]
    broadcasts = db.execute(
        f"SELECT DISTINCT broadcast_id FROM deliveries WHERE id IN ({','.join('?' * len(ids))})",
        ids,
    ).fetchall()
    return _end_if_over(db, [row[0] for row in broadcasts])


def next_due(db: sqlite3.Connection, platform: str) -> datetime | None:
    """When the platform's earliest waiting delivery comes due (None: nothing waits)."""
    row = db.execute(
        "SELECT MIN(COALESCE(not_before, '')) FROM deliveries "
        "WHERE platform = ? AND state = 'pending'",
        (platform,),
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return datetime.fromisoformat(row[0]) if row[0] else datetime.now(UTC)


def mark_sending(db: sqlite3.Connection, delivery_id: int) -> None:
    """A claimed delivery's request is about to go out."""
    db.execute(
        "UPDATE deliveries SET sending_at = ? WHERE id = ? AND state = 'inflight'",
        (moment(datetime.now(UTC)), delivery_id),
    )


def recover_inflight(
    db: sqlite3.Connection, platform: str, resend_within: timedelta | None
) -> tuple[dict[str, int], bool]:
    """After a crash, settle the platform's rows left in flight: those never sent go back
    to pending; those sent within `resend_within` too; the rest become unknown. The counts,
    and whether that ended the campaign for private addresses."""
    now = timestamp()
    cutoff = (
        moment(datetime.now(UTC) - resend_within)
        if resend_within is not None
        else "9999"  # nothing was sent after this: resend none
    )
    touched = db.execute(
        "SELECT DISTINCT broadcast_id FROM deliveries WHERE platform = ? AND state = 'inflight'",
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


def set_progress(db: sqlite3.Connection, broadcast_id: int, where: str | None) -> None:
    """Remember where a broadcast's progress message is (None: its report is shown)."""
    db.execute("UPDATE broadcasts SET progress = ? WHERE id = ?", (where, broadcast_id))


def open_progress(db: sqlite3.Connection, platform: str) -> list[tuple[int, str]]:
    """The broadcasts whose progress message on `platform` awaits its final report."""
    rows = db.execute(
        "SELECT id, progress FROM broadcasts WHERE progress IS NOT NULL "
        "AND json_extract(progress, '$.platform') = ? ORDER BY id",
        (platform,),
    ).fetchall()
    return [(int(row[0]), str(row[1])) for row in rows]


def delivery_counts(db: sqlite3.Connection, broadcast_id: int) -> dict[str, int]:
    """How many deliveries of a broadcast are in each state."""
    rows = db.execute(
        "SELECT state, COUNT(*) FROM deliveries WHERE broadcast_id = ? GROUP BY state",
        (broadcast_id,),
    ).fetchall()
    return {str(row[0]): int(row[1]) for row in rows}


def broadcasts_made(db: sqlite3.Connection, keys: list[str]) -> set[str]:
    """Which of these idempotency keys already have their broadcast (a rung sent)."""
    rows = db.execute(
        f"SELECT key FROM broadcasts WHERE key IN ({','.join('?' * len(keys))})",
        tuple(keys),
    ).fetchall()
    return {str(row[0]) for row in rows}


# -- row helpers ----------------------------------------------------------------------


def _replace_schedule(db: sqlite3.Connection, campaign_id: int, rungs: dict[str, datetime]) -> None:
    db.execute("DELETE FROM schedule_rungs WHERE campaign_id = ?", (campaign_id,))
    db.executemany(
        "INSERT INTO schedule_rungs VALUES (?, ?, ?)",
        [(campaign_id, rung, at.astimezone(UTC).isoformat()) for rung, at in rungs.items()],
    )


def _ensure_volunteer(db: sqlite3.Connection, key: bytes, now: int) -> None:
    db.execute(
        "INSERT INTO volunteers (key, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (key, now)
    )


def _ensure_community(db: sqlite3.Connection, platform: str, chat_id: str) -> int:
    row = db.execute(
        "SELECT id FROM communities WHERE platform = ? AND chat_id = ?", (platform, chat_id)
    ).fetchone()
    if row:
        return int(row[0])
    return int(
        db.execute(
            "INSERT INTO communities (platform, chat_id, created_at) VALUES (?, ?, ?) RETURNING id",
            (platform, chat_id, timestamp()),
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
    return Volunteer(key, row[0], row[1], bool(row[2]), row[3], datetime.fromtimestamp(row[4], UTC))


def _community(db: sqlite3.Connection, platform: str, chat_id: str) -> Community | None:
    row = db.execute(
        "SELECT id, language, subscribed, board_ref, tally_posts, web_page, tally_hour "
        "FROM communities "
        "WHERE platform = ? AND chat_id = ?",
        (platform, chat_id),
    ).fetchone()
    if row is None:
        return None
    return Community(
        row[0], platform, chat_id, row[1], bool(row[2]), row[3], bool(row[4]), row[5], row[6]
    )


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
        "AND b.expand_after IS NULL "  # every recipient is in: nothing more will come
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
