"""A community's own web page (/webpage): made only by that community's admins, at an
unguessable address, showing its count next to the coalition's ("fewer than 5" below 5),
never a name, and gone (with its live stream) the moment they take it down."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.core.i18n import Catalogs
from bot.core.settings import Settings
from bot.frontends.console import COMMUNITY
from tests.test_web_page import open_stream
from tests.web_harness import Served, get, serve

CATALOGS = Catalogs.load()
ADDRESS = re.compile(r"http://127\.0\.0\.1:\d+/c/[A-Za-z0-9_-]{20,}/")


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    async with serve(settings) as running:
        yield running


def plain(body: str) -> str:
    """The page's text around its counts, as a reader sees it (tags of the counts removed)."""
    for tag in ("<span>", "</span>", "</strong>", "</p>"):
        body = body.replace(tag, " " if tag == "</p>" else "")
    return re.sub(r'<strong id="\w+" class="n">', "", body)


async def say(served: Served, *lines: str) -> str:
    """Type lines into the console; what the bot answered to them."""
    start = len(served.out.getvalue())
    for line in lines:
        await served.console.feed(line)
    return served.out.getvalue()[start:]


async def make_page(served: Served) -> str:
    """A community admin asks for the page; its address, as the bot gave it."""
    answer = await say(served, ":group", ":as nadia", ":admin on", "/webpage on", ":admin off")
    found = ADDRESS.findall(answer)
    assert len(found) == 1, answer
    return found[0]


async def pledge_here(served: Served, count: int, first: int = 0) -> None:
    """`count` volunteers pledge in the console's community (written straight to storage:
    more people than a test would type), then the news of it, as a front-end gives it."""
    storage = served.services.storage
    campaign = served.services.campaign.id
    for n in range(first, first + count):
        await storage.pledge(campaign, (50_000 + n).to_bytes(32, "big"), "console", COMMUNITY, None)
    served.services.counts_changed()
    await served.site.hub.flush()


async def test_an_admin_gets_a_page_with_the_communitys_count_beside_the_coalitions(
    served: Served, http: aiohttp.ClientSession
) -> None:
    answer = await say(served, ":group", ":as nadia", ":admin on", "/webpage")
    assert "This community has no web page. To make one, send /webpage on." in answer
    address = await make_page(served)
    assert address.startswith(served.url + "c/")
    await served.seed_pledges(10)  # pledges elsewhere in the coalition
    await served.pledge("amina", "karim")  # two here
    await served.site.hub.flush()

    status, headers, body = await get(http, address + "en/")
    assert status == 200
    text = plain(body)
    assert "Fewer than 5 volunteers have pledged in this community" in text
    assert "12 volunteers have pledged to freeze their accounts" in text
    assert "amina" not in body and "karim" not in body and COMMUNITY not in body
    assert '<meta name="robots" content="noindex">' in body  # unlisted
    assert 'rel="canonical"' not in body
    assert headers["Referrer-Policy"] == "no-referrer"  # its address never leaves in a link
    assert 'href="../../../en/">The campaign&#x27;s page</a>' in body

    await pledge_here(served, 3)
    _, _, body = await get(http, address + "en/")
    assert "5 volunteers have pledged in this community" in plain(body)
    assert "Fewer than" not in body

    # The same address in the reader's language, and in Arabic with the catalogs' digits.
    _, headers, french = await get(http, address, **{"Accept-Language": "fr"})
    assert headers["Content-Language"] == "fr" and "dans cette communauté" in french
    _, _, arabic = await get(http, address + "ar/")
    assert '<html lang="ar" dir="rtl">' in arabic
    assert f'<strong id="community" class="n">{CATALOGS.get("ar").number(5)}</strong>' in arabic

    # The admin sees the same address again; it does not change while the page is up.
    again = await say(served, ":as nadia", ":admin on", "/webpage")
    assert ADDRESS.findall(again) == [address]


async def test_volunteers_and_private_chats_cannot_make_one(
    served: Served, http: aiohttp.ClientSession
) -> None:
    answer = await say(served, ":group", ":as amina", "/webpage on")
    assert "Sorry, only this community's admins can use /webpage here." in answer
    answer = await say(served, ":private", "/webpage on")
    assert ADDRESS.search(answer) is None
    context = await served.services.storage.load_context(b"\0" * 32, "console", COMMUNITY)
    assert context[1] is None or context[1].web_page is None


async def test_taking_it_down_ends_the_address_and_its_live_stream(
    served: Served, http: aiohttp.ClientSession
) -> None:
    address = await make_page(served)
    await pledge_here(served, 6)
    response, stream = await open_stream(http, address + "fr/events")
    try:
        first = await stream.next()
        assert first["community"][1] == CATALOGS.get("fr").number(6)
        await pledge_here(served, 1, first=6)
        live = await stream.next()
        assert "".join(live["community"]) == "7 bénévoles se sont engagés dans cette communauté"

        answer = await say(served, ":group", ":as nadia", ":admin on", "/webpage off")
        assert "This community's web page is taken down: its address no longer works." in answer
        await pledge_here(served, 1, first=7)  # the next change: the stream finds it gone
        async with asyncio.timeout(5):
            assert await response.content.read() == b""  # the server ended the stream
    finally:
        response.close()

    status, _, body = await get(http, address + "fr/")
    assert status == 404 and "Page introuvable" in body
    status, _, _ = await get(http, address + "fr/events")
    assert status == 404  # a browser's EventSource stops trying
    fresh = await make_page(served)
    assert fresh != address  # a page made again gets a new address


async def test_a_guessed_address_is_a_404_in_the_readers_language(
    served: Served, http: aiohttp.ClientSession
) -> None:
    await make_page(served)
    status, _, body = await get(http, served.url + "c/" + "A" * 24 + "/ar/")
    assert status == 404 and '<html lang="ar" dir="rtl">' in body
    status, _, _ = await get(http, served.url + "c/short/")
    assert status == 404


async def test_without_a_public_address_no_page_is_made(
    served: Served, http: aiohttp.ClientSession
) -> None:
    served.services.web_address = None  # `bot run` without COALITION_WEB_PUBLIC_URL
    answer = await say(served, ":group", ":as nadia", ":admin on", "/webpage on")
    assert "This bot has no public web address, so it cannot make web pages." in answer
    assert ADDRESS.search(answer) is None
    context = await served.services.storage.load_context(b"\0" * 32, "console", COMMUNITY)
    assert context[1] is None or context[1].web_page is None
