"""Issue 10: the private address goes from every table when it should, /forget keeps the flood
limit and shares its WAL truncate with the forgets around it, the pepper can live apart from
the data, and a start-up finishes a truncate a kill interrupted.

Every check on erasure reads the raw bytes of the database files (the main file and the
WAL), as tests/test_forget_leaves_no_trace.py does."""

from __future__ import annotations

import asyncio
import io
import shutil
import sqlite3
from pathlib import Path

import pytest

from bot.app.bootstrap import bootstrap
from bot.core.settings import ConfigError, load_settings
from bot.core.types import ChatKind, Invocation, Platform
from bot.delivery.outbox import Outbox
from bot.frontends.console import Console
from bot.schedule.scheduler import ReminderScheduler
from storage.sqlite import SQLiteStorage
from tests.conftest import NOW, App, make_settings, subscribers
from tests.test_telegram_e2e import telegram_world

ADDRESSES = [b"dm-amina", b"dm-karim", b"dm-lea"]  # where subscribers() are written to


def files_contain(folder: Path, needles: list[bytes]) -> list[str]:
    """Which database files (the WAL included) hold which needle, as raw bytes."""
    found = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name != "pepper":
            blob = path.read_bytes()
            found += [f"{path.name}: {needle!r}" for needle in needles if needle in blob]
    return found


def outbox_for(app: App) -> Outbox:
    outbox = Outbox(app.services)
    outbox.register(app.console)
    return outbox


# -- 1. the private address leaves every table ------------------------------------------------


async def test_reminders_off_leaves_no_address_in_the_files(app: App) -> None:
    await subscribers(app)
    outbox = outbox_for(app)
    scheduler = ReminderScheduler(app.services, outbox.wake)
    ladder = await scheduler.ladder()
    assert await scheduler.fire_due(ladder["before_24h"]) == ["before_24h"]
    await outbox.drain()
    data_dir = app.services.settings.data_dir
    assert files_contain(data_dir, [b"dm-karim"]), "the address is kept while reminders are on"

    out = await app.run(":as karim\n:private\n/reminders off")
    assert "Les rappels sont désactivés et j’ai supprimé l’adresse" in out
    assert files_contain(data_dir, [b"dm-karim"]) == []
    out = await app.run("/mydata")
    assert "• Rappels\u00a0: désactivés\u00a0; aucune adresse n’est conservée" in out
    # the others still get their reminders
    before = app.out.tell()
    assert await scheduler.fire_due(ladder["before_1h"]) == ["before_1h"]
    await outbox.drain()
    sent = app.out.getvalue()[before:]
    assert "bot → dm-lea:" in sent and "dm-karim" not in sent


async def test_a_reminder_in_flight_when_its_reader_opts_out_is_never_sent_again(
    app: App,
) -> None:
    await subscribers(app)
    storage = app.services.storage
    made = await storage.create_broadcast(app.services.campaign.id, "r1", "reminder", "start", "en")
    assert made is not None
    claimed = await storage.claim_deliveries("console", 10)
    assert {d.address for d in claimed} >= {"dm-karim"}
    await app.run(":as karim\n:private\n/reminders off")  # while its message is in flight
    assert files_contain(app.services.settings.data_dir, [b"dm-karim"]) == []
    # the process dies before recording the sends; the next start settles them
    settled = await storage.recover_inflight("console", None)
    assert sum(settled.values()) == len(claimed)
    again = await storage.claim_deliveries("console", 10)
    assert "dm-karim" not in {d.address for d in again}


BLOCKER = 7_412_905_338  # a Telegram user id: their private chat has the same id


async def test_a_volunteer_who_blocked_the_bot_leaves_no_address_in_the_files(
    tmp_path: Path,
) -> None:
    async with telegram_world(tmp_path) as world:
        server = world.server
        server.add_user(BLOCKER, "B", "en")
        server.user_sends(BLOCKER, BLOCKER, "/reminders on")
        await server.wait_for(lambda: len(server.messages(BLOCKER)) == 1)
        assert "Reminders are on" in server.messages(BLOCKER)[0]["text"]
        outbox = Outbox(world.services)
        outbox.register(world.frontend)
        scheduler = ReminderScheduler(world.services, outbox.wake)
        ladder = await scheduler.ladder()
        await scheduler.fire("before_24h", ladder["before_24h"])
        assert await outbox.drain() == 1
        assert "we freeze" in server.messages(BLOCKER)[-1]["text"]
        raw = str(BLOCKER).encode()
        assert files_contain(tmp_path, [raw]), "kept while reminders are on"

        server.block_bot(BLOCKER)
        made = await scheduler.fire("before_1h", ladder["before_1h"])
        assert made is not None and await outbox.drain() == 1
        assert await world.services.storage.delivery_counts(made.id) == {"unreachable": 1}
        assert files_contain(tmp_path, [raw]) == []
        key = world.services.identities.key("telegram", str(BLOCKER))
        data = await world.services.storage.export(world.services.campaign.id, key)
        assert data.volunteer is not None and data.volunteer.dm_address is None


