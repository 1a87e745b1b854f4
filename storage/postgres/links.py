"""Linked accounts on PostgreSQL: /link codes, joining two accounts into one volunteer (the
earlier pledge kept, counters exact), splitting them again. Each function runs inside the
caller's transaction. A join changes counters: it locks every campaign's counter row first,
as a pledge does, so it never waits on a pledge that waits on it."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from storage.base import LinkResult, LinkStatus

# Used and expired codes are kept this long after they expire, so that sending one again
# is answered "already used" or "expired" rather than "wrong"; then they go.
KEPT = timedelta(days=1)
RESOLVE = "COALESCE((SELECT person FROM links WHERE alias = $1), $1)"


async def resolve(db: asyncpg.Connection, key: bytes) -> bytes:
    """The key holding the volunteer of this account: its person's, if linked."""
    return bytes(await db.fetchval(f"SELECT {RESOLVE}", key))


async def platforms(db: asyncpg.Connection, person: bytes) -> tuple[str, ...]:
    """The platforms of a person's linked accounts, sorted (none: not linked)."""
    rows = await db.fetch(
        "SELECT DISTINCT platform FROM links WHERE person = $1 ORDER BY platform", person
    )
    return tuple(str(row[0]) for row in rows)


async def add_code(
    db: asyncpg.Connection, key: bytes, platform: str, code: bytes, expires_at: datetime
) -> bool:
    """Keep an account's new code (its earlier one goes); False if the hash is taken."""
    await db.execute("DELETE FROM link_codes WHERE expires_at < now() - $1::interval", KEPT)
    taken = await db.fetchval("SELECT key FROM link_codes WHERE code = $1", code)
    if taken is not None and bytes(taken) != key:
        return False
    await db.execute("DELETE FROM link_codes WHERE key = $1", key)
    await db.execute(
        "INSERT INTO link_codes (code, key, platform, expires_at) VALUES ($1, $2, $3, $4)",
        code,
        key,
        platform,
        expires_at,
    )
    return True


async def _failed(
    db: asyncpg.Connection, key: bytes, status: LinkStatus, now: datetime, window: timedelta
) -> LinkResult:
    await db.execute(
        "INSERT INTO link_attempts AS a (key, failures, since) VALUES ($1, 1, $2) "
        "ON CONFLICT (key) DO UPDATE SET "
        "failures = CASE WHEN a.since <= $3 THEN 1 ELSE a.failures + 1 END, "
        "since = CASE WHEN a.since <= $3 THEN EXCLUDED.since ELSE a.since END",
        key,
        now,
        now - window,
    )
    return LinkResult(status)


async def redeem(
    db: asyncpg.Connection,
    campaign_id: int,
    key: bytes,
    platform: str,
    code: bytes,
    now: datetime,
    attempts: int,
    window: timedelta,
) -> LinkResult:
    """Join the account `key` to the one that made `code` (see Storage.redeem_link_code)."""
    tried = await db.fetchrow(
        "SELECT failures, since FROM link_attempts WHERE key = $1 FOR UPDATE", key
    )
    if tried is not None and tried["since"] > now - window and tried["failures"] >= attempts:
        wait = (tried["since"] + window - now).total_seconds()
        return LinkResult(LinkStatus.THROTTLED, wait=max(1, int(wait)))
    row = await db.fetchrow(
        "SELECT key, platform, expires_at, used_at FROM link_codes WHERE code = $1 FOR UPDATE",
        code,
    )
    if row is None:
        return await _failed(db, key, LinkStatus.WRONG, now, window)
    maker, made_on = bytes(row["key"]), str(row["platform"])
    if row["used_at"] is not None:
        return await _failed(db, key, LinkStatus.USED, now, window)
    if row["expires_at"] < now:
        return await _failed(db, key, LinkStatus.EXPIRED, now, window)
    if made_on == platform:
        return LinkResult(LinkStatus.SAME_PLATFORM)
    # The counters next, in the order every pledge takes them, then the volunteers.
    await db.execute("SELECT 1 FROM campaigns ORDER BY id FOR NO KEY UPDATE")
    await db.execute("UPDATE link_codes SET used_at = $2 WHERE code = $1", code, now)
    await db.execute("DELETE FROM link_attempts WHERE key = $1", key)
    first, second = await resolve(db, maker), await resolve(db, key)
    if first == second:
        number = await _number(db, campaign_id, first)
        return LinkResult(LinkStatus.ALREADY, await platforms(db, first), number)
    keep, other = await _keeper(db, campaign_id, first, second)
    await db.execute(
        "INSERT INTO volunteers (key, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        keep,
        now.replace(microsecond=0),
    )
    await db.execute(
        "SELECT 1 FROM volunteers WHERE key = ANY($1::bytea[]) ORDER BY key FOR UPDATE",
        sorted([keep, other]),
    )
    await _merge(db, keep, other)
    for alias, on in ((maker, made_on), (key, platform)):
        await db.execute(
            "INSERT INTO links (alias, person, platform, created_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (alias) DO UPDATE SET person = EXCLUDED.person",
            alias,
            keep,
            on,
            now,
        )
    number = await _number(db, campaign_id, keep)
    return LinkResult(LinkStatus.LINKED, await platforms(db, keep), number)


