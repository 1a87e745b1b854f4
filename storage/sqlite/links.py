"""Linked accounts on SQLite: /link codes, joining two accounts into one volunteer (the
earlier pledge kept, counters exact), splitting them again. Plain functions over the
connection, run inside the writer's transaction like storage/sqlite/queries.py."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from storage.base import LinkResult, LinkStatus
from storage.sqlite.schema import seconds

# Used and expired codes are kept this long after they expire, so that sending one again
# is answered "already used" or "expired" rather than "wrong"; then they go.
KEPT = 86_400


def resolve(db: sqlite3.Connection, key: bytes) -> bytes:
    """The key holding the volunteer of this account: its person's, if linked."""
    row = db.execute("SELECT person FROM links WHERE alias = ?", (key,)).fetchone()
    return bytes(row[0]) if row else key


def platforms(db: sqlite3.Connection, person: bytes) -> tuple[str, ...]:
    """The platforms of a person's linked accounts, sorted (none: not linked)."""
    rows = db.execute(
        "SELECT DISTINCT platform FROM links WHERE person = ? ORDER BY platform", (person,)
    )
    return tuple(str(row[0]) for row in rows)


def add_code(
    db: sqlite3.Connection, key: bytes, platform: str, code: bytes, expires_at: datetime
) -> bool:
    """Keep an account's new code (its earlier one goes); False if the hash is taken."""
    now = seconds()
    db.execute("DELETE FROM link_codes WHERE expires_at < ?", (now - KEPT,))
    taken = db.execute("SELECT key FROM link_codes WHERE code = ?", (code,)).fetchone()
    if taken is not None and bytes(taken[0]) != key:
        return False
    db.execute("DELETE FROM link_codes WHERE key = ?", (key,))
    db.execute(
        "INSERT INTO link_codes (code, key, platform, expires_at) VALUES (?, ?, ?, ?)",
        (code, key, platform, int(expires_at.timestamp())),
    )
    return True


def _failed(
    db: sqlite3.Connection, key: bytes, status: LinkStatus, now: int, window: int
) -> LinkResult:
    db.execute(
        "INSERT INTO link_attempts (key, failures, since) VALUES (?, 1, ?) "
        "ON CONFLICT (key) DO UPDATE SET "
        "failures = CASE WHEN since <= ? THEN 1 ELSE failures + 1 END, "
        "since = CASE WHEN since <= ? THEN excluded.since ELSE since END",
        (key, now, now - window, now - window),
    )
    return LinkResult(status)


def redeem(
    db: sqlite3.Connection,
    campaign_id: int,
    key: bytes,
    platform: str,
    code: bytes,
    now: datetime,
    attempts: int,
    window: timedelta,
) -> LinkResult:
    """Join the account `key` to the one that made `code` (see Storage.redeem_link_code)."""
    at, span = int(now.timestamp()), int(window.total_seconds())
    tried = db.execute("SELECT failures, since FROM link_attempts WHERE key = ?", (key,)).fetchone()
    if tried is not None and tried[1] > at - span and tried[0] >= attempts:
        return LinkResult(LinkStatus.THROTTLED, wait=max(1, tried[1] + span - at))
    row = db.execute(
        "SELECT key, platform, expires_at, used_at FROM link_codes WHERE code = ?", (code,)
    ).fetchone()
    if row is None:
        return _failed(db, key, LinkStatus.WRONG, at, span)
    maker, made_on, expires_at, used_at = bytes(row[0]), str(row[1]), row[2], row[3]
    if used_at is not None:
        return _failed(db, key, LinkStatus.USED, at, span)
    if expires_at < at:
        return _failed(db, key, LinkStatus.EXPIRED, at, span)
    if made_on == platform:
        return LinkResult(LinkStatus.SAME_PLATFORM)
    db.execute("UPDATE link_codes SET used_at = ? WHERE code = ?", (at, code))
    db.execute("DELETE FROM link_attempts WHERE key = ?", (key,))
    first, second = resolve(db, maker), resolve(db, key)
    if first == second:
        return LinkResult(LinkStatus.ALREADY, platforms(db, first), _number(db, campaign_id, first))
    keep, other = _keeper(db, campaign_id, first, second)
    _ensure_volunteer(db, keep, at)
    _merge(db, keep, other)
    for alias, on in ((maker, made_on), (key, platform)):
        db.execute(
            "INSERT INTO links (alias, person, platform, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (alias) DO UPDATE SET person = excluded.person",
            (alias, keep, on, at),
        )
    return LinkResult(LinkStatus.LINKED, platforms(db, keep), _number(db, campaign_id, keep))


def _number(db: sqlite3.Connection, campaign_id: int, person: bytes) -> int | None:
    row = db.execute(
        "SELECT number FROM pledges WHERE campaign_id = ? AND volunteer = ?",
        (campaign_id, person),
    ).fetchone()
    return None if row is None else int(row[0])


def _keeper(
    db: sqlite3.Connection, campaign_id: int, first: bytes, second: bytes
) -> tuple[bytes, bytes]:
    """(the person kept, the one merged into it): whoever pledged first in the campaign,
    else the one who made the code."""
    a, b = _number(db, campaign_id, first), _number(db, campaign_id, second)
    if b is not None and (a is None or b < a):
        return second, first
    return first, second


