"""The campaign page over HTTP, against the bot booted through its composition root: what a
reader (or a site embedding the count) receives, in Arabic, French and English."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.core.i18n import Catalogs
from bot.core.settings import Settings
from tests.conftest import eventually, make_settings
from tests.web_harness import Served, get, serve

CATALOGS = Catalogs.load()
DURING_FREEZE = datetime(2026, 12, 16, 12, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def number(language: str, value: int) -> str:
    return CATALOGS.get(language).number(value)


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    async with serve(settings) as running:
        yield running


class Stream:
    """One reader's live connection: the events as the page's EventSource receives them."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while True:
                block = (await self.response.content.readuntil(b"\n\n")).decode()
                data = [line[6:] for line in block.splitlines() if line.startswith("data: ")]
                if data:
                    return dict(json.loads("\n".join(data)))


async def open_stream(
    http: aiohttp.ClientSession, url: str, **headers: str
) -> tuple[aiohttp.ClientResponse, Stream]:
    response = await http.get(url, headers=headers)
    return response, Stream(response)


# -- the page ---------------------------------------------------------------------------


async def test_root_speaks_the_readers_language_else_the_campaigns(
    served: Served, http: aiohttp.ClientSession
) -> None:
    status, headers, body = await get(http, served.url, **{"Accept-Language": "fr-CA,en;q=0.5"})
    assert status == 200
    assert '<html lang="fr" dir="ltr">' in body
    assert "Arrêtez la haine pour le profit" in body
    assert headers["Vary"] == "Accept-Language"
    assert headers["Content-Language"] == "fr"

    _, _, body = await get(http, served.url, **{"Accept-Language": "de-DE, ar;q=0.4, fr;q=0.1"})
    assert '<html lang="ar" dir="rtl">' in body

    _, _, body = await get(http, served.url, **{"Accept-Language": "fr;q=0, de"})
    assert '<html lang="en" dir="ltr">' in body  # nothing we speak: the campaign's default


async def test_root_without_a_header_uses_the_configured_default(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, default_language="ar")
    async with serve(settings) as running, aiohttp.ClientSession() as http:
        _, _, body = await get(http, running.url)
    assert '<html lang="ar" dir="rtl">' in body


async def test_the_count_is_on_the_page_without_javascript(
    served: Served, http: aiohttp.ClientSession
) -> None:
    await served.pledge("amina", "karim", "lea")
    await served.site.hub.flush()
    expected = {
        "en": "3 volunteers have pledged to freeze their accounts",
        "fr": "3 personnes se sont engagées à geler leurs comptes",
        "ar": "تعهّد 3 متطوعين بتجميد حساباتهم",
    }
    for language, sentence in expected.items():
        status, _, body = await get(http, served.url + f"{language}/")
        assert status == 200
        assert f'<strong id="pledged" class="n">{number(language, 3)}</strong>' in body
        plain = body.replace('<strong id="pledged" class="n">', "").replace("</strong>", "")
        plain = plain.replace("<span>", "").replace("</span>", "")
        assert sentence in plain, language
        assert 'id="counts" aria-live="polite"' in body
        assert '<progress id="bar" max="1000" value="3"' in body


async def test_arabic_page_is_right_to_left_with_the_catalogs_numbers(
    served: Served, http: aiohttp.ClientSession
) -> None:
    await served.seed_pledges(1234)
    _, headers, body = await get(http, served.url + "ar/")
    assert body.startswith('<!doctype html>\n<html lang="ar" dir="rtl">')
    assert headers["Content-Language"] == "ar"
    assert f'<strong id="pledged" class="n">{number("ar", 1234)}</strong>' in body
    _, _, french = await get(http, served.url + "fr/")
    assert f'<strong id="pledged" class="n">{number("fr", 1234)}</strong>' in french
    assert number("fr", 1234) == "1\u202f234"  # the locales really differ


async def test_who_froze_is_counted_after_the_check_in(tmp_path: Path) -> None:
    async with serve(make_settings(tmp_path), clock=lambda: DURING_FREEZE) as running:
        await running.pledge("amina", "karim")
        await running.console.feed("/done")  # karim froze
        await running.site.hub.flush()
        async with aiohttp.ClientSession() as http:
            _, _, body = await get(http, running.url + "en/")
            _, _, arabic = await get(http, running.url + "ar/")
    assert '<strong id="froze" class="n">1</strong>' in body
    assert "<span> volunteer froze their accounts</span>" in body
    assert "Time left until the freeze ends" in body
    assert "<span>جمّد </span>" in arabic


