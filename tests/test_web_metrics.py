"""/metrics as an organizer's Prometheus scrapes it, against the bot booted through its
composition root: what it counts, and that it is never public by default."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bot.core.settings import ConfigError, load_settings
from bot.delivery.outbox import Outbox
from bot.web.metrics import Metrics
from tests.conftest import PEPPER, WAIT, make_settings
from tests.fakes.telegram_server import Limits
from tests.test_telegram_e2e import ADMIN, GROUP, telegram_world
from tests.web_harness import Served, console_refusal, get, serve

TOKEN = "scrape-me-0123456789abcdef"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(body: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def scrape(http: aiohttp.ClientSession, served: Served) -> str:
    status, headers, body = await get(http, served.url + "metrics", Authorization=f"Bearer {TOKEN}")
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return body


async def test_a_pledge_is_counted_timed_and_totalled(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with serve(make_settings(tmp_path, metrics_token=TOKEN)) as served:
        await served.pledge("amina", "karim", "lea")
        await served.console.feed("/plege my-secret-words")  # a typo: never a label
        await served.console.feed("hello there")  # chatter in a private chat
        await served.site.hub.flush()
        body = await scrape(http, served)
    samples = parse(body)
    pledge = {"command": "pledge", "platform": "console", "outcome": "answered"}
    assert value(samples, "coalition_commands_total", **pledge) == 3
    unknown = {"command": "unknown", "platform": "console", "outcome": "refused"}
    assert value(samples, "coalition_commands_total", **unknown) == 1
    text = {"command": "text", "platform": "console", "outcome": "answered"}
    assert value(samples, "coalition_commands_total", **text) == 1
    assert value(samples, "coalition_command_seconds_count", command="pledge") == 3
    seconds = value(samples, "coalition_command_seconds_sum", command="pledge")
    assert seconds is not None and 0 < seconds < 30
    assert value(samples, "coalition_command_seconds_bucket", command="pledge", le="+Inf") == 3
    assert value(samples, "coalition_pledges") == 3
    assert value(samples, "coalition_checkins") == 0
    assert value(samples, "coalition_goal") == 1000
    assert value(samples, "coalition_live_streams") == 0
    # Nothing a person typed or is, and no secret, ever reaches the scraper.
    for private in (TOKEN, PEPPER, "amina", "karim", "lea", "plege", "my-secret-words", "hello"):
        assert private not in body, private


async def test_flood_limited_commands_are_counted_as_such(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    settings = make_settings(
        tmp_path, metrics_token=TOKEN, rate_limit_commands=1, rate_limit_seconds=3600
    )
    async with serve(settings) as served:
        await served.console.feed(":as amina")
        for _ in range(3):
            await served.console.feed("/help")
        samples = parse(await scrape(http, served))
    answered = {"command": "help", "platform": "console", "outcome": "answered"}
    limited = {"command": "help", "platform": "console", "outcome": "flood_limited"}
    assert value(samples, "coalition_commands_total", **answered) == 1
    assert value(samples, "coalition_commands_total", **limited) == 2


async def test_an_announcement_s_deliveries_are_counted(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with serve(make_settings(tmp_path, metrics_token=TOKEN)) as served:
        for line in (
            ":as karim\n:private\n:hint en\n/reminders on",
            ":as lea\n:private\n:hint en\n/reminders on",
            ":as org\n:hint en\n:private\n:organizer on\n/announce Freeze tomorrow!",
            ":press 1",
        ):
            for part in line.splitlines():
                await served.console.feed(part)
        outbox = Outbox(served.services)
        outbox.register(served.console)
        assert await outbox.drain() == 2
        await served.console.close()
        samples = parse(await scrape(http, served))
    sent = {"platform": "console", "outcome": "sent"}
    assert value(samples, "coalition_deliveries_total", **sent) == 2
    announce = {"command": "announce", "platform": "console", "outcome": "answered"}
    assert value(samples, "coalition_commands_total", **announce) == 1


async def test_telegram_429s_sends_and_board_edits_are_counted_where_they_happen(
    tmp_path: Path,
) -> None:
    # The real Telegram front-end against the fake Bot API with Telegram's limits on. The
    # bot is told a chat takes 100 messages a second, so the server's real 1/s answers 429.
    metrics = Metrics()
    limited = Limits(enabled=True)
    async with telegram_world(
        tmp_path, limited, metrics, telegram_rate_per_chat=100, board_interval=0.5
    ) as world:
        server = world.server
        server.add_user(1001, "R", "en")
        for _ in range(3):
            server.user_sends(1001, 1001, "/tally")
        await server.wait_for(lambda: server.rejected_429 >= 1, WAIT)
        await server.wait_for(lambda: len(server.messages(1001)) == 3, WAIT)

        server.add_user(ADMIN, "Adm", "en")
        server.add_group(GROUP, "Coalition", admins=[ADMIN])
        server.user_sends(ADMIN, GROUP, "/board")
        (board,) = await world.answer_in(GROUP)
        server.add_user(1002, "P", "en")
        press = server.user_presses(1002, GROUP, board["message_id"], "pledge")
        await server.wait_for(lambda: press in server.callback_answers, WAIT)
        await server.wait_for(lambda: len(server.edits(GROUP)) >= 1, WAIT)
        samples = parse(generate_latest(metrics.registry).decode())
        rejected = server.rejected_429
        edits = len(server.edits(GROUP))
    assert value(samples, "coalition_rate_limited_total", platform="telegram") == rejected
    assert value(samples, "coalition_board_edits_total", platform="telegram") == edits
    tally = {"command": "tally", "platform": "telegram", "outcome": "answered"}
    assert value(samples, "coalition_commands_total", **tally) == 3
    pledged = {"command": "pledge", "platform": "telegram", "outcome": "answered"}
    assert value(samples, "coalition_commands_total", **pledged) == 1


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"],
)
async def test_without_the_right_token_it_is_401(
    tmp_path: Path, http: aiohttp.ClientSession, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with serve(make_settings(tmp_path, metrics_token=TOKEN)) as served:
        await served.pledge("amina")
        status, answer, body = await get(http, served.url + "metrics", **headers)
    assert status == 401
    assert body == "unauthorized\n"
    assert answer["WWW-Authenticate"].startswith("Bearer")
    assert "coalition_" not in body and TOKEN not in body


async def test_not_configured_it_is_not_served(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    async with serve(make_settings(tmp_path)) as served:
        await served.pledge("amina")
        assert served.scraped is None
        status, _, body = await get(http, served.url + "metrics")
        bearer, _, _ = await get(http, served.url + "metrics", Authorization=f"Bearer {TOKEN}")
    assert status == 404 and bearer == 404
    assert "coalition_commands" not in body


async def test_its_own_bind_serves_it_without_a_token(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    settings = make_settings(tmp_path, metrics_host="127.0.0.1", metrics_port=0)
    async with serve(settings) as served:
        await served.pledge("amina", "karim")
        await served.site.hub.flush()
        assert served.scraped is not None
        status, headers, body = await get(http, served.scraped.url + "metrics")
        health, _, _ = await get(http, served.scraped.url + "healthz")
        page, _, _ = await get(http, served.scraped.url)
        public, _, _ = await get(http, served.url + "metrics")  # not on the page's server
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    samples = parse(body)
    assert value(samples, "coalition_pledges") == 2
    pledge = {"command": "pledge", "platform": "console", "outcome": "answered"}
    assert value(samples, "coalition_commands_total", **pledge) == 2
    assert health == 404 and page == 404 and public == 404
    assert PEPPER not in body and "amina" not in body


@pytest.mark.parametrize(
    ("overrides", "setting", "says"),
    [
        ({"metrics_token": "short"}, "COALITION_METRICS_TOKEN", "16 to 256"),
        ({"metrics_token": "has spaces in it 0123456789"}, "COALITION_METRICS_TOKEN", "A-Z"),
        ({"metrics_host": "http://0.0.0.0"}, "COALITION_METRICS_HOST", "host name"),
        ({"metrics_port": 70000}, "COALITION_METRICS_PORT", "less than or equal"),
        ({"metrics_port": 8080, "web_port": 8080}, "COALITION_METRICS_PORT", "its own"),
    ],
)
def test_a_wrong_metrics_setting_is_named(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    overrides: dict[str, object],
    setting: str,
    says: str,
) -> None:
    for name in list(os.environ):
        if name.startswith("COALITION_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    with pytest.raises(ConfigError) as error:
        load_settings(**overrides)
    line = str(error.value)
    assert line.startswith(f"{setting}: ") and says in line
    assert "\n" not in line and "short" not in line


async def test_the_cli_stops_on_a_bad_metrics_token_without_showing_it(tmp_path: Path) -> None:
    lines = await console_refusal(tmp_path, COALITION_METRICS_TOKEN="tooshort!")
    assert len(lines) == 1
    assert lines[0].startswith("configuration error: COALITION_METRICS_TOKEN: use 16 to 256")
    assert "tooshort" not in lines[0]
