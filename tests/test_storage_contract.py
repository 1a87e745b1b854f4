"""One contract every storage backend must meet: each test runs on SQLite and on PostgreSQL
(a throwaway server, a fresh database per test; `pytest -m 'not postgres'` leaves it out)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.base import Finished, LinkResult, LinkStatus, PledgeStatus, Storage, Tally
from storage.postgres import PostgresStorage
from storage.sqlite import SQLiteStorage

# A backend's name -> given the test's request and tmp_path, a maker of storages that all
# open the same database (a second one is the same data after a restart).
Maker = Callable[[], Storage]


def _sqlite(request: pytest.FixtureRequest, tmp: Path) -> Maker:
    return lambda: SQLiteStorage(tmp / "contract.sqlite3")


def _postgres(request: pytest.FixtureRequest, tmp: Path) -> Maker:
    url: str = request.getfixturevalue("postgres_url")
    return lambda: PostgresStorage(url)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Maker]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}
MARKS = {"postgres": [pytest.mark.postgres]}


@pytest.fixture(params=[pytest.param(name, marks=MARKS.get(name, [])) for name in sorted(BACKENDS)])
def make_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Maker:
    return BACKENDS[request.param](request, tmp_path)


@pytest.fixture
async def storage(make_storage: Maker) -> AsyncIterator[Storage]:
    backend = make_storage()
    await backend.open()
    yield backend
    await backend.close()


def key(n: int) -> bytes:
    return n.to_bytes(32, "big")


async def test_campaigns_are_created_once(storage: Storage) -> None:
    first = await storage.ensure_campaign("a")
    assert await storage.ensure_campaign("a") == first
    assert await storage.ensure_campaign("b") != first


async def test_pledge_is_idempotent_and_counted_once(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    first = await storage.pledge(c, key(1), "telegram", "-100", "both")
    again = await storage.pledge(c, key(1), "telegram", "-100", "both")
    assert (first.status, first.number) == (PledgeStatus.NEW, 1)
    assert (again.status, again.number) == (PledgeStatus.ALREADY, 1)
    assert await storage.tally(c, "telegram", "-100") == type(await storage.tally(c, "x", None))(
        community=1, total=1
    )


async def test_changing_the_accounts_updates_without_recounting(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    await storage.pledge(c, key(1), "telegram", None, "both")
    result = await storage.pledge(c, key(1), "telegram", None, "facebook")
    assert result.status is PledgeStatus.UPDATED and result.choice == "facebook"
    assert (await storage.tally(c, "telegram", None)).total == 1


async def test_one_volunteer_counts_in_each_community_but_once_overall(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    await storage.pledge(c, key(1), "telegram", "g1", "both")
    await storage.pledge(c, key(1), "telegram", "g2", "both")
    await storage.pledge(c, key(2), "telegram", "g2", "both")
    assert (await storage.tally(c, "telegram", "g1")).community == 1
    assert (await storage.tally(c, "telegram", "g2")).community == 2
    assert (await storage.tally(c, "discord", "g2")).community == 0
    assert (await storage.tally(c, "telegram", None)).total == 2
    assert await storage.unpledge(c, key(1))
    assert (await storage.tally(c, "telegram", "g1")).community == 0
    assert (await storage.tally(c, "telegram", "g2")).community == 1
    assert (await storage.tally(c, "telegram", None)).total == 1
    assert not await storage.unpledge(c, key(1))


async def test_numbers_are_never_reused_after_a_withdrawal(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    await storage.pledge(c, key(1), "console", None, "both")
    await storage.unpledge(c, key(1))
    again = await storage.pledge(c, key(1), "console", None, "both")
    assert again.number == 2


async def test_concurrent_pledges_keep_exact_counters(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    results = await asyncio.gather(
        *(storage.pledge(c, key(i % 300), "discord", f"g{i % 3}", "both") for i in range(900))
    )
    assert sum(r.status is PledgeStatus.NEW for r in results) == 300
    assert sorted(r.number for r in results if r.status is PledgeStatus.NEW) == list(range(1, 301))
    assert (await storage.tally(c, "discord", None)).total == 300
    for g in range(3):
        assert (await storage.tally(c, "discord", f"g{g}")).community == 100


async def test_reminder_address_is_kept_only_while_opted_in(storage: Storage) -> None:
    await storage.set_reminders(key(1), True, "12345")
    c = await storage.ensure_campaign("c")
    data = await storage.export(c, key(1))
    assert data.volunteer is not None and data.volunteer.dm_address == "12345"
    await storage.set_reminders(key(1), False, "12345")
    data = await storage.export(c, key(1))
    assert data.volunteer is not None and data.volunteer.dm_address is None
    assert not data.volunteer.reminders


async def test_opting_out_stores_nothing_about_a_stranger(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    await storage.set_reminders(key(9), False, None)
    data = await storage.export(c, key(9))
    assert data.volunteer is None and data.pledge is None


async def test_volunteer_and_community_settings_round_trip(storage: Storage) -> None:
    await storage.set_language(key(1), "ar")
    await storage.set_timezone(key(1), "Africa/Cairo")
    await storage.set_community_language("telegram", "-5", "fr")
    await storage.set_community_subscribed("telegram", "-5", False)
    await storage.set_board("telegram", "-5", "msg:77")
    volunteer, community = await storage.load_context(key(1), "telegram", "-5")
    assert volunteer is not None and (volunteer.language, volunteer.timezone) == (
        "ar",
        "Africa/Cairo",
    )
    assert community is not None
    assert (community.language, community.subscribed, community.board_ref) == (
        "fr",
        False,
        "msg:77",
    )
    assert await storage.load_context(key(2), "telegram", "-6") == (None, None)


async def test_forget_removes_everything_and_the_counts(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    await storage.pledge(c, key(1), "telegram", "g", "both")
    await storage.set_reminders(key(1), True, "42")
    assert await storage.forget(key(1))
    assert await storage.tally(c, "telegram", "g") == type(await storage.tally(c, "t", "g"))(0, 0)
    data = await storage.export(c, key(1))
    assert data.volunteer is None and data.pledge is None
    assert not await storage.forget(key(1))


# SQLite only: it hands the writer a function of the sqlite3 connection. PostgreSQL's group
# commit has its own test (tests/test_postgres_concurrency.py).
async def test_a_failing_operation_does_not_sink_its_batch(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "batch.sqlite3")
    await storage.open()
    c = await storage.ensure_campaign("c")

    def broken(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO volunteers (key, created_at) VALUES (?, 0)", (key(5),))
        db.execute(
            "INSERT INTO pledges (campaign_id, volunteer, choice, number, created_at) "
            "VALUES (?, ?, 'both', 99, 0)",
            (c, key(5)),
        )
        raise RuntimeError("half-way")

    outcomes = await asyncio.gather(
        storage.pledge(c, key(1), "console", None, "both"),
        storage._call(broken),
        storage.pledge(c, key(2), "console", None, "both"),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], RuntimeError)
    assert (await storage.tally(c, "console", None)).total == 2
    assert await storage.get_pledge(c, key(5)) is None  # rolled back alone
    assert (await storage.export(c, key(5))).volunteer is None
    await storage.close()


async def test_data_survives_a_restart(make_storage: Maker) -> None:
    first = make_storage()
    await first.open()
    c = await first.ensure_campaign("c")
    await first.pledge(c, key(1), "console", "g", "both")
    await first.close()
    second = make_storage()
    await second.open()
    assert (await second.tally(await second.ensure_campaign("c"), "console", "g")).total == 1
    await second.close()


async def test_a_migrated_community_keeps_pledges_and_board(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    await storage.pledge(c, key(1), "telegram", "-1", "both")
    await storage.set_board("telegram", "-1", "55")
    assert await storage.move_community("telegram", "-1", "-1009")
    assert not await storage.move_community("telegram", "-1", "-1009")
    assert (await storage.tally(c, "telegram", "-1009")).community == 1
    assert (await storage.tally(c, "telegram", "-1")).community == 0
    assert await storage.boards("telegram") == [("-1009", "55")]
    assert await storage.boards("discord") == []


async def test_a_community_web_page_shows_its_counts_until_taken_down(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    await storage.pledge(c, key(1), "telegram", "-1", "both")
    await storage.pledge(c, key(2), "telegram", "-1", "both")
    await storage.pledge(c, key(3), "discord", "7", "both")
    assert await storage.web_page_tally(c, "a" * 24) is None
    await storage.set_web_page("telegram", "-1", "a" * 24)
    await storage.set_web_page("discord", "8", "b" * 24)  # a community nobody pledged in yet
    assert await storage.web_page_tally(c, "a" * 24) == Tally(community=2, total=3, done=0)
    assert await storage.web_page_tally(c, "b" * 24) == Tally(community=0, total=3, done=0)
    context = await storage.load_context(key(1), "telegram", "-1")
    assert context[1] is not None and context[1].web_page == "a" * 24
    # A migrated group keeps its page, even merged into a community that used the new id.
    await storage.pledge(c, key(4), "telegram", "-1009", "both")
    assert await storage.move_community("telegram", "-1", "-1009")
    assert await storage.web_page_tally(c, "a" * 24) == Tally(community=3, total=4, done=0)
    await storage.set_web_page("telegram", "-1009", None)
    assert await storage.web_page_tally(c, "a" * 24) is None
    context = await storage.load_context(key(1), "telegram", "-1009")
    assert context[1] is not None and context[1].web_page is None


async def test_pledging_again_without_a_choice_keeps_the_accounts(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    first = await storage.pledge(c, key(1), "console", None, "instagram")
    again = await storage.pledge(c, key(1), "console", None, None)
    assert (again.status, again.choice, again.number) == (PledgeStatus.ALREADY, "instagram", 1)
    fresh = await storage.pledge(c, key(2), "console", None, None)
    assert fresh.choice == "both" and first.choice == "instagram"


async def test_a_migration_noticed_late_merges_both_communities(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    await storage.pledge(c, key(1), "telegram", "-1", "both")
    await storage.pledge(c, key(2), "telegram", "-1", "both")
    await storage.set_board("telegram", "-1", "55")
    await storage.pledge(c, key(2), "telegram", "-1009", "both")  # already used the new id
    await storage.pledge(c, key(3), "telegram", "-1009", "both")
    assert await storage.move_community("telegram", "-1", "-1009")
    assert (await storage.tally(c, "telegram", "-1009")).community == 3
    assert (await storage.tally(c, "telegram", "-1")).community == 0
    assert await storage.boards("telegram") == [("-1009", "55")]
    assert (await storage.tally(c, "telegram", None)).total == 3


async def test_a_broadcast_expands_once_to_subscribers_in_their_languages(
    storage: Storage,
) -> None:
    c = await storage.ensure_campaign("c")
    await storage.pledge(c, key(1), "telegram", "-1", "both")  # creates community -1
    await storage.set_community_language("telegram", "-1", "fr")
    await storage.set_community_subscribed("discord", "g2", False)
    await storage.set_reminders(key(1), True, "111", "telegram")
    await storage.set_language(key(1), "ar")
    await storage.set_reminders(key(2), True, "222", "discord")
    await storage.set_reminders(key(3), False, None)
    first = await storage.create_broadcast(c, "reminder:c:start", "reminder", "start", "en")
    again = await storage.create_broadcast(c, "reminder:c:start", "reminder", "start", "en")
    assert first is not None and first.recipients == 3 and again is None
    telegram = await storage.claim_deliveries("telegram", 10)
    assert {(d.address, d.language, d.personal) for d in telegram} == {
        ("-1", "fr", False),
        ("111", "ar", True),
    }
    assert await storage.claim_deliveries("telegram", 10) == []  # claimed once
    (discord,) = await storage.claim_deliveries("discord", 10)
    assert (discord.address, discord.language, discord.subject) == ("222", "en", "start")
    await storage.finish_deliveries(
        [Finished(telegram[0].id, "sent"), Finished(telegram[1].id, "pending")]
    )
    assert await storage.delivery_counts(first.id) == {"sent": 1, "pending": 1, "inflight": 1}
    await storage.mark_sending(discord.id)  # its request went out, then the process died
    assert await storage.recover_inflight("discord", None) == {"pending": 0, "unknown": 1}
    assert (await storage.delivery_counts(first.id))["unknown"] == 1


async def test_after_a_crash_only_what_went_out_is_in_doubt(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    for n in range(1, 5):
        await storage.set_reminders(key(n), True, str(n), "telegram")
    made = await storage.create_broadcast(c, "b1", "reminder", "start", "en")
    assert made is not None
    waiting, sent_now, sent_before, _ = await storage.claim_deliveries("telegram", 10)
    await storage.mark_sending(sent_now.id)
    await storage.mark_sending(sent_before.id)
    # Resend what went out in the last minute (a platform remembering nonces that long):
    # the row that never went out and the recent one are sent again, nothing is unknown.
    assert await storage.recover_inflight("telegram", timedelta(minutes=1)) == {
        "pending": 4,
        "unknown": 0,
    }
    rows = {row.id: row for row in await storage.claim_deliveries("telegram", 10)}
    assert waiting.id in rows and sent_now.id in rows
    await storage.mark_sending(sent_now.id)
    await asyncio.sleep(0.01)
    # Resend only what went out in the last millisecond: the older send is now in doubt.
    assert await storage.recover_inflight("telegram", timedelta(milliseconds=1)) == {
        "pending": 3,
        "unknown": 1,
    }
    assert (await storage.delivery_counts(made.id)) == {"pending": 3, "unknown": 1}


async def test_a_delivery_told_to_wait_is_not_claimed_before_its_time(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    await storage.set_reminders(key(1), True, "111", "telegram")
    await storage.set_reminders(key(2), True, "222", "telegram")
    assert await storage.create_broadcast(c, "b1", "reminder", "start", "en") is not None
    waiting, failing = await storage.claim_deliveries("telegram", 10)
    assert (waiting.attempts, failing.attempts) == (1, 1)
    later = datetime.now(UTC) + timedelta(hours=1)
    await storage.finish_deliveries(
        [
            Finished(waiting.id, "pending", later, counted=False),  # a 429: not an attempt
            Finished(failing.id, "pending", datetime.now(UTC) - timedelta(seconds=1)),
        ]
    )
    assert await storage.next_due("telegram") <= datetime.now(UTC)
    (again,) = await storage.claim_deliveries("telegram", 10)
    assert (again.id, again.attempts) == (failing.id, 2)
    await storage.finish_deliveries([Finished(again.id, "sent")])
    assert abs((await storage.next_due("telegram") - later).total_seconds()) < 0.01
    assert await storage.claim_deliveries("telegram", 10) == []
    assert await storage.next_due("discord") is None


async def test_finishing_a_delivery_recovered_meanwhile_changes_nothing(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    await storage.set_reminders(key(1), True, "111", "discord")
    made = await storage.create_broadcast(c, "b1", "reminder", "start", "en")
    assert made is not None
    (row,) = await storage.claim_deliveries("discord", 10)
    assert await storage.recover_inflight("discord", timedelta(minutes=2)) == {
        "pending": 1,
        "unknown": 0,
    }
    await storage.finish_deliveries([Finished(row.id, "failed")])  # a late, stale outcome
    assert await storage.delivery_counts(made.id) == {"pending": 1}


async def test_tally_posts_go_only_to_communities_that_turned_them_on(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    await storage.set_community_subscribed("telegram", "-1", True)
    await storage.set_tally_posts("telegram", "-2", True)
    await storage.set_reminders(key(1), True, "111", "telegram")
    made = await storage.create_broadcast(
        c, "tally:1", "tally", "1", "en", volunteers=False, tally_posts_only=True
    )
    assert made is not None and made.recipients == 1
    (row,) = await storage.claim_deliveries("telegram", 10)
    assert row.address == "-2"
    _volunteer, community = await storage.load_context(b"", "telegram", "-2")
    assert community is not None and community.tally_posts
    await storage.set_tally_posts("telegram", "-2", False)
    _volunteer, community = await storage.load_context(b"", "telegram", "-2")
    assert community is not None and not community.tally_posts


async def test_a_broadcast_reaches_only_the_platforms_being_served(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    await storage.set_community_subscribed("telegram", "-1", True)
    await storage.set_community_subscribed("console", "room", True)
    await storage.set_reminders(key(1), True, "111", "telegram")
    await storage.set_reminders(key(2), True, "dm-2", "console")
    made = await storage.create_broadcast(
        c, "b1", "reminder", "start", "en", platforms={"telegram"}
    )
    assert made is not None and made.recipients == 2
    assert await storage.claim_deliveries("console", 10) == []
    assert {d.address for d in await storage.claim_deliveries("telegram", 10)} == {"-1", "111"}


async def test_an_organizers_window_is_stored(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    assert await storage.window(c) is None
    start = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
    await storage.set_window(c, start, start + timedelta(hours=24), {"start": start})
    assert await storage.window(c) == (start, start + timedelta(hours=24))
    assert await storage.schedule(c) == {"start": start}  # stored together


async def test_forget_and_opt_out_drop_queued_messages(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    await storage.set_reminders(key(1), True, "111", "telegram")
    await storage.set_reminders(key(2), True, "222", "telegram")
    made = await storage.create_broadcast(c, "b1", "reminder", "start", "en")
    assert made is not None and made.recipients == 2
    await storage.forget(key(1))
    await storage.set_reminders(key(2), False, None)
    assert await storage.claim_deliveries("telegram", 10) == []


async def test_a_progress_message_is_found_again_until_reported(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    made = await storage.create_broadcast(c, "a1", "announcement", "1", "en")
    assert made is not None
    where = '{"chat": 5, "message": 9, "platform": "telegram"}'
    await storage.set_progress(made.id, where)
    assert await storage.open_progress("telegram") == [(made.id, where)]
    assert await storage.open_progress("discord") == []
    await storage.set_progress(made.id, None)  # the report was shown
    assert await storage.open_progress("telegram") == []


async def test_opting_out_leaves_no_address_on_any_delivery(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    await storage.set_reminders(key(1), True, "111", "telegram")
    first = await storage.create_broadcast(c, "b1", "reminder", "before_24h", "en")
    assert first is not None
    (row,) = await storage.claim_deliveries("telegram", 10)
    await storage.finish_deliveries([Finished(row.id, "sent")])
    second = await storage.create_broadcast(c, "b2", "reminder", "before_1h", "en")
    assert second is not None
    (inflight,) = await storage.claim_deliveries("telegram", 10)
    await storage.set_reminders(key(1), False, None)
    # the row in flight is recorded as it ends, and never sent again after a crash
    await storage.finish_deliveries([Finished(inflight.id, "unreachable")])
    assert await storage.delivery_counts(first.id) == {"sent": 1}
    assert await storage.delivery_counts(second.id) == {"unreachable": 1}
    assert await storage.recover_inflight("telegram", None) == {"pending": 0, "unknown": 0}
    assert await storage.claim_deliveries("telegram", 10) == []
    assert await storage.recipient_counts() == {}


async def test_the_last_reminder_delivered_ends_the_campaign_for_addresses(
    storage: Storage,
) -> None:
    from bot.services.campaign import reminder_key

    c = await storage.ensure_campaign("c")
    end = datetime(2026, 12, 17, 8, 0, tzinfo=UTC)
    checkin = end + timedelta(hours=1)
    await storage.set_schedule(
        c, {"start": end - timedelta(days=1), "end": end, "checkin": checkin}
    )
    await storage.set_reminders(key(1), True, "111", "telegram")
    await storage.set_reminders(key(2), True, "222", "telegram")
    for rung, moment in (("end", end), ("checkin", checkin)):
        made = await storage.create_broadcast(
            c, reminder_key("c", rung, moment), "reminder", rung, "en"
        )
        assert made is not None and made.recipients == 2
        rows = await storage.claim_deliveries("telegram", 10)
        await storage.finish_deliveries([Finished(rows[0].id, "sent")])
        # the check-in is not over until its last recipient is settled: addresses stay
        volunteer = (await storage.export(c, key(1))).volunteer
        assert volunteer is not None and volunteer.dm_address == "111"
        await storage.finish_deliveries([Finished(rows[1].id, "sent")])
    for n in (1, 2):
        volunteer = (await storage.export(c, key(n))).volunteer
        assert volunteer is not None and volunteer.dm_address is None
        assert not volunteer.reminders
    assert await storage.recipient_counts() == {}
    # opting in after the end is the volunteer's new choice: kept
    await storage.set_reminders(key(1), True, "111", "telegram")
    assert await storage.recipient_counts() == {"telegram": 1}


async def test_a_retry_for_a_reader_who_opted_out_is_not_queued_again(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    await storage.set_reminders(key(1), True, "111", "telegram")
    made = await storage.create_broadcast(c, "b1", "reminder", "start", "en")
    assert made is not None
    (row,) = await storage.claim_deliveries("telegram", 10)
    await storage.set_reminders(key(1), False, None)
    later = datetime.now(UTC) - timedelta(seconds=1)
    await storage.finish_deliveries([Finished(row.id, "pending", later)])  # a passing failure
    assert await storage.delivery_counts(made.id) == {"failed": 1}
    assert await storage.claim_deliveries("telegram", 10) == []


async def opted_in(storage: Storage, count: int, platform: str = "telegram") -> None:
    """`count` volunteers who opted in to reminders, written in a few transactions."""
    await asyncio.gather(
        *(storage.set_reminders(key(n), True, str(n), platform) for n in range(1, count + 1))
    )


async def test_a_large_broadcast_reaches_everyone_once_with_writes_in_between(
    storage: Storage,
) -> None:
    c = await storage.ensure_campaign("c")
    await opted_in(storage, 5_000)
    started = asyncio.Event()
    creating = asyncio.create_task(
        storage.create_broadcast(c, "b1", "reminder", "start", "en", started=started.set)
    )
    await asyncio.sleep(0)  # the creation is queued first
    pledged = await storage.pledge(c, key(9_999_999), "telegram", None, "both")
    # The press was written while the recipients were still being added, not after them.
    assert pledged.status is PledgeStatus.NEW and not creating.done()
    made = await creating
    # It returns once the first rows can be sent; the rest is added in the background.
    assert made is not None and 0 < made.recipients < 5_000 and started.is_set()
    await storage.expansions_done()
    assert await storage.delivery_counts(made.id) == {"pending": 5_000}
    claimed = await storage.claim_deliveries("telegram", 6_000)
    assert sorted(int(d.address) for d in claimed) == list(range(1, 5_001))


async def test_sending_may_start_before_every_recipient_is_added(storage: Storage) -> None:
    c = await storage.ensure_campaign("c")
    await opted_in(storage, 5_000)
    first_rows: list[int] = []

    async def look() -> None:
        first_rows.append(len(await storage.claim_deliveries("telegram", 10_000)))

    looks: list[asyncio.Task[None]] = []
    made = await storage.create_broadcast(
        c,
        "b1",
        "reminder",
        "start",
        "en",
        started=lambda: looks.append(asyncio.ensure_future(look())),
    )
    await asyncio.gather(*looks)
    await storage.expansions_done()
    assert made is not None and 0 < made.recipients < 5_000
    assert len(first_rows) == 1 and 0 < first_rows[0] < 5_000
    claimed = first_rows[0]
    assert await storage.delivery_counts(made.id) == {
        "pending": 5_000 - claimed,
        "inflight": claimed,
    }


# -- linked accounts (/link) ----------------------------------------------------------------

MINUTES_10 = timedelta(minutes=10)


def code(n: int) -> bytes:
    return (900 + n).to_bytes(32, "big")


async def link(
    storage: Storage, c: int, maker: int, made_on: str, sender: int, sent_on: str, n: int = 1
) -> LinkResult:
    now = datetime.now(UTC)
    assert await storage.add_link_code(key(maker), made_on, code(n), now + MINUTES_10)
    return await storage.redeem_link_code(c, key(sender), sent_on, code(n), now, 5, MINUTES_10)


async def test_linking_two_pledged_accounts_keeps_the_earlier_pledge_counts_exact(
    storage: Storage,
) -> None:
    c = await storage.ensure_campaign("c")
    await storage.pledge(c, key(9), "telegram", "-1", "both")  # someone else, number 1
    await storage.pledge(c, key(1), "telegram", "-1", "both")  # number 2, in -1 and -2
    await storage.pledge(c, key(1), "telegram", "-2", "both")
    await storage.pledge(c, key(2), "discord", "g1", "instagram")  # number 3, the same person
    await storage.pledge(c, key(2), "discord", "g2", "instagram")
    assert await storage.mark_done(c, key(2))  # said they froze, on Discord
    await storage.set_language(key(2), "fr")
    before = await storage.tally(c, "", None)
    assert (before.total, before.done) == (3, 1)

    result = await link(storage, c, 2, "discord", 1, "telegram")  # made on Discord
    assert result.status is LinkStatus.LINKED
    assert (result.platforms, result.number) == (("discord", "telegram"), 2)
    after = await storage.tally(c, "", None)
    assert (after.total, after.done) == (2, 1)  # one person less, who froze
    for platform, chat, count in (
        ("telegram", "-1", 2),
        ("telegram", "-2", 1),
        ("discord", "g1", 1),
        ("discord", "g2", 1),
    ):
        assert (await storage.tally(c, platform, chat)).community == count, chat
    # Either account reads the one volunteer: the earlier pledge, the language chosen; alone
    # or among reads made at the same moment (which a backend may send together).
    for account in (1, 2):
        volunteer, _ = await storage.load_context(key(account), "console", None)
        assert volunteer is not None and volunteer.key == key(1) and volunteer.language == "fr"
    together = await asyncio.gather(
        *(storage.load_context(key(n), "telegram", "-1") for n in (2, 9, 1, 7, 2))
    )
    assert [v.key if v else None for v, _ in together] == [key(1), key(9), key(1), None, key(1)]
    assert all(c is not None and c.chat_id == "-1" for _, c in together)
    data = await storage.export(c, key(1))
    assert data.pledge is not None and data.pledge.number == 2 and data.pledge.communities == 4
    assert data.platforms == ("discord", "telegram")
    # A later pledge on either account is the same pledge.
    again = await storage.pledge(c, key(1), "discord", "g3", None)
    assert again.status is PledgeStatus.ALREADY and again.number == 2
    assert (await storage.tally(c, "", None)).total == 2


async def test_a_pledge_made_only_on_the_second_account_moves_over_whole(
    storage: Storage,
) -> None:
    c = await storage.ensure_campaign("c")
    await storage.set_timezone(key(1), "Europe/Paris")  # no pledge: just a setting
    await storage.pledge(c, key(2), "discord", "g1", "facebook")
    result = await link(storage, c, 1, "telegram", 2, "discord")
    assert (result.status, result.number) == (LinkStatus.LINKED, 1)
    volunteer, _ = await storage.load_context(key(1), "console", None)
    assert volunteer is not None and volunteer.key == key(2)  # the one who pledged
    assert volunteer.timezone == "Europe/Paris"
    assert (await storage.tally(c, "discord", "g1")).community == 1
    assert (await storage.tally(c, "", None)).total == 1


async def test_link_codes_wrong_expired_used_same_platform_and_throttled(
    storage: Storage,
) -> None:
    c = await storage.ensure_campaign("c")
    now = datetime.now(UTC)
    assert await storage.add_link_code(key(1), "telegram", code(1), now + MINUTES_10)
    assert not await storage.add_link_code(key(5), "discord", code(1), now + MINUTES_10)

    async def send(n: int, at: datetime, sender: int = 2, on: str = "discord") -> LinkStatus:
        result = await storage.redeem_link_code(c, key(sender), on, code(n), at, 3, MINUTES_10)
        return result.status

    assert await send(1, now, sender=3, on="telegram") is LinkStatus.SAME_PLATFORM
    assert await send(1, now + MINUTES_10 + timedelta(seconds=1)) is LinkStatus.EXPIRED
    assert await send(7, now) is LinkStatus.WRONG
    assert await send(1, now) is LinkStatus.LINKED  # two failures do not stop the third
    assert await send(1, now, sender=4) is LinkStatus.USED
    # Another account has three failures in ten minutes: the fourth try is not even read.
    for n in (11, 12):
        assert await send(n, now, sender=4) is LinkStatus.WRONG
    assert await storage.add_link_code(key(6), "telegram", code(13), now + MINUTES_10)
    throttled = await storage.redeem_link_code(c, key(4), "discord", code(13), now, 3, MINUTES_10)
    assert throttled.status is LinkStatus.THROTTLED and 1 <= throttled.wait <= 600
    later = now + MINUTES_10 + timedelta(seconds=1)
    assert await send(13, later, sender=4) is LinkStatus.EXPIRED  # tried again, window over
    # Linking the same person twice says so.
    assert await storage.add_link_code(key(2), "discord", code(14), now + MINUTES_10)
    assert await send(14, now, sender=1, on="telegram") is LinkStatus.ALREADY


async def test_forget_from_either_account_erases_the_person_and_unlink_splits(
    storage: Storage,
) -> None:
    c = await storage.ensure_campaign("c")
    await storage.pledge(c, key(1), "telegram", "-1", "both")
    assert (await link(storage, c, 1, "telegram", 2, "discord")).status is LinkStatus.LINKED
    volunteer, _ = await storage.load_context(key(2), "discord", None)
    assert volunteer is not None
    assert await storage.forget(volunteer.key)
    for account, platform in ((1, "telegram"), (2, "discord")):
        volunteer, _ = await storage.load_context(key(account), platform, None)
        assert volunteer is None
    assert (await storage.tally(c, "", None)).total == 0

    await storage.pledge(c, key(3), "telegram", None, "both")
    assert (await link(storage, c, 3, "telegram", 4, "console", n=2)).status is LinkStatus.LINKED
    assert await storage.unlink(key(4)) == "telegram"  # the pledge stays on Telegram
    assert await storage.unlink(key(4)) is None
    volunteer, _ = await storage.load_context(key(4), "console", None)
    assert volunteer is None  # a fresh account again
    assert (await storage.get_pledge(c, key(3))) is not None
    assert (await storage.export(c, key(3))).platforms == ()