async def test_share_kit_has_the_message_and_the_pledge_links(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        web_telegram_username="@CoalitionBot",
        web_discord_invite="https://discord.gg/stophate",
        campaign_message_fr="Je gèle mes comptes. #StopHateForProfit",
    )
    async with serve(settings) as running, aiohttp.ClientSession() as http:
        _, _, english = await get(http, running.url + "en/")
        _, _, french = await get(http, running.url + "fr/")
        _, _, arabic = await get(http, running.url + "ar/")
    assert 'href="https://t.me/CoalitionBot?start=pledge">Pledge on Telegram</a>' in english
    assert 'href="https://discord.gg/stophate">Pledge on Discord</a>' in english
    assert "I froze my Instagram and Facebook accounts for 24 hours" in english
    assert '<blockquote id="message">Je gèle mes comptes. #StopHateForProfit</blockquote>' in french
    assert "S’engager sur Telegram" in french
    assert "انشر هذه الرسالة" in arabic
    assert 'id="copy" hidden>Copy the message</button>' in english  # shown by the script


async def test_without_a_username_or_invite_no_pledge_link(
    served: Served, http: aiohttp.ClientSession
) -> None:
    _, _, body = await get(http, served.url + "en/")
    assert "t.me/" not in body and "Pledge on Discord" not in body
    assert "Pledge to freeze" not in body


async def test_a_telegram_username_learned_at_start_up_makes_the_link(
    served: Served, http: aiohttp.ClientSession
) -> None:
    served.site.telegram_username = "LearnedBot"  # what cli sets from the Telegram front-end
    _, _, body = await get(http, served.url + "en/")
    assert 'href="https://t.me/LearnedBot?start=pledge"' in body


async def test_organizer_text_never_reaches_the_page_unescaped(tmp_path: Path) -> None:
    hostile = '</blockquote><script>alert("x")</script><img src=x onerror=alert(1)> & "q" \'s'
    settings = make_settings(tmp_path, campaign_message_en=hostile)
    async with serve(settings) as running, aiohttp.ClientSession() as http:
        _, headers, body = await get(http, running.url + "en/")
    assert "<script>alert" not in body and "<img src=x" not in body
    assert (
        "&lt;/blockquote&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
        "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;q&quot; &#x27;s"
    ) in body
    assert body.count("<script>") == 1  # the page's own
    assert "script-src 'sha256-" in headers["Content-Security-Policy"]
    assert "default-src 'none'" in headers["Content-Security-Policy"]


async def test_the_page_is_small(served: Served, http: aiohttp.ClientSession) -> None:
    await served.seed_pledges(1234)
    for language in ("ar", "en", "fr"):
        _, _, body = await get(http, served.url + f"{language}/")
        size = len(body.encode())
        assert size < 30_000, f"{language}: {size} bytes"
        assert "http://" not in body and "https://" not in body  # no CDN, no outside font


# -- not found ----------------------------------------------------------------------------


async def test_unknown_language_or_path_is_a_404_in_the_readers_language(
    served: Served, http: aiohttp.ClientSession
) -> None:
    status, _, body = await get(http, served.url + "de/", **{"Accept-Language": "fr"})
    assert status == 404
    assert '<html lang="fr"' in body and "Page introuvable" in body

    status, _, body = await get(http, served.url + "fr/nothing/here", **{"Accept-Language": "ar"})
    assert status == 404 and "Il n’y a rien à cette adresse." in body  # the address says fr
    assert 'href="../../fr/"' in body

    status, _, body = await get(http, served.url + "wp-login.php", **{"Accept-Language": "ar"})
    assert status == 404
    assert 'dir="rtl"' in body and "الصفحة غير موجودة" in body

    for path in ("badge.svg?lang=de", "xx/events", "api/nothing"):
        status, _, _ = await get(http, served.url + path)
        assert status == 404, path

    status, headers, _ = await get(http, served.url + "fr")
    assert status == 308 and headers["Location"] == "fr/"
    status, _, _ = await get(http, served.url + "healthz")
    assert status == 200


# -- JSON and badge -----------------------------------------------------------------------


async def test_api_counts_is_cached_briefly_and_open_to_any_site(
    served: Served, http: aiohttp.ClientSession
) -> None:
    url = served.url + "api/counts"
    status, headers, body = await get(http, url)
    assert status == 200
    counts = json.loads(body)
    assert counts == {
        "campaign": "stop-hate-for-profit",
        "pledged": 0,
        "froze": 0,
        "goal": 1000,
        "updated_at": "2026-12-01T12:00:00+00:00",
    }
    assert headers["Content-Type"].startswith("application/json")
    assert headers["Cache-Control"] == "public, max-age=5"
    assert headers["Access-Control-Allow-Origin"] == "*"
    etag = headers["ETag"]

    status, again, body = await get(http, url, **{"If-None-Match": etag})
    assert status == 304 and body == ""
    assert again["ETag"] == etag and again["Access-Control-Allow-Origin"] == "*"

    await served.pledge("amina")

    async def pledged() -> bool:
        return json.loads((await get(http, url))[2])["pledged"] == 1

    await eventually(pledged, timeout=2.0)
    status, fresh, _ = await get(http, url, **{"If-None-Match": etag})
    assert status == 200 and fresh["ETag"] != etag