def _ensure_volunteer(db: sqlite3.Connection, key: bytes, now: int) -> None:
    db.execute(
        "INSERT INTO volunteers (key, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (key, now)
    )


def _merge(db: sqlite3.Connection, keep: bytes, other: bytes) -> None:
    """Everything of `other` joins `keep`, then `other`'s volunteer row goes. Per campaign,
    a pledge only `other` had moves over whole (its number too); where both pledged, the
    kept pledge gains `other`'s communities and `other`'s pledge is withdrawn, so each
    community still counts the person once and the total drops by one."""
    pledged = db.execute(
        "SELECT campaign_id, choice, number, created_at, done_at FROM pledges WHERE volunteer = ?",
        (other,),
    ).fetchall()
    for campaign_id, choice, number, created_at, done_at in pledged:
        communities = [
            row[0]
            for row in db.execute(
                "DELETE FROM pledge_communities WHERE campaign_id = ? AND volunteer = ? "
                "RETURNING community_id",
                (campaign_id, other),
            )
        ]
        db.execute(
            "DELETE FROM pledges WHERE campaign_id = ? AND volunteer = ?", (campaign_id, other)
        )
        mine = db.execute(
            "SELECT done_at FROM pledges WHERE campaign_id = ? AND volunteer = ?",
            (campaign_id, keep),
        ).fetchone()
        if mine is None:  # the pledge moves over: no count changes
            db.execute(
                "INSERT INTO pledges (campaign_id, volunteer, choice, number, created_at, "
                "done_at) VALUES (?, ?, ?, ?, ?, ?)",
                (campaign_id, keep, choice, number, created_at, done_at),
            )
            db.executemany(
                "INSERT INTO pledge_communities (campaign_id, volunteer, community_id) "
                "VALUES (?, ?, ?)",
                [(campaign_id, keep, community) for community in communities],
            )
            continue
        # Both pledged: one pledge less in all; communities only `other` counted in keep
        # their count (now the kept pledge's), those both counted in lose one.
        froze = done_at is not None and mine[0] is None
        if froze:  # they said they froze on the other account: the kept pledge says so
            db.execute(
                "UPDATE pledges SET done_at = ? WHERE campaign_id = ? AND volunteer = ?",
                (done_at, campaign_id, keep),
            )
        db.execute(
            "UPDATE campaigns SET pledged = pledged - 1, done = done - ? WHERE id = ?",
            (int(done_at is not None and not froze), campaign_id),
        )
        for community in communities:
            joined = db.execute(
                "INSERT INTO pledge_communities (campaign_id, volunteer, community_id) "
                "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (campaign_id, keep, community),
            ).rowcount
            if not joined:
                db.execute(
                    "UPDATE community_tallies SET pledged = pledged - 1 "
                    "WHERE campaign_id = ? AND community_id = ?",
                    (campaign_id, community),
                )
    mine = db.execute(
        "SELECT language, timezone, reminders FROM volunteers WHERE key = ?", (keep,)
    ).fetchone()
    theirs = db.execute(
        "SELECT language, timezone, reminders, dm_address, dm_platform FROM volunteers "
        "WHERE key = ?",
        (other,),
    ).fetchone()
    if theirs is not None:
        db.execute(
            "UPDATE volunteers SET language = COALESCE(language, ?), "
            "timezone = COALESCE(timezone, ?) WHERE key = ?",
            (theirs[0], theirs[1], keep),
        )
        if theirs[2] and not mine[2]:  # reminders only there: they follow the person
            db.execute(
                "UPDATE volunteers SET reminders = 1, dm_address = ?, dm_platform = ? "
                "WHERE key = ?",
                (theirs[3], theirs[4], keep),
            )
    # Messages waiting for `other` are the person's now; its links point at the person.
    db.execute("UPDATE deliveries SET volunteer = ? WHERE volunteer = ?", (keep, other))
    db.execute("UPDATE links SET person = ? WHERE person = ?", (keep, other))
    db.execute("DELETE FROM volunteers WHERE key = ?", (other,))


def unlink(db: sqlite3.Connection, key: bytes) -> str | None:
    """Split the person of `key` into separate accounts again (see Storage.unlink)."""
    person = resolve(db, key)
    row = db.execute("SELECT platform FROM links WHERE alias = ?", (person,)).fetchone()
    if row is None:
        return None
    db.execute("DELETE FROM links WHERE person = ?", (person,))
    return str(row[0])


def forget(db: sqlite3.Connection, person: bytes) -> None:
    """Before a volunteer is deleted: the codes and attempts of each of their accounts
    (the links themselves go with the volunteer row)."""
    accounts = [person] + [
        bytes(row[0]) for row in db.execute("SELECT alias FROM links WHERE person = ?", (person,))
    ]
    for account in accounts:
        db.execute("DELETE FROM link_codes WHERE key = ?", (account,))
        db.execute("DELETE FROM link_attempts WHERE key = ?", (account,))