async def test_forget_after_reminders_leaves_no_address_in_the_files(app: App) -> None:
    await subscribers(app)
    outbox = outbox_for(app)
    scheduler = ReminderScheduler(app.services, outbox.wake)
    assert await scheduler.fire("start", (await scheduler.ladder())["start"]) is not None
    await outbox.drain()
    data_dir = app.services.settings.data_dir
    assert files_contain(data_dir, [b"dm-lea"])
    out = await app.run(":as lea\n:private\n/forget confirm")
    assert "Done: everything about you is erased" in out
    assert files_contain(data_dir, [b"dm-lea"]) == []


async def test_the_campaigns_end_drops_every_private_address_after_the_checkin(
    app: App,
) -> None:
    await subscribers(app)
    outbox = outbox_for(app)
    scheduler = ReminderScheduler(app.services, outbox.wake)
    ladder = await scheduler.ladder()
    data_dir = app.services.settings.data_dir
    for rung in ("before_24h", "before_1h", "start", "end"):
        assert await scheduler.fire_due(ladder[rung]) == [rung]
        await outbox.drain()
    # the check-in is still to come: it needs the addresses
    assert len(files_contain(data_dir, ADDRESSES)) >= len(ADDRESSES)

    before = app.out.tell()
    assert await scheduler.fire_due(ladder["checkin"]) == ["checkin"]
    await outbox.drain()
    sent = app.out.getvalue()[before:]
    assert "bot → dm-karim: Avez-vous gelé vos comptes" in sent
    assert "bot → dm-lea: Did you freeze your accounts?" in sent
    assert files_contain(data_dir, ADDRESSES) == []
    out = await app.run(":as karim\n:private\n/mydata")
    assert "• Rappels\u00a0: désactivés\u00a0; aucune adresse n’est conservée" in out


# -- 2. /forget keeps the flood limit, and forgets share their truncate ------------------------


async def test_forget_does_not_give_a_fresh_flood_allowance(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, rate_limit_commands=3, rate_limit_seconds=3600)
    async with bootstrap(settings, clock=lambda: NOW) as (services, dispatcher):
        out = io.StringIO()
        app = App(services, dispatcher, out, Console(dispatcher, out=out))
        said = await app.run("/pledge\n/forget confirm\n/tally")
        assert "Done: everything about you is erased" in said
        assert "too quickly" not in said
        said = await app.run("/pledge")
        assert "You are sending commands too quickly." in said
        assert "Thank you" not in said
        assert "(no answer)" in await app.run("/pledge")


def forget_invocation(user: str) -> Invocation:
    return Invocation(
        platform=Platform.TELEGRAM,
        user_id=user,
        chat_id=user,
        chat_kind=ChatKind.PRIVATE,
        command="forget",
        text="confirm",
        dm_address=user,
    )


async def test_a_flood_of_forgets_shares_a_few_wal_truncates(app: App) -> None:
    handle = app.dispatcher.handle
    users = [f"{6_100_000_000 + i}" for i in range(300)]
    pledges = [
        Invocation(
            platform=Platform.TELEGRAM,
            user_id=user,
            chat_id="-100900",
            chat_kind=ChatKind.GROUP,
            command="pledge",
        )
        for user in users
    ]
    await asyncio.gather(*(handle(p) for p in pledges))
    storage = app.services.storage
    assert isinstance(storage, SQLiteStorage)
    before = storage.wal_truncates
    replies = await asyncio.gather(*(handle(forget_invocation(user)) for user in users))
    assert all("Done: everything about you is erased" in r[0].text for r in replies)
    assert 1 <= storage.wal_truncates - before <= 5
    hashes = [app.services.identities.key("telegram", u) for u in users]
    assert files_contain(app.services.settings.data_dir, hashes) == []
    tally = await storage.tally(app.services.campaign.id, "telegram", None)
    assert tally.total == 0