async def _number(db: asyncpg.Connection, campaign_id: int, person: bytes) -> int | None:
    found = await db.fetchval(
        "SELECT number FROM pledges WHERE campaign_id = $1 AND volunteer = $2",
        campaign_id,
        person,
    )
    return None if found is None else int(found)


async def _keeper(
    db: asyncpg.Connection, campaign_id: int, first: bytes, second: bytes
) -> tuple[bytes, bytes]:
    """(the person kept, the one merged into it): whoever pledged first in the campaign,
    else the one who made the code."""
    a, b = await _number(db, campaign_id, first), await _number(db, campaign_id, second)
    if b is not None and (a is None or b < a):
        return second, first
    return first, second


async def _merge(db: asyncpg.Connection, keep: bytes, other: bytes) -> None:
    """Everything of `other` joins `keep`, then `other`'s volunteer row goes. Per campaign,
    a pledge only `other` had moves over whole (its number too); where both pledged, the
    kept pledge gains `other`'s communities and `other`'s pledge is withdrawn, so each
    community still counts the person once and the total drops by one."""
    pledged = await db.fetch(
        "SELECT campaign_id, choice, number, created_at, done_at FROM pledges WHERE volunteer = $1",
        other,
    )
    for row in pledged:
        campaign_id, done_at = row["campaign_id"], row["done_at"]
        communities = [
            r[0]
            for r in await db.fetch(
                "DELETE FROM pledge_communities WHERE campaign_id = $1 AND volunteer = $2 "
                "RETURNING community_id",
                campaign_id,
                other,
            )
        ]
        await db.execute(
            "DELETE FROM pledges WHERE campaign_id = $1 AND volunteer = $2", campaign_id, other
        )
        mine = await db.fetchrow(
            "SELECT done_at FROM pledges WHERE campaign_id = $1 AND volunteer = $2",
            campaign_id,
            keep,
        )
        if mine is None:  # the pledge moves over: no count changes
            await db.execute(
                "INSERT INTO pledges (campaign_id, volunteer, choice, number, created_at, "
                "done_at) VALUES ($1, $2, $3, $4, $5, $6)",
                campaign_id,
                keep,
                row["choice"],
                row["number"],
                row["created_at"],
                done_at,
            )
            await db.executemany(
                "INSERT INTO pledge_communities (campaign_id, volunteer, community_id) "
                "VALUES ($1, $2, $3)",
                [(campaign_id, keep, community) for community in communities],
            )
            continue
        froze = done_at is not None and mine["done_at"] is None
        if froze:  # they said they froze on the other account: the kept pledge says so
            await db.execute(
                "UPDATE pledges SET done_at = $3 WHERE campaign_id = $1 AND volunteer = $2",
                campaign_id,
                keep,
                done_at,
            )
        await db.execute(
            "UPDATE campaigns SET pledged = pledged - 1, done = done - $2 WHERE id = $1",
            campaign_id,
            int(done_at is not None and not froze),
        )
        for community in communities:
            joined = await db.execute(
                "INSERT INTO pledge_communities (campaign_id, volunteer, community_id) "
                "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                campaign_id,
                keep,
                community,
            )
            if joined.endswith(" 0"):
                await db.execute(
                    "UPDATE community_tallies SET pledged = pledged - 1 "
                    "WHERE campaign_id = $1 AND community_id = $2",
                    campaign_id,
                    community,
                )
    mine = await db.fetchrow("SELECT reminders FROM volunteers WHERE key = $1", keep)
    theirs = await db.fetchrow(
        "SELECT language, timezone, reminders, dm_address, dm_platform FROM volunteers "
        "WHERE key = $1",
        other,
    )
    if theirs is not None:
        await db.execute(
            "UPDATE volunteers SET language = COALESCE(language, $2), "
            "timezone = COALESCE(timezone, $3) WHERE key = $1",
            keep,
            theirs["language"],
            theirs["timezone"],
        )
        if theirs["reminders"] and not mine["reminders"]:  # they follow the person
            await db.execute(
                "UPDATE volunteers SET reminders = true, dm_address = $2, dm_platform = $3 "
                "WHERE key = $1",
                keep,
                theirs["dm_address"],
                theirs["dm_platform"],
            )
    # Messages waiting for `other` are the person's now; its links point at the person.
    await db.execute("UPDATE deliveries SET volunteer = $1 WHERE volunteer = $2", keep, other)
    await db.execute("UPDATE links SET person = $1 WHERE person = $2", keep, other)
    await db.execute("DELETE FROM volunteers WHERE key = $1", other)


async def unlink(db: asyncpg.Connection, key: bytes) -> str | None:
    """Split the person of `key` into separate accounts again (see Storage.unlink)."""
    person = await resolve(db, key)
    platform = await db.fetchval("SELECT platform FROM links WHERE alias = $1", person)
    if platform is None:
        return None
    await db.execute("DELETE FROM links WHERE person = $1", person)
    return str(platform)


async def forget(db: asyncpg.Connection, person: bytes) -> None:
    """Before a volunteer is deleted: the codes and attempts of each of their accounts
    (the links themselves go with the volunteer row)."""
    accounts = [person] + [
        bytes(row[0]) for row in await db.fetch("SELECT alias FROM links WHERE person = $1", person)
    ]
    await db.execute("DELETE FROM link_codes WHERE key = ANY($1::bytea[])", accounts)
    await db.execute("DELETE FROM link_attempts WHERE key = ANY($1::bytea[])", accounts)