async def test_badge_is_svg_text_in_each_language(
    served: Served, http: aiohttp.ClientSession
) -> None:
    await served.seed_pledges(1234)
    status, headers, body = await get(http, served.url + "badge.svg?lang=ar")
    assert status == 200
    assert headers["Content-Type"].startswith("image/svg+xml")
    assert headers["Cache-Control"] == "public, max-age=5"
    assert headers["Access-Control-Allow-Origin"] == "*"
    svg = ET.fromstring(body)
    texts = {t.get("id"): t for t in svg.iter(f"{SVG}text")}
    assert texts["count"].get("direction") == "rtl"
    assert number("ar", 1234) in (texts["count"].text or "")
    assert "متعهّد" in (texts["count"].text or "")
    status, _, _ = await get(
        http, served.url + "badge.svg?lang=ar", **{"If-None-Match": headers["ETag"]}
    )
    assert status == 304

    _, _, french = await get(http, served.url + "badge.svg?lang=fr")
    count = next(t for t in ET.fromstring(french).iter(f"{SVG}text") if t.get("id") == "count")
    assert count.text == f"{number('fr', 1234)} engagements"
    assert count.get("direction") is None

    _, _, chosen = await get(http, served.url + "badge.svg", **{"Accept-Language": "fr"})
    assert "engagements" in chosen


# -- live updates -------------------------------------------------------------------------


async def test_a_pledge_reaches_an_open_stream_formatted_for_its_language(
    served: Served, http: aiohttp.ClientSession
) -> None:
    response, french = await open_stream(http, served.url + "fr/events")
    assert response.headers["Content-Type"].startswith("text/event-stream")
    first = await french.next()
    assert first["pledged"] == ["", "0", " personne s’est engagée à geler ses comptes"]
    assert first["start"] == int(datetime(2026, 12, 16, 8, 0, tzinfo=UTC).timestamp() * 1000)

    _, arabic = await open_stream(http, served.url + "events", **{"Accept-Language": "ar"})
    await arabic.next()

    await served.seed_pledges(1233)
    started = time.monotonic()
    await served.pledge("amina")
    latest = await french.next(timeout=2.0)
    while latest["pledged"][1] != number("fr", 1234):
        latest = await french.next(timeout=2.0 - (time.monotonic() - started))
    assert latest["pledged"][2] == " personnes se sont engagées à geler leurs comptes"
    assert latest["goal"] == "123\u00a0% de l’objectif de 1\u202f000"
    found = await arabic.next()
    while found["pledged"][1] != number("ar", 1234):
        found = await arabic.next()
    assert found["pledged"][0] == "تعهّد "


async def test_updates_are_coalesced_to_one_a_second(
    served: Served, http: aiohttp.ClientSession
) -> None:
    _, stream = await open_stream(http, served.url + "en/events")
    await stream.next()
    arrivals: list[float] = []
    counts: list[str] = []

    async def watch() -> None:
        while True:
            event = await stream.next(timeout=10)
            arrivals.append(time.monotonic())
            counts.append(event["pledged"][1])

    watching = asyncio.create_task(watch())
    for n in range(8):  # a pledge every 0.3 s: 8 pledges in 2.4 s
        await served.pledge(f"volunteer{n}")
        await asyncio.sleep(0.3)
    await eventually(lambda: counts and counts[-1] == "8", timeout=3)
    watching.cancel()
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(arrivals) <= 5, counts
    assert all(gap >= 0.8 for gap in gaps), gaps


async def test_a_flood_of_streams_from_one_address_is_limited(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, web_streams_per_address=3)
    async with serve(settings) as running, aiohttp.ClientSession() as http:
        running.site.heartbeat = 0.2  # so a closed stream is noticed quickly
        opened = [await open_stream(http, running.url + "events") for _ in range(3)]
        for _, stream in opened:
            await stream.next()
        status, headers, body = await get(
            http, running.url + "fr/events", **{"Accept-Language": "fr"}
        )
        assert status == 429
        assert headers["Retry-After"] == "30"
        assert body.startswith("Trop de connexions en direct")
        assert running.site.streams == 3

        opened[0][0].close()  # one tab closed: its place is free again
        await eventually(lambda: running.site.streams == 2, timeout=5)
        response, stream = await open_stream(http, running.url + "events")
        assert response.status == 200
        await stream.next()


async def test_streams_end_when_the_bot_stops(tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as http:
        async with serve(make_settings(tmp_path)) as running:
            response, stream = await open_stream(http, running.url + "events")
            await stream.next()
            stopping = time.monotonic()
        assert time.monotonic() - stopping < 5  # nobody waited for the stream to end
        async with asyncio.timeout(5):
            assert await response.content.read() == b""