# -- 4. the pepper can live apart from the data ------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("COALITION_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env from the checkout


async def test_the_pepper_file_is_created_apart_from_the_data_and_used(
    tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    monkeypatch.setenv("COALITION_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COALITION_PEPPER_FILE", str(secrets_dir / "pepper"))
    settings = load_settings()
    async with bootstrap(settings, clock=lambda: NOW) as (services, dispatcher):
        out = io.StringIO()
        app = App(services, dispatcher, out, Console(dispatcher, out=out))
        assert "Thank you!" in await app.run("/pledge")
        first = services.identities.key("console", "amina")
    pepper_file = secrets_dir / "pepper"
    assert pepper_file.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "data" / "pepper").exists()  # nothing in the data dir
    # the next start reads the same pepper: the volunteer is recognised
    async with bootstrap(load_settings(), clock=lambda: NOW) as (services, dispatcher):
        assert services.identities.key("console", "amina") == first
        out = io.StringIO()
        app = App(services, dispatcher, out, Console(dispatcher, out=out))
        assert "You have already pledged" in await app.run("/pledge")


async def test_the_configured_pepper_wins_over_the_pepper_file(
    tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COALITION_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COALITION_PEPPER", "p" * 40)
    monkeypatch.setenv("COALITION_PEPPER_FILE", str(tmp_path / "pepper-file"))
    async with bootstrap(load_settings(), clock=lambda: NOW) as (services, _dispatcher):
        from bot.core.identity import Identities

        expected = Identities(b"p" * 40).key("console", "amina")
        assert services.identities.key("console", "amina") == expected
    assert not (tmp_path / "pepper-file").exists()


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("missing-dir/pepper", "folder does not exist"),
        ("a-folder", "is a folder"),
        ("short", "too short"),
    ],
)
def test_a_bad_pepper_file_is_named_in_one_line(
    tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch, where: str, says: str
) -> None:
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "short").write_text("tiny-secret\n", encoding="ascii")
    monkeypatch.setenv("COALITION_PEPPER_FILE", str(tmp_path / where))
    with pytest.raises(ConfigError) as error:
        load_settings()
    line = str(error.value)
    assert line.startswith("COALITION_PEPPER_FILE: ")
    assert says in line
    assert "\n" not in line and "tiny-secret" not in line


# -- 5. a start-up finishes the truncate a kill interrupted ------------------------------------


async def test_a_start_after_a_kill_between_forget_and_truncate_finishes_it(
    tmp_path: Path,
) -> None:
    live = tmp_path / "live"
    storage = SQLiteStorage(live / "bot.sqlite3")
    await storage.open()
    c = await storage.ensure_campaign("c")
    target = b"\xa5" * 32
    for n in range(200):
        await storage.pledge(c, n.to_bytes(32, "big"), "console", "g", "both")
    await storage.pledge(c, target, "console", "g", "both")
    await storage.set_reminders(target, True, "dm-target-8123", "console")
    await storage.close()  # a clean start: the volunteer is in the main file
    await storage.open()

    # The forget's transaction commits, and the process is killed before its truncate:
    # the files on disk are the main file and the WAL as they are now.
    def erase(db: sqlite3.Connection) -> None:
        for sql in (
            "DELETE FROM pledge_communities WHERE volunteer = ?",
            "DELETE FROM pledges WHERE volunteer = ?",
            "DELETE FROM volunteers WHERE key = ?",
        ):
            db.execute(sql, (target,))

    await storage._call(erase)
    killed = tmp_path / "killed"
    killed.mkdir()
    for path in live.iterdir():
        if path.suffix in (".sqlite3", ".sqlite3-wal") or path.name.endswith("-wal"):
            shutil.copy2(path, killed / path.name)
    assert (killed / "bot.sqlite3-wal").stat().st_size > 0
    assert files_contain(killed, [target, b"dm-target-8123"]), "copies are left by the kill"
    await storage.close()

    restarted = SQLiteStorage(killed / "bot.sqlite3")
    await restarted.open()
    try:
        assert files_contain(killed, [target, b"dm-target-8123"]) == []
        assert await restarted.get_pledge(c, (7).to_bytes(32, "big")) is not None
    finally:
        await restarted.close()
