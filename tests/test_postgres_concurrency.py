"""Several bot processes on one PostgreSQL database: each PostgresStorage here has its own pool
(its own server connections), as a separate process would. Counts stay exact and numbers
unique, a delivery is claimed once, a broadcast is made once and each recipient added once,
however they interleave; and the rest of what only PostgreSQL does (migrating once, group
commit's failures, errors that never show the URL, VACUUM after an erasure)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from bot.app.bootstrap import bootstrap
from storage.base import PledgeResult, PledgeStatus, StorageError
from storage.postgres import PostgresStorage, queries
from storage.postgres.schema import migrations
from tests.conftest import make_settings
from tests.postgres_server import ThrowawayPostgres, free_port
from tests.test_dispatch import inv

pytestmark = pytest.mark.postgres


def key(n: int) -> bytes:
    return n.to_bytes(32, "big")


@pytest.fixture
async def three(postgres_url: str) -> AsyncIterator[list[PostgresStorage]]:
    """Three storages on one database, opened at the same moment (three processes
    starting)."""
    stores = [PostgresStorage(postgres_url, pool_size=4) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))
    yield stores
    await asyncio.gather(*(s.close() for s in stores))


async def sql(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    """Read the database directly, as an operator would."""
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def opted_in(storage: PostgresStorage, count: int, platform: str = "telegram") -> None:
    """`count` volunteers who opted in to reminders (addresses "1".."count")."""
    for start in range(1, count + 1, 500):
        await asyncio.gather(
            *(
                storage.set_reminders(key(n), True, str(n), platform)
                for n in range(start, min(start + 500, count + 1))
            )
        )


# -- starting ---------------------------------------------------------------------------


async def test_processes_starting_at_once_migrate_exactly_once(
    three: list[PostgresStorage], postgres_url: str
) -> None:
    rows = await sql(postgres_url, "SELECT version FROM schema_migrations ORDER BY version")
    assert [row[0] for row in rows] == [version for version, _, _ in migrations()]
    # and a later start finds nothing to do
    again = PostgresStorage(postgres_url)
    await again.open()
    await again.close()
    assert len(await sql(postgres_url, "SELECT version FROM schema_migrations")) == len(rows)


# -- counters -----------------------------------------------------------------------------


async def test_pledges_from_three_processes_keep_exact_counts_and_gap_free_numbers(
    three: list[PostgresStorage],
) -> None:
    c = await three[0].ensure_campaign("c")
    assert {await s.ensure_campaign("c") for s in three} == {c}
    # 3,000 distinct volunteers, 1,000 per process, and 300 more whom every process
    # receives (a double press landing on two processes), all at once.
    shared = [key(100_000 + n) for n in range(300)]
    work: list[Awaitable[PledgeResult]] = []
    expected: Counter[str] = Counter()
    for p, storage in enumerate(three):
        own = [key(p * 10_000 + n) for n in range(1_000)]
        for k in own + shared:
            group = f"g{int.from_bytes(k, 'big') % 5}"
            work.append(storage.pledge(c, k, "telegram", group, "both"))
        expected.update(f"g{int.from_bytes(k, 'big') % 5}" for k in own)
    expected.update(f"g{int.from_bytes(k, 'big') % 5}" for k in shared)
    random.Random(7).shuffle(work)
    results = await asyncio.gather(*work)

    new = [r for r in results if r.status is PledgeStatus.NEW]
    assert len(new) == 3_300
    assert sorted(r.number for r in new) == list(range(1, 3_301))
    assert sorted(r.total for r in new) == list(range(1, 3_301))
    for storage in three:
        assert (await storage.tally(c, "telegram", None)).total == 3_300
        for group, count in expected.items():
            assert (await storage.tally(c, "telegram", group)).community == count


async def test_pledges_withdrawals_and_check_ins_at_once_keep_the_counters_true(
    three: list[PostgresStorage], postgres_url: str
) -> None:
    c = await three[0].ensure_campaign("c")
    rng = random.Random(11)
    work: list[Awaitable[object]] = []
    for _ in range(3_000):
        storage = rng.choice(three)
        k = key(rng.randrange(400))
        action = rng.random()
        if action < 0.6:
            work.append(storage.pledge(c, k, "discord", f"g{rng.randrange(4)}", None))
        elif action < 0.8:
            work.append(storage.unpledge(c, k))
        else:
            work.append(storage.mark_done(c, k))
    results = await asyncio.gather(*work)
    numbers = [
        r.number for r in results if isinstance(r, PledgeResult) and r.status is PledgeStatus.NEW
    ]
    assert sorted(numbers) == list(range(1, len(numbers) + 1))  # unique and gap-free

    pledged, done = (
        await sql(
            postgres_url,
            "SELECT COUNT(*), COUNT(done_at) FROM pledges WHERE campaign_id = $1",
            c,
        )
    )[0]
    tally = await three[1].tally(c, "discord", None)
    assert (tally.total, tally.done) == (pledged, done)
    for g in range(4):
        (linked,) = await sql(
            postgres_url,
            "SELECT COUNT(*) FROM pledge_communities l JOIN communities m "
            "ON m.id = l.community_id WHERE m.chat_id = $1 AND l.campaign_id = $2",
            f"g{g}",
            c,
        )
        assert (await three[2].tally(c, "discord", f"g{g}")).community == linked[0]
    kept = await sql(postgres_url, "SELECT number FROM pledges WHERE campaign_id = $1", c)
    assert {row[0] for row in kept} <= set(numbers) and len(kept) == pledged


async def test_a_group_migrating_while_others_pledge_and_withdraw_keeps_true_counts(
    three: list[PostgresStorage], postgres_url: str
) -> None:
    mover, first, second = three
    c = await mover.ensure_campaign("c")
    await asyncio.gather(*(first.pledge(c, key(n), "telegram", "-1", None) for n in range(300)))
    await second.pledge(c, key(9_999), "telegram", "-1009", None)  # the new id, used early
    work: list[Awaitable[object]] = []
    for n in range(300, 900):
        storage, chat = (first, "-1") if n % 2 else (second, "-1009")
        work.append(storage.pledge(c, key(n), "telegram", chat, None))
    work += [second.unpledge(c, key(n)) for n in range(0, 300, 3)]
    work.insert(300, mover.move_community("telegram", "-1", "-1009"))
    await asyncio.gather(*work)

    counted = await sql(
        postgres_url,
        "SELECT m.chat_id, t.pledged, (SELECT COUNT(*) FROM pledge_communities l "
        "WHERE l.community_id = m.id AND l.campaign_id = $1) "
        "FROM communities m JOIN community_tallies t ON t.community_id = m.id "
        "WHERE t.campaign_id = $1",
        c,
    )
    assert counted and all(row[1] == row[2] for row in counted), counted
    total = sum(row[2] for row in counted if row[0] == "-1009")
    assert (await first.tally(c, "telegram", "-1009")).community == total
    assert (await first.tally(c, "telegram", None)).total == 900 + 1 - 100


async def test_a_failing_operation_does_not_sink_its_batch(postgres_url: str) -> None:
    storage = PostgresStorage(postgres_url)
    await storage.open()
    try:
        c = await storage.ensure_campaign("c")

        async def broken(db: asyncpg.Connection) -> None:
            await db.execute("INSERT INTO volunteers (key, created_at) VALUES ($1, now())", key(5))
            await db.execute(
                "INSERT INTO pledges (campaign_id, volunteer, choice, number, created_at) "
                "VALUES ($1, $2, 'both', 99, now())",
                c,
                key(5),
            )
            raise RuntimeError("half-way")

        outcomes = await asyncio.gather(
            storage.pledge(c, key(1), "console", None, "both"),
            storage._count(broken),
            storage.pledge(c, key(2), "console", None, "both"),
            return_exceptions=True,
        )
        assert isinstance(outcomes[1], RuntimeError)
        assert (await storage.tally(c, "console", None)).total == 2
        assert await storage.get_pledge(c, key(5)) is None  # rolled back alone
        assert (await storage.export(c, key(5))).volunteer is None
    finally:
        await storage.close()


# -- the outbox ---------------------------------------------------------------------------


async def test_two_processes_claiming_one_broadcast_claim_each_delivery_once(
    postgres_url: str,
) -> None:
    first, second = PostgresStorage(postgres_url), PostgresStorage(postgres_url)
    await asyncio.gather(first.open(), second.open())
    try:
        c = await first.ensure_campaign("c")
        await opted_in(first, 3_000)
        made = await first.create_broadcast(c, "b1", "reminder", "start", "en")
        assert made is not None
        await first.expansions_done()

        async def claimer(storage: PostgresStorage) -> list[int]:
            got: list[int] = []
            while rows := await storage.claim_deliveries("telegram", 40):
                got += [row.id for row in rows]
                await asyncio.sleep(0)
            return got

        claimed = await asyncio.gather(claimer(first), claimer(second), claimer(first))
        every = [i for ids in claimed for i in ids]
        assert len(every) == len(set(every)) == 3_000  # each once, none left out
        assert all(claimed)  # every claimer got some: they really ran side by side
        assert await first.delivery_counts(made.id) == {"inflight": 3_000}
    finally:
        await asyncio.gather(first.close(), second.close())


async def test_two_processes_creating_one_broadcast_make_it_once(
    three: list[PostgresStorage], postgres_url: str
) -> None:
    first, second, _ = three
    c = await first.ensure_campaign("c")
    await first.set_community_subscribed("telegram", "-1", True)
    await opted_in(first, 3_000)
    made = await asyncio.gather(
        first.create_broadcast(c, "reminder:c:start", "reminder", "start", "en"),
        second.create_broadcast(c, "reminder:c:start", "reminder", "start", "en"),
    )
    assert sum(m is not None for m in made) == 1
    await asyncio.gather(first.expansions_done(), second.expansions_done())
    (broadcast,) = [m for m in made if m is not None]
    assert await second.delivery_counts(broadcast.id) == {"pending": 3_001}
    rows = await sql(postgres_url, "SELECT COUNT(*) FROM broadcasts")
    assert rows[0][0] == 1
    addresses = [d.address for d in await first.claim_deliveries("telegram", 10_000)]
    assert len(addresses) == len(set(addresses)) == 3_001


async def test_two_processes_finishing_one_interrupted_expansion_add_each_recipient_once(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("storage.postgres.store.EXPAND_CHUNK", 100)  # many chunks to share
    crashed = PostgresStorage(postgres_url)
    await crashed.open()
    c = await crashed.ensure_campaign("c")
    await opted_in(crashed, 3_000)
    # What a process killed after its first chunk left: the broadcast and 700 rows.
    made, _ended = await crashed._call(
        lambda db: queries.create_broadcast(
            db, c, "r1", "reminder", "start", "fr", True, False, None, None
        )
    )
    assert made is not None
    so_far, finished, _ = await crashed._call(lambda db: queries.expand_step(db, made.id, 700))
    assert (so_far, finished) == (700, False)
    await crashed.close()

    first, second = PostgresStorage(postgres_url), PostgresStorage(postgres_url)
    await asyncio.gather(first.open(), second.open())
    try:
        chunks: Counter[str] = Counter()
        for name, storage in (("first", first), ("second", second)):
            step = storage._expand_step

            async def counted(
                broadcast_id: int,
                step: Callable[[int], Awaitable[tuple[int, bool]]] = step,
                name: str = name,
            ) -> tuple[int, bool]:
                result = await step(broadcast_id)
                chunks[name] += 1
                return result

            monkeypatch.setattr(storage, "_expand_step", counted)
        assert await asyncio.gather(first.finish_expansions(), second.finish_expansions()) == [
            1,
            1,
        ]
        assert chunks["first"] > 0 and chunks["second"] > 0  # both took turns
        assert await first.delivery_counts(made.id) == {"pending": 3_000}
        rows = await second.claim_deliveries("telegram", 10_000)
        assert sorted(int(row.address) for row in rows) == list(range(1, 3_001))
        (recipients,) = await sql(postgres_url, "SELECT recipients FROM broadcasts")
        assert recipients[0] == 3_000
    finally:
        await asyncio.gather(first.close(), second.close())


async def test_who_opts_out_or_is_forgotten_during_an_expansion_gets_nothing(
    three: list[PostgresStorage], postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("storage.postgres.store.EXPAND_CHUNK", 100)
    expander, leaver, _ = three
    c = await expander.ensure_campaign("c")
    await opted_in(expander, 2_000)
    leaving = random.Random(3).sample(range(1, 2_001), 400)
    creating = asyncio.create_task(expander.create_broadcast(c, "b1", "reminder", "start", "en"))
    await asyncio.sleep(0)
    await asyncio.gather(
        *(
            leaver.forget(key(n)) if n % 2 else leaver.set_reminders(key(n), False, None)
            for n in leaving
        )
    )
    made = await creating
    await expander.expansions_done()
    assert made is not None
    rows = await sql(
        postgres_url,
        "SELECT address FROM deliveries WHERE address = ANY($1::text[])",
        [str(n) for n in leaving],
    )
    assert rows == []  # no queued message, and no address kept, for anyone who left
    assert await expander.delivery_counts(made.id) == {"pending": 2_000 - 400}


# -- errors and erasure -----------------------------------------------------------------


async def test_an_unreachable_server_is_a_storage_error_that_never_shows_the_url() -> None:
    storage = PostgresStorage(f"postgresql://bot:s3cret-pw@127.0.0.1:{free_port()}/nowhere")
    with pytest.raises(StorageError) as raised:
        await storage.open()
    assert "storage failing" in str(raised.value)
    shown = f"{raised.value!s} {raised.value!r} {raised.value.__cause__!r} {storage!r}"
    assert "s3cret" not in shown and "nowhere" not in shown
    with pytest.raises(StorageError, match="closed"):
        await storage.tally(1, "telegram", None)


async def test_a_server_error_is_a_storage_error_naming_the_failure_not_the_data(
    postgres_url: str,
) -> None:
    storage = PostgresStorage(postgres_url)
    await storage.open()
    try:
        c = await storage.ensure_campaign("c")
        with pytest.raises(StorageError) as raised:
            await storage.pledge(c, key(1), "telegram", None, "tiktok-secret")
        assert "CheckViolation" in str(raised.value) and "tiktok" not in str(raised.value)
        # The connections are cut under it (a server restart): an error, then it recovers.
        await sql(
            postgres_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        for _ in range(20):
            try:
                await storage.tally(c, "telegram", None)
                break
            except StorageError as error:
                assert "storage failing" in str(error)
        assert (await storage.pledge(c, key(1), "telegram", None, "both")).number == 1
    finally:
        await storage.close()
    await storage.close()  # twice: nothing left to do
    with pytest.raises(StorageError, match="closed"):
        await storage.pledge(c, key(2), "telegram", None, "both")


async def test_forget_vacuums_what_it_erased_in_the_background(postgres_url: str) -> None:
    personal = ("volunteers", "pledges", "pledge_communities", "deliveries")
    storage = PostgresStorage(postgres_url)
    await storage.open()
    try:
        await storage.vacuums_done()  # the one every start runs (an erasure a stop cut short)
        assert storage.vacuums == 1
        c = await storage.ensure_campaign("c")
        await storage.pledge(c, key(1), "telegram", "g", "both")
        await storage.set_reminders(key(1), True, "4242", "telegram")
        assert await storage.create_broadcast(c, "b1", "reminder", "start", "en") is not None
        assert await storage.forget(key(1))
        await storage.vacuums_done()
        assert storage.vacuums == 2
        rows = await sql(
            postgres_url,
            "SELECT relname, n_dead_tup, vacuum_count FROM pg_stat_user_tables "
            "WHERE relname = ANY($1::text[])",
            list(personal),
        )
        assert {row[0]: (row[1], row[2]) for row in rows} == {table: (0, 2) for table in personal}
        assert not await storage.forget(key(1))  # nobody: nothing to vacuum
        await storage.set_reminders(key(2), False, None)  # a stranger's opt-out: nothing either
        await storage.vacuums_done()
        assert storage.vacuums == 2
    finally:
        await storage.close()


# -- leading, news, the shared flood limit -------------------------------------------------


async def test_one_process_leads_and_another_takes_over_when_its_connection_dies(
    three: list[PostgresStorage], postgres_url: str
) -> None:
    first, second, third = three
    assert await first.try_lead()
    assert not await second.try_lead() and not await third.try_lead()
    assert await first.try_lead()  # still its own
    watching = asyncio.create_task(first.lead_lost())
    await asyncio.sleep(0.1)
    assert not watching.done()
    # The leader's lock connection dies (its process killed, its network gone).
    await sql(
        postgres_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name LIKE 'coalition-lead-%'",
    )
    await asyncio.wait_for(watching, 5)  # it knows it may no longer lead
    taken = [await second.try_lead(), await third.try_lead()]
    assert taken == [True, False]


async def test_news_reaches_the_other_processes_not_the_sender(
    three: list[PostgresStorage],
) -> None:
    heard: dict[int, list[str]] = {0: [], 1: [], 2: []}
    for index, storage in enumerate(three):
        await storage.subscribe(heard[index].append)
    await three[0].publish("counts")
    await three[1].publish("boards")
    for _ in range(100):
        if len(heard[2]) == 2 and heard[0] and heard[1]:
            break
        await asyncio.sleep(0.02)
    assert heard == {0: ["boards"], 1: ["counts"], 2: ["counts", "boards"]}


async def test_the_flood_limit_holds_whichever_process_gets_the_commands(
    three: list[PostgresStorage],
) -> None:
    from bot.core.ratelimit import FloodGuard, Verdict

    guards = [FloodGuard(5, 60.0, shared=s.take_command_token) for s in three]
    verdicts = [await guards[n % 3].check(key(7)) for n in range(30)]
    # The rate, and each process's first command of the period, which asks no one: 5 + 3,
    # within twice the rate (not 3 x 5)
    assert verdicts.count(Verdict.ALLOW) == 5 + 3
    # someone else is not held by it
    assert await guards[1].check(key(8)) is Verdict.ALLOW


# -- the server restarting under a running bot -----------------------------------------------


async def test_a_restarting_server_gets_honest_answers_and_the_bot_recovers_by_itself(
    tmp_path: Path,
) -> None:
    """The database restarts at the freeze moment: volunteers are told their pledge was not
    saved (never that it was), nothing is half-written, and once the server is back the bot
    answers again without being restarted."""
    with ThrowawayPostgres() as server:
        settings = make_settings(tmp_path, database_url=server.url)
        async with bootstrap(settings) as (_services, dispatcher):
            first = await dispatcher.handle(inv("pledge", user="a", hint="en"))
            assert "volunteer number 1" in first[0].text

            server.halt()
            for language, words in (("en", "storage is failing"), ("fr", "stockage")):
                down = await dispatcher.handle(inv("pledge", user="b", hint=language))
                assert len(down) == 1 and words in down[0].text, down
                assert "Thank" not in down[0].text and "Traceback" not in down[0].text

            server.resume()
            for _attempt in range(100):  # the pool finds its connections gone, then new ones
                again = await dispatcher.handle(inv("pledge", user="b", hint="en"))
                if "storage is failing" not in again[0].text:
                    break
                await asyncio.sleep(0.1)
            assert "volunteer number 2" in again[0].text  # no number was lost to the outage
            tally = await dispatcher.handle(inv("tally", user="c", hint="en"))
            assert "2 volunteers have pledged in all" in tally[0].text
